#!/usr/bin/env bash
# bench/run.sh [N ...] - the project's benchmarks, from this repository alone.
#
# For each N (default: 10 100 1000) and each count of processes per namespace
# in BENCH_PROCS (default: "1 5"), bench/fixture.sh makes N container-like
# network namespaces (one veth each, plus its awkward cases) under a name
# prefix of its own, every section below measures against them, and the
# fixture removes exactly what it made. Sections (BENCH_SECTIONS, default all,
# in this order):
#   commands  whole commands, timed by bench/c/timeit (median of many runs):
#             psnic PID, the paper's method (bench/c/paper_psnic.c), the
#             nsenter+ip way (bench/nsenter-ip.sh), a Go program that does
#             nothing (bench/gonothing), one that does only psnic's work
#             (bench/gofloor) and /bin/true (1 process each only);
#   scrape    one exporter scrape (HTTP GET /metrics, exporter self-metrics
#             off) with counters (the default), with --no-collector.counters,
#             uncached, and ten at once, timed in-process by bench/scrapetime,
#             and node_exporter's netdev collector on the same host (when
#             .ci/install-prometheus.sh installed it),
#             against the floors of the same run (bench/c/floor.c): the /proc
#             walk + one host link dump (without counters), plus one link
#             dump aimed at every namespace by nsid (with counters); the
#             exporter's peak RSS after the sequential scrapes, ten concurrent
#             ones and twenty concurrent ones, half of them gzip;
#   watch     psnic watch (bench/watchlatency): latency from `ip link add` to
#             its line, and CPU time under 200 short-lived processes a second
#             for 60 s (1 process per namespace only).
# BENCH_RUN_IN says where the run happens: "own" (the default), in a
# network namespace made for the run that gives itself an nsid before any
# fixture exists, as a node does where the exporter ran before most of its
# containers; "host", in this host's own, whatever it did since boot. It
# matters: every link message about a container end carries the id the
# asking namespace gives itself, which the kernel finds by walking, in
# order, every id that namespace has given out (__peernet2id), so each
# aimed get or dump costs more the more ids are below that one. A host that
# numbered itself after a thousand namespaces existed pays that at every
# get until it reboots (docs/benchmarks.md, "The asking namespace's own
# id"); the scrape table shows the id and how many ids are below it. The
# watch section runs in the host's all the same: psnic watch's process
# events (the proc connector) exist in the initial network namespace only.
# Writes bench/out/results.md (one table per section) and bench/out/scrape.png.
# Needs root, go and gcc; installs gnuplot from Debian when missing. About 10
# minutes with N=1000, 17 with the watch section's two minutes per N (the
# 1000 x 5 fixture alone starts 5,000 processes).
#
# A section is three functions, NAME_columns (its TSV header), NAME_run N P
# (prints one TSV row, or nothing to skip this fixture) and NAME_report
# (prints its markdown from bench/out/NAME.tsv): add one by writing them and
# naming it in `sections`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bench/out
bin=$out/bin
fx=$out/fixture
export PATH="$PATH:/usr/local/go/bin"
sizes=("$@")
((${#sizes[@]})) || sizes=(10 100 1000)
asked=("${sizes[@]}")
read -ra procs_per_ns <<<"${BENCH_PROCS:-1 5}"
read -ra sections <<<"${BENCH_SECTIONS:-commands scrape watch}"
where=${BENCH_RUN_IN:-own}
[[ $where == own || $where == host ]] || { echo "bench: BENCH_RUN_IN is own or host, not '$where'" >&2; exit 2; }
report_sections=("${sections[@]}")

# ---------------------------------------------------------------- helpers
kv() { sed -n "s/.*\<$1=\([0-9.]*\).*/\1/p"; }       # value of KEY=... in a line
timeit() { "$bin/timeit" "$@" | kv median_us; }     # timeit K CMD... -> median µs
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print ""; else printf "%.2f", a / b }'; }
row() { local IFS=$'\t'; echo "$*"; }

# The fixture's sample process: the first process of namespace N, and the
# host interfaces it must resolve to.
sample_pid() { awk -v ns="$(cat "$fx/prefix")n$1" '$1 == ns { print $2; exit }' "$fx/procs"; }
sample_want() { awk -v ns="$(cat "$fx/prefix")n$1" '$1 == ns { gsub(",", "\n", $4); print $4; exit }' "$fx/procs"; }

exporter_pid=
start_exporter() { # start_exporter FLAGS... -> $url
	local port=$((20000 + RANDOM % 20000))
	"$bin/container_vnic_exporter" --web.listen-address=127.0.0.1:$port --web.disable-exporter-metrics \
		--log.level=warn "$@" 2>>"$out/exporter.log" &
	exporter_pid=$!
	url=http://127.0.0.1:$port/metrics
	await "$url" "the exporter"
}
# await URL WHAT: wait up to 10 s for URL to answer, or stop the run.
await() {
	for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return; sleep 0.05; done
	echo "bench: $2 did not answer on $1 (see $out/exporter.log)" >&2
	exit 1
}
stop_exporter() {
	[[ -n $exporter_pid ]] || return 0
	kill "$exporter_pid" 2>/dev/null || true
	wait "$exporter_pid" 2>/dev/null || true
	exporter_pid=
}

# ------------------------------------------------------- section: commands
commands_columns() { row netns procs psnic_us paper_us nsenterip_us gonothing_us true_us gofloor_us; }
commands_run() {
	local n=$1 p=$2 pid r ps=() gn=() gf=()
	((p == 1)) || return 0
	pid=$(sample_pid "$n")
	# psnic, the Go program that does nothing and the one that does only
	# psnic's work (bench/gofloor), their ratios being the figures that
	# matter: interleaved in 10 rounds of 20 runs each, the median of the
	# round medians, so that a load that comes and goes on a shared host
	# weighs on all three alike.
	for r in $(seq 10); do
		ps+=("$(timeit 20 "$bin/psnic" "$pid")") gn+=("$(timeit 20 "$bin/gonothing")")
		gf+=("$(timeit 20 "$bin/gofloor" "$pid")")
	done
	row "$n" "$p" "$(median "${ps[@]}")" "$(timeit 200 "$bin/paper_psnic" "$pid")" \
		"$(timeit 50 sh "$root/bench/nsenter-ip.sh" "$pid")" "$(median "${gn[@]}")" \
		"$(timeit 200 /bin/true)" "$(median "${gf[@]}")"
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
commands_report() {
	echo "Whole commands, one process per namespace: \`psnic PID\` against the paper's method, the"
	echo "\`nsenter\` + \`ip\` way, a static Go program that does nothing, one that does only psnic's work"
	echo "with the \`syscall\` package (bench/gofloor, \"Go floor\") and \`/bin/true\`. Medians, µs."
	echo
	echo "| netns | psnic | paper | nsenter+ip | Go nothing | Go floor | /bin/true | psnic/paper | psnic/nsenter+ip | psnic/Go nothing | Go floor/Go nothing |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	local n p ps pa ni gn tr gf
	while IFS=$'\t' read -r n p ps pa ni gn tr gf; do
		echo "| $n | $ps | $pa | $ni | $gn | $gf | $tr | $(ratio "$ps" "$pa") | $(ratio "$ps" "$ni") | $(ratio "$ps" "$gn") | $(ratio "$gf" "$gn") |"
	done < <(tail -n +2 "$out/commands.tsv")
}

# --------------------------------------------------------- section: scrape
# node_exporter, as .ci/install-prometheus.sh installs it (GOBIN or
# GOPATH/bin first, then PATH), for its netdev collector on the same host.
node_exporter_bin() {
	local d
	for d in "$(go env GOBIN)" "$(go env GOPATH | cut -d: -f1)/bin"; do
		[[ -n $d && -x $d/node_exporter ]] && { echo "$d/node_exporter"; return; }
	done
	command -v node_exporter || true
}
node_pid=
nurl=
# node_start: node_exporter's netdev collector alone (its self-metrics off),
# serving $nurl; $nurl stays empty when node_exporter is not installed.
node_start() {
	local ne port
	nurl=
	ne=$(node_exporter_bin)
	if [[ -z $ne ]]; then
		echo "bench: no node_exporter (run .ci/install-prometheus.sh): its column stays empty" >&2
		return
	fi
	port=$((20000 + RANDOM % 20000))
	"$ne" --web.listen-address=127.0.0.1:$port --collector.disable-defaults --collector.netdev \
		--web.disable-exporter-metrics --log.level=warn 2>>"$out/exporter.log" &
	node_pid=$!
	nurl=http://127.0.0.1:$port/metrics
	await "$nurl" node_exporter
}
node_stop() {
	[[ -n $node_pid ]] || return 0
	kill "$node_pid" 2>/dev/null || true
	wait "$node_pid" 2>/dev/null || true
	node_pid=
}
scrape_columns() {
	row netns procs floor_us aimed_us gets_us scrape_us scrape_nocounters_us scrape_nocache_us scrape10_us node_us \
		rss_seq_kb rss_kb rss20_kb series bytes selfid ids_below_self
}
scrape_run() {
	local n=$1 p=$2 floor walk dump aimed gets series bytes t1 t10 tnc tnk tne rss rss_seq rss_nk rss20 self below
	floor=$("$bin/floor" -r 50)
	walk=$(kv walk_us <<<"$floor") dump=$(kv dump_us <<<"$floor") aimed=$(kv aimed_us <<<"$floor")
	gets=$(kv gets_us <<<"$floor") self=$(kv selfid <<<"$floor") below=$(kv ids_below_self <<<"$floor")
	start_exporter
	series=$(curl -s "$url" | grep -c '^container_vnic_info{')
	bytes=$(curl -s "$url" | wc -c)
	# The exporter and node_exporter alternately, GET for GET: the ratio
	# of the two under the same load of the moment.
	node_start
	tne=-
	if [[ -n $nurl ]]; then
		{ read -r t1; read -r tne; } < <("$bin/scrapetime" -n 100 "$url" "$nurl" | kv median)
	else
		t1=$("$bin/scrapetime" -n 100 "$url" | kv median)
	fi
	node_stop
	rss_seq=$(vmhwm)
	t10=$("$bin/scrapetime" -n 30 -c 10 "$url" | kv median)
	rss=$(vmhwm)
	# Twenty at once, half of them asking for gzip.
	"$bin/scrapetime" -n 10 -c 20 -plain 10 "$url" >/dev/null
	rss20=$(vmhwm)
	stop_exporter
	start_exporter --no-collector.counters
	tnk=$("$bin/scrapetime" -n 100 "$url" | kv median)
	rss_nk=$(vmhwm)
	((rss_nk > rss)) && rss=$rss_nk
	stop_exporter
	start_exporter --no-resolver.cache
	tnc=$("$bin/scrapetime" -n 30 "$url" | kv median)
	stop_exporter
	row "$n" "$p" $((walk + dump)) "$aimed" "$gets" "$t1" "$tnk" "$tnc" "$t10" "$tne" "$rss_seq" "$rss" "$rss20" "$series" "$bytes" \
		"${self:--}" "${below:--}"
}
vmhwm() { awk '/VmHWM/ { print $2 }' "/proc/$exporter_pid/status"; }
scrape_report() {
	echo "One scrape of \`/metrics\` (exporter self-metrics off, gzip as Prometheus asks) against the floors of the same run:"
	echo "the /proc walk plus one host link dump (\"floor\", what a scrape without counters must do), and that plus one"
	echo "link dump aimed at every namespace by nsid (\"+ aimed\", the issue's floor for fresh counters of every container)"
	echo "or one aimed get of every container link that pairs (\"+ gets\", the lower floor: what the cached scrape asks);"
	echo "and against node_exporter's netdev collector alone on the same host (its counters of the host ends only), scraped"
	echo "alternately with the exporter, GET for GET."
	echo "Medians, µs. Targets (issue 19): counters/(floor + aimed) ≤ 1.5, counters/node_exporter ≤ 0.5, no counters/floor ≤ 1.0."
	echo "\"own id\" is the nsid the measuring namespace gives itself and, after the slash, how many of its ids are below"
	echo "it: the kernel walks past those for every container end it reports (BENCH_RUN_IN in bench/run.sh)."
	echo
	echo "| netns | procs/ns | own id | floor | floor + aimed | floor + gets | scrape (counters) | /(floor + aimed) | /(floor + gets) | node_exporter netdev | counters/node_exporter | scrape, no counters | /floor | scrape, no cache | 10 concurrent | 10/1 | series | bytes |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	local n p fl ai ge t1 tnk tnc t10 tne rs r r20 se by si sb
	while IFS=$'\t' read -r n p fl ai ge t1 tnk tnc t10 tne rs r r20 se by si sb; do
		echo "| $n | $p | $si/$sb | $fl | $((fl + ai)) | $((fl + ge)) | $t1 | $(ratio "$t1" $((fl + ai))) | $(ratio "$t1" $((fl + ge))) | $tne | $(ratio "$t1" "$tne") | $tnk | $(ratio "$tnk" "$fl") | $tnc | $t10 | $(ratio "$t10" "$t1") | $se | $by |"
	done < <(tail -n +2 "$out/scrape.tsv")
	echo
	echo "The exporter's peak RSS (VmHWM), MB: after its sequential scrapes, after ten concurrent ones (or the no-counters"
	echo "run, if higher), and after twenty concurrent ones, half of them gzip; and what each of those twenty added."
	echo "Targets: ≤ 40 MB at 1,000 namespaces with twenty, ≤ 2 MB per additional concurrent scrape."
	echo
	echo "| netns | procs/ns | sequential | 10 concurrent | 20 concurrent | per additional scrape |"
	echo "|---|---|---|---|---|---|"
	while IFS=$'\t' read -r n p fl ai ge t1 tnk tnc t10 tne rs r r20 se by _; do
		echo "| $n | $p | $(mb "$rs") | $(mb "$r") | $(mb "$r20") | $(awk -v a="$r20" -v b="$rs" 'BEGIN { printf "%.2f", (a - b) / 19 / 1024 }') |"
	done < <(tail -n +2 "$out/scrape.tsv")
	scrape_plot
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Scrape time against namespace count (one process each). The paper's method
# has no scrape: its line is N runs of its per-PID tool, when measured.
scrape_plot() {
	command -v gnuplot >/dev/null || return 0
	awk -F'\t' 'FNR == 1 { f++; next }
		f == 1 && $2 == 1 { paper[$1] = $4 }
		f == 2 && $2 == 1 { print $1, $3 / 1000, $6 / 1000, $8 / 1000, ($1 in paper) ? $1 * paper[$1] / 1000 : "NaN" }' \
		<(cat "$out/commands.tsv" 2>/dev/null || echo) "$out/scrape.tsv" >"$out/plot.dat"
	gnuplot <<-PLOT
		set terminal png size 900,560
		set output "$out/scrape.png"
		set title "Resolving every container netns: one scrape vs. the floor"
		set xlabel "container network namespaces (1 process each)"
		set ylabel "ms (median)"
		set logscale xy
		set key left top
		set grid
		plot "$out/plot.dat" using 1:3 with linespoints lw 2 title "exporter scrape (cached, counters)", \
		     "$out/plot.dat" using 1:4 with linespoints title "exporter scrape (--no-resolver.cache)", \
		     "$out/plot.dat" using 1:2 with linespoints title "floor: /proc walk + host link dump", \
		     "$out/plot.dat" using 1:5 with linespoints title "paper's method run once per netns"
	PLOT
}

# ---------------------------------------------------------- section: watch
watch_columns() { row netns line; }
watch_run() {
	local n=$1 p=$2 line
	((p == 1)) || return 0
	# Latency, then CPU time under 200 short-lived processes a second for
	# 60 s (and 60 s without them, for what the host does anyway).
	"$bin/watchlatency" -psnic "$bin/psnic" -netns "$(sample_pid "$n")" -n "${BENCH_WATCH_SAMPLES:-50}" \
		-cpu "${BENCH_WATCH_CPU:-60s}" -rate 200 | while IFS= read -r line; do row "$n" "$line"; done
}
watch_report() {
	echo "\`psnic watch\`: from just before \`ip link add\` to its \`added\` line on stdout; its CPU time while the host"
	echo "starts 200 short-lived processes a second (60 s unless BENCH_WATCH_CPU says otherwise), with no vNIC"
	echo "change (bench/watchlatency):"
	echo
	local n line
	while IFS=$'\t' read -r n line; do echo "    N=$n: $line"; done < <(tail -n +2 "$out/watch.tsv")
}

# ------------------------------------------------------------------- main
ns=
cleanup() {
	stop_exporter
	node_stop
	bash "$root/bench/fixture.sh" down "$fx" || true
	[[ -z $ns ]] || ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

# Installs and builds in the host's namespace: the run's own has no network.
if [[ -z ${BENCH_INSIDE:-} ]]; then
	need=()
	command -v gcc >/dev/null || need+=(gcc libc6-dev)
	command -v gnuplot >/dev/null || need+=(gnuplot-nox)
	command -v curl >/dev/null || need+=(curl)
	if ((${#need[@]})); then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi

	echo "== building" >&2
	mkdir -p "$bin"
	: >"$out/exporter.log"
	bash "$root/bench/fixture.sh" down "$fx" # what an interrupted run left
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/psnic ./cmd/container_vnic_exporter \
		./bench/scrapetime ./bench/watchlatency ./bench/gonothing ./bench/gofloor)
	for c in paper_psnic floor timeit; do gcc -O2 -Wall -o "$bin/$c" "$root/bench/c/$c.c"; done
fi

# The run in a namespace of its own: made here, numbered 0 in itself (the
# lowest id: the kernel passes no other to find it), the sections but watch
# run inside it by this script again (which writes no report), and the
# namespace removed after; then watch runs here, and this run reports every
# section. Inside, the host's own namespace (every host process) and any
# other on the machine are namespaces like the fixture's, as real
# containers would be on the host: without a vNIC, unless they have one.
own_ran=
if [[ $where == own && -z ${BENCH_INSIDE:-} ]]; then
	inside=() outside=()
	for s in "${sections[@]}"; do
		if [[ $s == watch ]]; then outside+=("$s"); else inside+=("$s"); fi
	done
	if ((${#inside[@]})); then
		ns=cvbench$$
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip netns exec "$ns" ip netns set "$ns" 0
		BENCH_INSIDE=$ns BENCH_SECTIONS="${inside[*]}" ip netns exec "$ns" bash "$0" "$@"
		ip netns del "$ns"
		ns= own_ran=1
	fi
	sections=("${outside[@]}")
fi

for s in "${sections[@]}"; do "${s}_columns" >"$out/$s.tsv"; done
((${#sections[@]})) || sizes=() # all ran inside a namespace of their own
for n in "${sizes[@]}"; do
	for p in "${procs_per_ns[@]}"; do
		echo "== N=$n, $p process(es) per namespace" >&2
		bash "$root/bench/fixture.sh" up "$fx" "$n" "$p"
		pid=$(sample_pid "$n")
		want=$(sample_want "$n" | sort)
		for c in psnic gofloor; do
			got=$("$bin/$c" "$pid" | sort)
			[[ $got == "$want" ]] || { echo "bench: $c $pid printed '$got', want '$want'" >&2; exit 1; }
		done
		for s in "${sections[@]}"; do
			"${s}_run" "$n" "$p" >"$out/row" # not in a pipe: a section may start the exporter
			cat "$out/row" >>"$out/$s.tsv"
			cat "$out/row" >&2
		done
		bash "$root/bench/fixture.sh" down "$fx"
	done
done

[[ -z ${BENCH_INSIDE:-} ]] || exit 0 # the outer run reports
{
	echo "Measured $(date -u +%F) on Linux $(uname -r), $(nproc) vCPUs, $(go version | awk '{ print $3 }'). Command: \`bash bench/run.sh ${asked[*]}\`,"
	if [[ -n $own_ran ]]; then
		echo "in a network namespace of the run's own that numbered itself before its fixtures (BENCH_RUN_IN=own, the"
		echo "default; the watch section in the host's)."
	else
		echo "in this host's network namespace as it was."
	fi
	for s in "${report_sections[@]}"; do echo; "${s}_report"; done
} >"$out/results.md"
cat "$out/results.md"
echo "wrote $out/results.md$([[ -e $out/scrape.png ]] && echo " and $out/scrape.png")" >&2
