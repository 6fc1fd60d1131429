package vnic

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// Benchmarks on real namespaces, made in the benchmark and removed after.
// bench/run.sh compares whole commands and scrapes at up to 1,000
// namespaces; these show where the resolver's own time goes:
//
//	go test -run '^$' -bench . -benchmem ./internal/vnic/

var fleetSizes = benchSizes()

// benchSizes is 10 and 100 namespaces, or the list in BENCH_NETNS
// (e.g. BENCH_NETNS=1000 for a profile at scale).
func benchSizes() []int {
	v := os.Getenv("BENCH_NETNS")
	if v == "" {
		return []int{10, 100}
	}
	var sizes []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			panic("BENCH_NETNS: want a comma-separated list of positive numbers, got " + v)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func BenchmarkResolvePID(b *testing.B) {
	for _, n := range fleetSizes {
		b.Run(fmt.Sprintf("netns=%d", n), func(b *testing.B) {
			fleet := netnstest.Fleet(b, n, 1)
			r := benchResolver(b, Options{})
			pid := fleet[n/2].PIDs[0]
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ns, err := r.ResolvePID(pid)
				if err != nil || len(ns.VNICs) != 1 || ns.VNICs[0].HostIfname != fleet[n/2].Host {
					b.Fatalf("%+v, %v", ns, err)
				}
			}
		})
	}
}

func BenchmarkResolveAll(b *testing.B) {
	for _, mode := range []struct{ cached, counters bool }{{true, false}, {false, false}, {true, true}} {
		cached := mode.cached
		for _, n := range fleetSizes {
			b.Run(fmt.Sprintf("cached=%v/counters=%v/netns=%d", cached, mode.counters, n), func(b *testing.B) {
				fleet := netnstest.Fleet(b, n, 1)
				r := benchResolver(b, Options{NoCache: !cached, Counters: mode.counters})
				if _, err := r.ResolveAll(); err != nil { // fill the cache
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					snap, err := r.ResolveAll()
					if err != nil || len(snap.Namespaces) < len(fleet) {
						b.Fatalf("%d namespaces, %v", len(snap.Namespaces), err)
					}
				}
			})
		}
	}
}

func benchResolver(b *testing.B, opts Options) *Resolver {
	b.Helper()
	opts.ProcfsPath = "/proc"
	r, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// BenchmarkMachine resolves whatever this machine runs, without making
// namespaces: run it beside bench/fixture.sh to profile at scale.
func BenchmarkMachine(b *testing.B) {
	netnstest.RequireRoot(b)
	b.Run("walk", func(b *testing.B) {
		r := benchResolver(b, Options{NoCache: true})
		defer netnstest.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, _, err := walk(r.procRoot, r.hostIno, r.canPtrace); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resolveall-counters", func(b *testing.B) {
		r := benchResolver(b, Options{Counters: true})
		if _, err := r.ResolveAll(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := r.ResolveAll(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resolveall-cached", func(b *testing.B) {
		r := benchResolver(b, Options{})
		if _, err := r.ResolveAll(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := r.ResolveAll(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRefresh is the per-scrape cost of fresh counters for every
// cached namespace, per namespace: a dump aimed at each (refresh, what a
// scrape did before) against one batch of aimed gets of the links that
// pair (refreshAll), and against the same gets one per exchange (LinkIn).
func BenchmarkRefresh(b *testing.B) {
	for _, n := range fleetSizes {
		fleet := netnstest.Fleet(b, n, 1)
		r := benchResolver(b, Options{Counters: true})
		if _, err := r.ResolveAll(); err != nil {
			b.Fatal(err)
		}
		var entries []*cachedNetns
		found := map[uint64]*netnsProcs{}
		for _, ns := range fleet {
			ino, err := strconv.ParseUint(netnstest.NetnsLabel(b, ns.PIDs[0]), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			e := r.cache.byInode[ino]
			if e == nil {
				b.Fatalf("namespace of PID %d not cached", ns.PIDs[0])
			}
			entries = append(entries, e)
			found[ino] = &netnsProcs{Inode: ino, PID: ns.PIDs[0]}
		}
		perNetns := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/netns")
		}
		b.Run(fmt.Sprintf("dump/netns=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for _, e := range entries {
					if !r.refresh(e) {
						b.Fatalf("refresh of namespace id %d failed", e.nsid)
					}
				}
			}
			perNetns(b)
		})
		b.Run(fmt.Sprintf("gets/netns=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if fresh := r.refreshAll(r.startRefresh(), found); len(fresh) != len(entries) {
					b.Fatalf("refreshed %d of %d namespaces", len(fresh), len(entries))
				}
			}
			perNetns(b)
		})
		b.Run(fmt.Sprintf("get-each/netns=%d", n), func(b *testing.B) {
			var l link
			for i := 0; i < b.N; i++ {
				for _, e := range entries {
					for _, old := range e.links {
						if !crosses(old) {
							continue
						}
						if ok, err := r.nl.LinkIn(e.nsid, old.Index, &l); !ok || err != nil {
							b.Fatalf("LinkIn(%d, %d): %v %v", e.nsid, old.Index, ok, err)
						}
					}
				}
			}
			perNetns(b)
		})
	}
}
