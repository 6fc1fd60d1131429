#!/usr/bin/env bash
# bench/run.sh [N ...]  - whole-command and whole-scrape comparisons on this machine.
#
# For each N (default: 10 100 1000) it builds N container namespaces with
# ../shared/bench/fixture.sh (one veth each, 1 and then 5 processes each) and
# measures, in the same run:
#   - psnic PID (ours) against the paper's method (shared/bench/psnic.c) and
#     the standard CLIs (shared/bench/baseline-nsenter-ip.sh): whole commands,
#     timed by shared/bench/rep.c (median of many runs);
#   - one scrape of the exporter (HTTP GET /metrics, exporter self-metrics off),
#     with counters (the default), with --no-collector.counters, and uncached,
#     timed in-process by bench/scrapetime, against the floors measured in the
#     same run by shared/bench/walkfloor.c -l -t: /proc walk + one host link
#     dump (without counters), plus one link dump aimed at every namespace
#     with its nsid known ("warm", with counters);
#   - ten concurrent scrapes against one, and the exporter's peak RSS after
#     the sequential scrapes and after the concurrent ones;
#   - psnic watch (bench/watchlatency): latency from `ip link add` to the
#     line, and CPU time under 200 short-lived processes a second for 60 s.
# Writes bench/out/results.md and bench/out/scrape.png (gnuplot).
# Needs root; takes about 17 minutes with N=1000 (the 1000 x 5 fixture alone
# starts 5,000 processes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
out=$root/bench/out
bin=$out/bin
mkdir -p "$bin"
export PATH="$PATH:/usr/local/go/bin"
export VB_STATE_DIR=$out/vb-state
sizes=("$@")
((${#sizes[@]})) || sizes=(10 100 1000)

command -v gnuplot >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null; }

echo "== building" >&2
(cd "$root" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/psnic ./cmd/container_vnic_exporter ./bench/scrapetime ./bench/watchlatency)
for c in rep psnic walkfloor; do gcc -O2 -o "$bin/$c-c" "$shared/$c.c"; done

exporter_pid=
cleanup() {
	[[ -n $exporter_pid ]] && kill "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null
	bash "$shared/fixture.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

median() { sed -n 's/.*median \([0-9.]*\).*/\1/p'; } # from rep's line
rep() { "$bin/rep-c" "$@" 2>&1 >/dev/null | median; }
scrape() { "$bin/scrapetime" "$@" | sed -n 's/.*median=\([0-9.]*\).*/\1/p'; }

start_exporter() { # start_exporter EXTRA_FLAGS...
	local port=$((20000 + RANDOM % 20000))
	"$bin/container_vnic_exporter" --web.listen-address=127.0.0.1:$port --web.disable-exporter-metrics \
		--log.level=warn "$@" 2>"$out/exporter.log" &
	exporter_pid=$!
	url=http://127.0.0.1:$port/metrics
	for _ in $(seq 100); do curl -sf -o /dev/null "$url" && return; sleep 0.05; done
	echo "exporter did not start" >&2; exit 1
}
stop_exporter() { kill "$exporter_pid"; wait "$exporter_pid" 2>/dev/null || true; exporter_pid=; }

results=$out/results.tsv
printf 'netns\tprocs\tpsnic_us\tpaper_us\tbaseline_us\tfloor_us\tscrape_us\tscrape_nocache_us\tscrape10_us\trss_kb\tseries\tfloor_counters_us\tscrape_nocounters_us\trss_seq_kb\n' >"$results"
: >"$out/watch.txt"
for n in "${sizes[@]}"; do
	for p in 1 5; do
		echo "== N=$n, $p process(es) per namespace" >&2
		bash "$shared/fixture.sh" up "$n" "$p" >/dev/null 2>&1
		pid=$(awk '$1 == "vb2" { print $2; exit }' "$VB_STATE_DIR/state")
		[[ $("$bin/psnic" "$pid") == vbh2 ]] || { echo "psnic $pid did not print vbh2" >&2; exit 1; }
		if ((p == 1)); then
			t_psnic=$(rep 200 "$bin/psnic" "$pid")
			t_paper=$(rep 200 "$bin/psnic-c" "$pid")
			t_base=$(rep 50 sh "$shared/baseline-nsenter-ip.sh" "$pid")
			# Latency, then CPU time under 200 short-lived processes a second
			# for 60 s (and 60 s without them, for what the host does anyway).
			"$bin/watchlatency" -psnic "$bin/psnic" -netns "$pid" -n 50 -cpu 60s -rate 200 | sed "s/^/N=$n: /" | tee -a "$out/watch.txt" >&2
		else
			t_psnic=- t_paper=- t_base=-
		fi
		"$bin/walkfloor-c" -l -t -r 50 >"$out/walkfloor.txt"
		median_of() { sed -n "s/.*$1 min=[0-9]* median=\([0-9]*\).*/\1/p" "$out/walkfloor.txt"; }
		floor=$(($(median_of walk_us) + $(median_of getlink_dump_us)))
		floor_counters=$((floor + $(median_of warm_us)))
		start_exporter
		series=$(curl -s "$url" | grep -c '^container_vnic_info{')
		t_scrape=$(scrape -n 100 "$url")
		rss_seq=$(awk '/VmHWM/ { print $2 }' "/proc/$exporter_pid/status")
		t_scrape10=$(scrape -n 30 -c 10 "$url")
		rss=$(awk '/VmHWM/ { print $2 }' "/proc/$exporter_pid/status")
		stop_exporter
		start_exporter --no-collector.counters
		t_nocounters=$(scrape -n 100 "$url")
		rss_nocounters=$(awk '/VmHWM/ { print $2 }' "/proc/$exporter_pid/status")
		((rss_nocounters > rss)) && rss=$rss_nocounters
		stop_exporter
		start_exporter --no-resolver.cache
		t_nocache=$(scrape -n 30 "$url")
		stop_exporter
		bash "$shared/fixture.sh" down >/dev/null 2>&1
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$p" "$t_psnic" "$t_paper" "$t_base" "$floor" \
			"$t_scrape" "$t_nocache" "$t_scrape10" "$rss" "$series" "$floor_counters" "$t_nocounters" "$rss_seq" | tee -a "$results" >&2
	done
done

# Markdown table with the ratios the targets are stated in.
awk -F'\t' -v date="$(date -u +%F)" -v kernel="$(uname -r)" -v cpu="$(nproc)" '
NR == 1 {
	print "Measured " date " on Linux " kernel ", " cpu " vCPUs. Medians, µs. Command: `bench/run.sh`."
	print ""
	print "| netns | procs/ns | psnic | paper psnic.c | nsenter+ip | psnic/paper | psnic/baseline | floor | floor + warm dumps | scrape (counters) | /(floor + warm) | scrape, no counters | /floor | scrape, no cache | 10 concurrent | 10/1 | peak RSS MB, sequential | peak RSS MB, after 10 concurrent | series |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	next
}
{
	r1 = ($3 == "-") ? "" : sprintf("%.2f", $3 / $4)
	r2 = ($3 == "-") ? "" : sprintf("%.2f", $3 / $5)
	printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %.2f | %s | %s | %.2f | %.1f | %.1f | %s |\n",
		$1, $2, $3, $4, $5, r1, r2, $6, $12, $7, $7 / $12, $13, $13 / $6, $8, $9, $9 / $7, $14 / 1024, $10 / 1024, $11
}' "$results" >"$out/results.md"
{
	echo
	echo "psnic watch: from \`ip link add\` to the line on stdout; its CPU time while the host starts 200 short-lived"
	echo "processes a second for 60 s, with no vNIC change (bench/watchlatency):"
	echo
	sed 's/^/    /' "$out/watch.txt"
} >>"$out/results.md"
cat "$out/results.md"

# Plot: scrape time against namespace count (1 process per namespace). The
# paper's method has no scrape: its line is N runs of its per-PID tool.
awk -F'\t' 'NR > 1 && $2 == 1 { print $1, $6 / 1000, $7 / 1000, $8 / 1000, $1 * $4 / 1000 }' "$results" >"$out/plot.dat"
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
	     "$out/plot.dat" using 1:5 with linespoints title "paper's psnic.c run once per netns"
PLOT
echo "wrote $out/results.md and $out/scrape.png" >&2
