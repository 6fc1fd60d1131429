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
