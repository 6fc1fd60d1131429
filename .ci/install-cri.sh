#!/usr/bin/env bash
# Installs what the CRI test (cmd/container_vnic_exporter/cri_test.go) runs:
# Debian's containerd (1.6, with its CRI plugin), the CNI plugins (bridge,
# host-local, loopback in /usr/lib/cni), runc, gcc and the static C library
# (the test builds its pause binary with gcc -static), and crictl, built
# from the Go module proxy at a pinned version. Idempotent: only what is
# missing is installed or built, so a second run costs nothing.
#
# Measured here (Debian 12, 2 cores): 15 s for `apt-get update` and the
# install of containerd 1.6; crictl from empty module and build caches
# 3 min 21 s user + 39 s system CPU (9.5 min wall on a machine shared with
# four other builds), 0.3 s once built. The test itself takes 5-10 s (38 s
# on the shared machine).
#
# Nothing is started here: the test starts its own containerd with its own
# root, state, socket, configuration and CNI configuration, and stops it.
set -euo pipefail
export PATH="/usr/local/go/bin:${HOME:-/root}/go/bin:$PATH"

crictl_version=v1.37.0

installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

need=()
for pkg in containerd containernetworking-plugins runc gcc libc6-dev; do
	installed "$pkg" || need+=("$pkg")
done
if ((${#need[@]})); then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
else
	echo "containerd, containernetworking-plugins, runc, gcc and libc6-dev already installed"
fi

gobin="$(go env GOPATH)/bin"
# `go install` leaves crictl's own --version "unknown": ask the binary's
# module information instead.
if [[ -x $gobin/crictl ]] && go version -m "$gobin/crictl" | grep -qE "^\s+mod\s+sigs.k8s.io/cri-tools\s+$crictl_version\s"; then
	echo "crictl $crictl_version already built"
else
	CGO_ENABLED=0 go install "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
fi
