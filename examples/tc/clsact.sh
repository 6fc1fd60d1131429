#!/bin/sh
# clsact.sh - an --exec hook for `psnic watch`: gives each container's host
# vNIC a clsact qdisc, the hook where tc/eBPF programs attach, as soon as the
# vNIC appears. Interface names come from the environment, never through a
# shell string.
#
#   psnic watch --exec /path/to/clsact.sh
#
# psnic watch passes veths only to --exec (unless --include-parents or
# --kind say otherwise); the check below keeps it so if the hook is run with
# them: a macvlan's host end is a shared parent, the host's own NIC.
# Attach your programs in the same place, e.g.
#   tc filter add dev "$PSNIC_HOST_IFNAME" ingress bpf da obj prog.o sec tc
set -eu
[ "$PSNIC_KIND" = veth ] || exit 0
case "$PSNIC_EVENT" in
present | added)
	# Idempotent: a restarted watch sees "present" for vNICs it set up before.
	if ! tc qdisc show dev "$PSNIC_HOST_IFNAME" | grep -q '^qdisc clsact'; then
		tc qdisc add dev "$PSNIC_HOST_IFNAME" clsact
	fi
	echo "clsact on $PSNIC_HOST_IFNAME (pid $PSNIC_PID, $PSNIC_CONTAINER_IFNAME)"
	;;
removed)
	# The kernel drops the qdisc with the interface; nothing to undo.
	echo "gone: $PSNIC_HOST_IFNAME"
	;;
esac
