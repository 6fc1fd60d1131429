package collector

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// The collector's own share of a scrape, without the kernel: converting a
// snapshot of 1,000 namespaces (one veth each) into metrics and encoding
// them, with and without counters.
//
//	go test -run '^$' -bench Encode -benchmem ./collector/
func BenchmarkEncode(b *testing.B) {
	for _, counters := range []bool{false, true} {
		b.Run(fmt.Sprintf("counters=%v/netns=1000", counters), func(b *testing.B) {
			var snap vnic.Snapshot
			for i := 0; i < 1000; i++ {
				v := vnic.VNIC{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: fmt.Sprintf("veth%07x", i),
					HostIfindex: 1000 + i, Kind: "veth"}
				if counters {
					v.ContainerStats = &vnic.Stats{RxBytes: uint64(i) << 20, TxBytes: 1 << 30, RxPackets: 12345, TxPackets: 67890}
					v.HostStats = &vnic.Stats{RxBytes: 1 << 30, TxBytes: uint64(i) << 20, RxPackets: 67890, TxPackets: 12345}
				}
				snap.Namespaces = append(snap.Namespaces, vnic.Netns{Inode: 4026532000 + uint64(i), PID: 10000 + i, VNICs: []vnic.VNIC{v}})
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(New(fakeResolver{snap: snap}, promslog.NewNopLogger()))
			var buf bytes.Buffer
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mfs, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(buf.Len()), "bytes/scrape")
		})
	}
}

// BenchmarkScrapeMachine serves /metrics for whatever this machine runs,
// in-process, as Prometheus asks for it (text, gzip): resolution,
// conversion, gathering, encoding and compression, with and without
// counters. Run it beside `bench/fixture.sh up DIR 1000` to see where a scrape
// of 1,000 namespaces goes (-cpuprofile).
func BenchmarkScrapeMachine(b *testing.B) {
	netnstest.RequireRoot(b)
	for _, counters := range []bool{false, true} {
		b.Run(fmt.Sprintf("counters=%v", counters), func(b *testing.B) {
			r, err := vnic.New(vnic.Options{ProcfsPath: "/proc", Counters: counters})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close() })
			reg := prometheus.NewRegistry()
			reg.MustRegister(New(r, promslog.NewNopLogger()))
			h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			req.Header.Set("Accept", "text/plain;version=0.0.4")
			h.ServeHTTP(httptest.NewRecorder(), req) // fill the cache
			b.ResetTimer()
			var size int
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d: %s", w.Code, w.Body)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "gzip-bytes/scrape")
		})
	}
}
