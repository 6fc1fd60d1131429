#!/usr/bin/env bash
# Installs what the image test (cmd/container_vnic_exporter/image_test.go)
# runs: podman to build and run the images, runc as its OCI runtime, and a
# static busybox for the FROM scratch test containers. Idempotent: only
# missing packages are installed, so a second run costs nothing.
#
# Measured on the CI machine (Debian 12, 2 cores): about 30 s for
# `apt-get update` and the install. Debian 12 brings podman 4.3 with netavark.
# The test keeps podman's configuration and storage in a temporary directory
# of its own: nothing is written to /etc/containers or /var/lib/containers.
set -euo pipefail

installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

need=()
for pkg in podman runc busybox-static; do
	installed "$pkg" || need+=("$pkg")
done
if ((${#need[@]} == 0)); then
	echo "podman, runc and busybox-static already installed"
	exit 0
fi
apt-get update -qq
# busybox-static replaces the dynamically linked busybox package if present:
# a FROM scratch image has no libc for it.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
