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
#             nothing (bench/gonothing) and /bin/true (1 process each only);
#   scrape    one exporter scrape (cached, --no-resolver.cache, ten at once),
#             timed in-process by bench/scrapetime, against the floor
#             (bench/c/floor.c: /proc walk + host link dump; aimed dumps);
#             the exporter's peak RSS;
#   watch     psnic watch: `ip link add` to its line (bench/watchlatency).
# Writes bench/out/results.md (one table per section) and bench/out/scrape.png.
# Needs root, go and gcc; installs gnuplot from Debian when missing. About 10
# minutes with N=1000 (the 1000 x 5 fixture alone starts 5,000 processes).
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
read -ra procs_per_ns <<<"${BENCH_PROCS:-1 5}"
read -ra sections <<<"${BENCH_SECTIONS:-commands scrape watch}"

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
	for _ in $(seq 200); do curl -sf -o /dev/null "$url" && return; sleep 0.05; done
	echo "bench: the exporter did not answer on $url (see $out/exporter.log)" >&2
	exit 1
}
stop_exporter() {
	[[ -n $exporter_pid ]] || return 0
	kill "$exporter_pid" 2>/dev/null || true
	wait "$exporter_pid" 2>/dev/null || true
	exporter_pid=
}

# ------------------------------------------------------- section: commands
commands_columns() { row netns procs psnic_us paper_us nsenterip_us gonothing_us true_us; }
commands_run() {
	local n=$1 p=$2 pid
	((p == 1)) || return 0
	pid=$(sample_pid "$n")
	row "$n" "$p" "$(timeit 200 "$bin/psnic" "$pid")" "$(timeit 200 "$bin/paper_psnic" "$pid")" \
		"$(timeit 50 sh "$root/bench/nsenter-ip.sh" "$pid")" "$(timeit 200 "$bin/gonothing")" \
		"$(timeit 200 /bin/true)"
}
commands_report() {
	echo "Whole commands, one process per namespace: \`psnic PID\` against the paper's method, the"
	echo "\`nsenter\` + \`ip\` way, a static Go program that does nothing and \`/bin/true\`. Medians, µs."
	echo
	echo "| netns | psnic | paper | nsenter+ip | Go nothing | /bin/true | psnic/paper | psnic/nsenter+ip | psnic/Go nothing |"
	echo "|---|---|---|---|---|---|---|---|---|"
	local n p ps pa ni gn tr
	while IFS=$'\t' read -r n p ps pa ni gn tr; do
		echo "| $n | $ps | $pa | $ni | $gn | $tr | $(ratio "$ps" "$pa") | $(ratio "$ps" "$ni") | $(ratio "$ps" "$gn") |"
	done < <(tail -n +2 "$out/commands.tsv")
}

# --------------------------------------------------------- section: scrape
scrape_columns() { row netns procs floor_us walk_us dump_us aimed_us scrape_us scrape_nocache_us scrape10_us rss_kb series; }
scrape_run() {
	local n=$1 p=$2 floor walk dump aimed series t1 t10 rss tnc
	floor=$("$bin/floor" -r 50)
	walk=$(kv walk_us <<<"$floor") dump=$(kv dump_us <<<"$floor") aimed=$(kv aimed_us <<<"$floor")
	start_exporter
	series=$(curl -s "$url" | grep -c '^container_vnic_info{')
	t1=$("$bin/scrapetime" -n 100 "$url" | kv median)
	t10=$("$bin/scrapetime" -n 30 -c 10 "$url" | kv median)
	rss=$(awk '/VmHWM/ { print $2 }' "/proc/$exporter_pid/status")
	stop_exporter
	start_exporter --no-resolver.cache
	tnc=$("$bin/scrapetime" -n 30 "$url" | kv median)
	stop_exporter
	row "$n" "$p" $((walk + dump)) "$walk" "$dump" "$aimed" "$t1" "$tnc" "$t10" "$rss" "$series"
}
scrape_report() {
	echo "One scrape of \`/metrics\` (exporter self-metrics off) against the floor, the /proc walk plus one"
	echo "host link dump; \"aimed\" is one link dump aimed at each namespace by nsid (the floor of reading every"
	echo "container's links afresh). Medians, µs; peak RSS of the exporter after all of its scrapes."
	echo
	echo "| netns | procs/ns | floor | aimed | scrape | scrape/floor | scrape, no cache | 10 concurrent | 10/1 | peak RSS MB | series |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	local n p fl wa du ai t1 tnc t10 rss se
	while IFS=$'\t' read -r n p fl wa du ai t1 tnc t10 rss se; do
		echo "| $n | $p | $fl | $ai | $t1 | $(ratio "$t1" "$fl") | $tnc | $t10 | $(ratio "$t10" "$t1") | $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') | $se |"
	done < <(tail -n +2 "$out/scrape.tsv")
	scrape_plot
}
# Scrape time against namespace count (one process each). The paper's method
# has no scrape: its line is N runs of its per-PID tool, when measured.
scrape_plot() {
	command -v gnuplot >/dev/null || return 0
	awk -F'\t' 'FNR == 1 { f++; next }
		f == 1 && $2 == 1 { paper[$1] = $4 }
		f == 2 && $2 == 1 { print $1, $3 / 1000, $7 / 1000, $8 / 1000, ($1 in paper) ? $1 * paper[$1] / 1000 : "NaN" }' \
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
		plot "$out/plot.dat" using 1:3 with linespoints lw 2 title "exporter scrape (cached)", \
		     "$out/plot.dat" using 1:4 with linespoints title "exporter scrape (--no-resolver.cache)", \
		     "$out/plot.dat" using 1:2 with linespoints title "floor: /proc walk + host link dump", \
		     "$out/plot.dat" using 1:5 with linespoints title "paper's method run once per netns"
	PLOT
}

# ---------------------------------------------------------- section: watch
watch_columns() { row netns line; }
watch_run() {
	local n=$1 p=$2
	((p == 1)) || return 0
	row "$n" "$("$bin/watchlatency" -psnic "$bin/psnic" -netns "$(sample_pid "$n")" -prefix "$(cat "$fx/prefix")w" -n 50)"
}
watch_report() {
	echo "\`psnic watch\`, from just before \`ip link add\` to its \`added\` line on stdout:"
	echo
	local n line
	while IFS=$'\t' read -r n line; do echo "    N=$n: $line"; done < <(tail -n +2 "$out/watch.tsv")
}

# ------------------------------------------------------------------- main
cleanup() {
	stop_exporter
	bash "$root/bench/fixture.sh" down "$fx" || true
}
trap cleanup EXIT

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
	./bench/scrapetime ./bench/watchlatency ./bench/gonothing)
for c in paper_psnic floor timeit; do gcc -O2 -Wall -o "$bin/$c" "$root/bench/c/$c.c"; done

for s in "${sections[@]}"; do "${s}_columns" >"$out/$s.tsv"; done
for n in "${sizes[@]}"; do
	for p in "${procs_per_ns[@]}"; do
		echo "== N=$n, $p process(es) per namespace" >&2
		bash "$root/bench/fixture.sh" up "$fx" "$n" "$p"
		pid=$(sample_pid "$n")
		got=$("$bin/psnic" "$pid" | sort) want=$(sample_want "$n" | sort)
		[[ $got == "$want" ]] || { echo "bench: psnic $pid printed '$got', want '$want'" >&2; exit 1; }
		for s in "${sections[@]}"; do
			"${s}_run" "$n" "$p" >"$out/row" # not in a pipe: a section may start the exporter
			cat "$out/row" >>"$out/$s.tsv"
			cat "$out/row" >&2
		done
		bash "$root/bench/fixture.sh" down "$fx"
	done
done

{
	echo "Measured $(date -u +%F) on Linux $(uname -r), $(nproc) vCPUs, $(go version | awk '{ print $3 }'). Command: \`bash bench/run.sh ${sizes[*]}\`."
	for s in "${sections[@]}"; do echo; "${s}_report"; done
} >"$out/results.md"
cat "$out/results.md"
echo "wrote $out/results.md$([[ -e $out/scrape.png ]] && echo " and $out/scrape.png")" >&2
