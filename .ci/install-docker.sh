#!/usr/bin/env bash
# Installs what the Docker test (cmd/container_vnic_exporter/docker_test.go)
# runs: Debian's docker.io (dockerd, the docker CLI, and containerd, which
# dockerd runs its containers through), and a static busybox for the
# imported test image. Idempotent: only missing packages are installed.
#
# Measured here (Debian 12, 2 cores): 19-21 s for `apt-get update` and the
# install of docker.io 20.10 (with containerd 1.6 and tini if missing). The
# test itself takes 20-30 s (75 s with four other builds on the machine).
#
# Nothing is started here: there is no systemd on the CI machine, so the
# test starts its own dockerd (vfs storage, no iptables, no IP forwarding)
# with its data, state and socket in a temporary directory, and stops it.
set -euo pipefail

installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

need=()
for pkg in docker.io busybox-static; do
	installed "$pkg" || need+=("$pkg")
done
if ((${#need[@]} == 0)); then
	echo "docker.io and busybox-static already installed"
	exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
