#!/usr/bin/env bash
# bench/fixture.sh up DIR N [PROCS] | down DIR
#
# up: N network namespaces shaped like containers: namespace i holds a veth
# whose host end is ${prefix}h<i> (up, host netns) and whose other end is
# eth0 (up), and PROCS (default 1) `sleep infinity` processes. The prefix is
# new for each run ("vf" and four random hex digits, checked unused on this
# host), so names cannot collide with anything else here. Unless
# FIXTURE_EXTRAS=0 it adds the cases a resolver must not get wrong:
#   namespace 1 also has eth1 <-> ${prefix}h1b   (expected: both host ends)
#   ${prefix}xmv: eth0 is a macvlan of host bridge ${prefix}br (expected: ${prefix}br)
#   ${prefix}xlo: only lo                                        (expected: none)
#   ${prefix}xpa, ${prefix}xpb: one veth between the two          (expected: none)
# Once the processes hold the namespaces their /run/netns names are removed,
# as container runtimes do (FIXTURE_KEEP_NAMES=1 keeps them).
#
# DIR records what the run made: DIR/prefix; DIR/netns (namespace names);
# DIR/links (host link names); DIR/procs, one line per process:
#   NETNS_NAME PID START_TIME EXPECTED_HOST_IFNAMES(comma-separated, or -)
# down removes exactly that: the processes whose PID and start time still
# match, then the namespace names and host links of DIR that still exist.
# It is safe after a partial up and safe to run twice. Needs root.
set -euo pipefail

die() { echo "fixture: $*" >&2; exit 1; }

# Names of this host that start with $1 (netns names and links).
taken() {
	{ ip netns list; ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'; } |
		awk -v p="$1" 'index($1, p) == 1' | head -n 1
}

# start_time PID: field 22 of /proc/PID/stat (after the ")" of the command
# name), which with the PID names one process for good. Empty when gone.
start_time() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	stat=${stat##*) }
	local -a f
	read -ra f <<<"$stat"
	echo "${f[19]}"
}

up() {
	local dir=$1 n=$2 procs=${3:-1} extras=${FIXTURE_EXTRAS:-1} p i j batch
	[[ $n =~ ^[1-9][0-9]*$ && $procs =~ ^[1-9][0-9]*$ ]] || die "usage: $0 up DIR N [PROCS] (N, PROCS >= 1)"
	((n <= 9999)) || die "N at most 9999 (interface names are 15 bytes)"
	[[ ! -e $dir/prefix ]] || die "$dir already holds a fixture: run $0 down $dir first"
	mkdir -p "$dir"
	for _ in 1 2 3 4 5; do
		p=$(printf 'vf%04x' $((SRANDOM & 0xffff)))
		[[ -z $(taken "$p") ]] && break
		p=
	done
	[[ -n $p ]] || die "no unused name prefix found"
	# Record every name before making it, so that down finds a partial run.
	echo "$p" >"$dir/prefix"
	: >"$dir/procs"
	{
		for ((i = 1; i <= n; i++)); do echo "${p}n$i"; done
		((extras)) && printf '%s\n' "${p}xmv" "${p}xlo" "${p}xpa" "${p}xpb"
	} >"$dir/netns"
	{
		for ((i = 1; i <= n; i++)); do echo "${p}h$i"; done
		((extras)) && printf '%s\n' "${p}h1b" "${p}br" "${p}mv"
	} >"$dir/links"

	batch=$dir/batch
	sed 's/^/netns add /' "$dir/netns" >"$batch"
	ip -batch "$batch" || die "netns add failed (run: $0 down $dir)"
	{
		for ((i = 1; i <= n; i++)); do
			echo "link add ${p}h$i type veth peer name eth0 netns ${p}n$i"
			echo "link set ${p}h$i up"
		done
		if ((extras)); then
			echo "link add ${p}h1b type veth peer name eth1 netns ${p}n1"
			echo "link set ${p}h1b up"
			echo "link add ${p}br type bridge"
			echo "link set ${p}br up"
			echo "link add ${p}mv link ${p}br type macvlan mode bridge"
			echo "link set ${p}mv netns ${p}xmv"
			echo "link add ${p}pa netns ${p}xpa type veth peer name ${p}pb netns ${p}xpb"
		fi
	} >"$batch"
	ip -batch "$batch" || die "link add failed (run: $0 down $dir)"
	rm -f "$batch"
	# The container ends come up one namespace at a time (a veth cannot be
	# created up inside another namespace); two at once.
	{
		for ((i = 1; i <= n; i++)); do echo "${p}n$i eth0 eth0"; done
		if ((extras)); then
			echo "${p}n1 eth1 eth1"
			echo "${p}xmv ${p}mv eth0"
			echo "${p}xpa ${p}pa eth0"
			echo "${p}xpb ${p}pb eth0"
		fi
	} | xargs -P 2 -L 1 sh -c '
		[ "$1" = "$2" ] || ip -n "$0" link set "$1" name "$2" || exit 255
		ip -n "$0" link set "$2" up || exit 255'

	local ns want pid
	while read -r ns; do
		case $ns in
		"${p}n1") want=${p}h1 ;;
		"${p}n"*) want=${p}h${ns#"${p}n"} ;;
		"${p}xmv") want=${p}br ;; # psnic names a macvlan's parent
		*) want=- ;;
		esac
		[[ $ns == "${p}n1" ]] && ((extras)) && want=${p}h1,${p}h1b
		for ((j = 0; j < procs; j++)); do
			setsid nsenter --net="/run/netns/$ns" sleep infinity </dev/null >/dev/null 2>&1 &
			echo "$ns $! - $want"
		done
	done <"$dir/netns" >"$dir/procs.new"
	# Each process is ours once it runs sleep (nsenter has entered the
	# namespace and exec'd); then its start time completes its identity.
	local comm st tries
	while read -r ns pid _ want; do
		for ((tries = 0; ; tries++)); do
			comm=
			{ read -r comm <"/proc/$pid/comm"; } 2>/dev/null || true
			[[ $comm == sleep ]] && break
			[[ -d /proc/$pid ]] && ((tries < 1000)) || die "process $pid for $ns did not start (run: $0 down $dir)"
			sleep 0.01
		done
		st=$(start_time "$pid")
		echo "$ns $pid $st $want"
	done <"$dir/procs.new" >"$dir/procs"
	rm -f "$dir/procs.new"
	if [[ ${FIXTURE_KEEP_NAMES:-0} != 1 ]]; then
		# Container runtimes leave no name in /run/netns, and with names there
		# every `ip link` on the host opens each of them to print link-netns.
		sed 's/^/netns del /' "$dir/netns" >"$batch"
		ip -batch "$batch"
		rm -f "$batch"
	fi
	echo "fixture: prefix $p, $n namespaces, $(wc -l <"$dir/procs") processes, state in $dir" >&2
}

down() {
	local dir=$1 ns pid st want tries live
	[[ -e $dir/prefix ]] || return 0
	local -a mine=()
	if [[ -e $dir/procs ]]; then
		while read -r ns pid st want; do
			[[ $st != - && $(start_time "$pid") == "$st" ]] && mine+=("$pid")
		done <"$dir/procs"
	fi
	# procs.new: a run interrupted before its processes were checked; they
	# are ours if they still run sleep in a namespace of this run.
	if [[ -e $dir/procs.new ]]; then
		while read -r ns pid st want; do
			[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */sleep ]] &&
				ip netns identify "$pid" 2>/dev/null | grep -qx "$ns" && mine+=("$pid")
		done <"$dir/procs.new"
	fi
	((${#mine[@]})) && kill "${mine[@]}" 2>/dev/null || true
	# A namespace goes with its last process; zombies have left theirs.
	for ((tries = 0; tries < 200; tries++)); do
		live=0
		for pid in "${mine[@]}"; do
			{ read -r st <"/proc/$pid/stat"; } 2>/dev/null || continue
			st=${st##*) }
			[[ ${st:0:1} == Z ]] || { live=1; break; }
		done
		((live)) || break
		sleep 0.05
	done
	local batch=$dir/batch existing
	existing=$(ip netns list | awk '{ print $1 }')
	grep -Fxf "$dir/netns" <<<"$existing" | sed 's/^/netns del /' >"$batch" || true
	[[ -s $batch ]] && ip -force -batch "$batch" 2>/dev/null || true
	existing=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
	grep -Fxf "$dir/links" <<<"$existing" | sed 's/^/link del /' >"$batch" || true
	[[ -s $batch ]] && ip -force -batch "$batch" 2>/dev/null || true
	rm -f "$batch" "$dir/procs" "$dir/procs.new" "$dir/netns" "$dir/links" "$dir/prefix"
	rmdir "$dir" 2>/dev/null || true
}

case ${1:-} in
up) (($# >= 3)) || die "usage: $0 up DIR N [PROCS]"; up "$2" "$3" "${4:-1}" ;;
down) (($# == 2)) || die "usage: $0 down DIR"; down "$2" ;;
*) die "usage: $0 up DIR N [PROCS] | down DIR" ;;
esac
