#!/bin/sh
# bench/nsenter-ip.sh PID - the host-side veth(s) of PID's network namespace
# found the way one does by hand, with util-linux and iproute2 only:
#
#   nsenter -t PID -n ip -o link show type veth   inside:  "2: eth0@if7: ..."
#   ip -o link show type veth                     host:    "7: vethX@if2: ..."
#
# A host veth is the answer when each end names the other's index ("@ifN"),
# which rules out most chance matches of one-way index matching. Prints one
# host name per line; exit 1 when there is none.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 PID" >&2; exit 2; }
inside=$(nsenter -t "$1" -n ip -o link show type veth)
ip -o link show type veth | awk -v inside="$inside" '
	# "IDX: NAME@ifPEER: ..." -> idx, name, peer
	function parse(line, f) {
		split(line, f, ": ")
		idx = f[1] + 0
		name = f[2]; peer = 0
		if (i = index(name, "@if")) { peer = substr(name, i + 3) + 0; name = substr(name, 1, i - 1) }
	}
	BEGIN {
		n = split(inside, lines, "\n")
		for (k = 1; k <= n; k++) if (lines[k] != "") { parse(lines[k]); peer_of[idx] = peer }
	}
	{ parse($0) }
	(peer in peer_of) && peer_of[peer] == idx { print name; found = 1 }
	END { exit !found }'
