package collector

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/kube/kubetest"
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
			reg := prometheus.NewRegistry()
			reg.MustRegister(New(fixedResolver{benchSnapshot(1000, counters)}, promslog.NewNopLogger()))
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

// benchSnapshot is n namespaces of one veth each, with counters or not.
func benchSnapshot(n int, counters bool) vnic.Snapshot {
	var snap vnic.Snapshot
	for i := 0; i < n; i++ {
		v := vnic.VNIC{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: fmt.Sprintf("veth%07x", i),
			HostIfindex: 1000 + i, Kind: "veth"}
		if counters {
			v.ContainerStats = &vnic.Stats{RxBytes: uint64(i) << 20, TxBytes: 1 << 30, RxPackets: 12345, TxPackets: 67890}
			v.HostStats = &vnic.Stats{RxBytes: 1 << 30, TxBytes: uint64(i) << 20, RxPackets: 67890, TxPackets: 12345}
			v.ContainerState = vnic.LinkState{MTU: 1500, OperState: vnic.OperUp, Carrier: true}
			v.HostState = v.ContainerState
		}
		snap.Namespaces = append(snap.Namespaces, vnic.Netns{Inode: 4026532000 + uint64(i), PID: 10000 + i, VNICs: []vnic.VNIC{v}})
	}
	return snap
}

// BenchmarkHandler is BenchmarkEncode through the fast path, each scrape
// a resolution of its own as sequential scrapes are: building the
// families, encoding them, and compressing them for gzip. With identity:
// the three identity labels on every per-vNIC series, to see what labels
// cost.
//
//	go test -run '^$' -bench Handler -benchmem ./collector/
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct {
		gzip, identity bool
		kinds          string
	}{{false, false, "bytes,packets,errors,drops,state"}, {true, false, "bytes,packets,errors,drops,state"},
		{true, true, "bytes,packets,errors,drops,state"}, {true, false, "bytes,packets"}, {true, true, "bytes,packets"}} {
		b.Run(fmt.Sprintf("gzip=%v/identity=%v/kinds=%s/netns=1000", tc.gzip, tc.identity, tc.kinds), func(b *testing.B) {
			col, err := New(fixedResolver{benchSnapshot(1000, true)}, promslog.NewNopLogger()).WithSeries("container,host,parent", tc.kinds)
			if err != nil {
				b.Fatal(err)
			}
			if tc.identity {
				col.WithLabels(LabelSource{Names: IdentityLabels, Values: func(netns uint64, _ int) []string {
					return []string{fmt.Sprintf("%064x", netns), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "containerd"}
				}})
			}
			h := col.Handler(HandlerOpts{})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.gzip {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			b.ReportMetric(float64(serveN(b, h, req)), "bytes/scrape")
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
			scrapeAsPrometheus(b, New(r, promslog.NewNopLogger()).Handler(HandlerOpts{}))
		})
	}
}

// The cost of Kubernetes names: a scrape of 1,000 pods' namespaces (one
// veth each, counters on, identity on) with --collector.kubernetes, asking
// a fake CRI runtime served over a unix socket (1,000 sandboxes, 2,000
// running containers, labelled as kubelet labels them) once per scrape,
// against the same scrape without it. Conversion, gathering and encoding
// only: the kernel's share of a real scrape (BenchmarkScrapeMachine) comes
// on top of both. With the exporter's default refresh interval (15 s) the
// runtime is asked only when a pod appears, so the steady scrape pays for
// the two labels and container_info; refresh=0 asks at every scrape, the
// worst case (BenchmarkPods in internal/kube times the query alone).
//
//	go test -run '^$' -bench Kubernetes -benchmem -count 6 ./collector/
func BenchmarkKubernetes(b *testing.B) {
	const n = 1000
	var snap vnic.Snapshot
	var pods []kubetest.FakePod
	ids := map[int]cgroupid.Identity{}
	for i := 0; i < n; i++ {
		v := vnic.VNIC{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: fmt.Sprintf("veth%07x", i), HostIfindex: 1000 + i, Kind: "veth",
			ContainerStats: &vnic.Stats{RxBytes: uint64(i) << 20, TxBytes: 1 << 30, RxPackets: 12345, TxPackets: 67890},
			HostStats:      &vnic.Stats{RxBytes: 1 << 30, TxBytes: uint64(i) << 20, RxPackets: 67890, TxPackets: 12345}}
		snap.Namespaces = append(snap.Namespaces, vnic.Netns{Inode: 4026532000 + uint64(i), PID: 10000 + i, VNICs: []vnic.VNIC{v}})
		// Real ids are random: as compressible as theirs, not runs of zeros.
		u := sha256.Sum256([]byte("pod" + strconv.Itoa(i)))
		uid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
		ids[10000+i] = cgroupid.Identity{ContainerID: fmt.Sprintf("%x", sha256.Sum256([]byte("ctr"+strconv.Itoa(i)))), PodUID: uid}
		pods = append(pods, kubetest.FakePod{UID: uid, Namespace: fmt.Sprintf("team-%d", i%20), Name: fmt.Sprintf("web-%d-7d4b9c8f6-x%04d", i, i),
			Containers: []string{"app", "sidecar"}})
	}
	identity := func(_ uint64, pid int) (cgroupid.Identity, error) { return ids[pid], nil }
	fake, err := kubetest.ServeFake(filepath.Join(b.TempDir(), "cri.sock"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Stop)
	fake.SetPods(pods)
	// The cases: names off (identity on the counters, the exporter's
	// default without --collector.kubernetes); names on with the identity
	// on container_vnic_info only (its default with it); names on with the
	// identity on the counters too (--collector.counters.identity given);
	// the runtime asked on every scrape; names off, identity on info only
	// (--no-collector.counters.identity).
	for _, tc := range []struct {
		on           bool
		refresh      time.Duration
		identityInfo bool // identity labels on container_vnic_info only
	}{{false, 0, false}, {true, 15 * time.Second, true}, {true, 15 * time.Second, false},
		{true, 0, true}, {false, 0, true}} {
		on, refresh := tc.on, tc.refresh
		name := "kubernetes=false"
		if on {
			name = fmt.Sprintf("kubernetes=true/refresh=%v", refresh)
		}
		where := "counters"
		if tc.identityInfo {
			where = "info"
		}
		b.Run(fmt.Sprintf("%s/identity=%s/netns=%d", name, where, n), func(b *testing.B) {
			src := IdentitySource(identity)
			src.InfoOnly = tc.identityInfo
			col := New(fakeResolver{snap: snap}, promslog.NewNopLogger()).WithLabels(src)
			if on {
				cri, err := kube.New(kube.Options{Endpoint: fake.Socket, Timeout: 5 * time.Second, RefreshInterval: refresh})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cri.Close() })
				col.WithKubernetes(cri)
			}
			h := col.Handler(HandlerOpts{})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if named := strings.Contains(w.Body.String(), `pod="web-999-7d4b9c8f6-x0999"`); named != on {
				b.Fatalf("kubernetes %v, but pods named: %v", on, named)
			}
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			req.Header.Set("Accept", "text/plain;version=0.0.4")
			b.ReportMetric(float64(serveN(b, h, req)), "gzip-bytes/scrape")
		})
	}
}

// BenchmarkKubernetesMachine is BenchmarkScrapeMachine (counters on) with
// identity on, with and without Kubernetes names: the whole scrape, kernel
// included. Every namespace of the machine is given a pod UID (the
// identity function stands in for the cgroups, which the fixture's
// processes do not have) and a pod of two containers in a fake CRI
// runtime. Run it beside `bench/fixture.sh up DIR 1000`:
//
//	go test -run '^$' -bench KubernetesMachine -count 6 ./collector/
func BenchmarkKubernetesMachine(b *testing.B) {
	netnstest.RequireRoot(b)
	r, err := vnic.New(vnic.Options{ProcfsPath: "/proc", Counters: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	snap, err := r.ResolveAll()
	if err != nil {
		b.Fatal(err)
	}
	fake, err := kubetest.ServeFake(filepath.Join(b.TempDir(), "cri.sock"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Stop)
	var mu sync.Mutex
	ids := map[uint64]cgroupid.Identity{}
	var pods []kubetest.FakePod
	uidOf := func(netns uint64) cgroupid.Identity {
		mu.Lock()
		defer mu.Unlock()
		id, ok := ids[netns]
		if !ok {
			c, u := sha256.Sum256([]byte("ctr"+strconv.FormatUint(netns, 10))), sha256.Sum256([]byte("pod"+strconv.FormatUint(netns, 10)))
			id = cgroupid.Identity{ContainerID: fmt.Sprintf("%x", c), PodUID: fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])}
			ids[netns] = id
		}
		return id
	}
	for i, ns := range snap.Namespaces {
		pods = append(pods, kubetest.FakePod{UID: uidOf(ns.Inode).PodUID, Namespace: fmt.Sprintf("team-%d", i%20),
			Name: fmt.Sprintf("web-%d-7d4b9c8f6-x%04d", i, i), Containers: []string{"app", "sidecar"}})
	}
	fake.SetPods(pods)
	identity := func(netns uint64, _ int) (cgroupid.Identity, error) { return uidOf(netns), nil }
	// Without names: no identity, identity on the counters (the default
	// with --collector.container-identity); with names: the default of
	// --collector.kubernetes (identity on container_vnic_info only).
	for _, tc := range []struct {
		name     string
		identity bool
		on       bool
	}{{"identity=none/kubernetes=false", false, false}, {"identity=counters/kubernetes=false", true, false}, {"identity=info/kubernetes=true", true, true}} {
		on := tc.on
		b.Run(fmt.Sprintf("%s/netns=%d", tc.name, len(snap.Namespaces)), func(b *testing.B) {
			col := New(r, promslog.NewNopLogger())
			if tc.identity {
				src := IdentitySource(identity)
				src.InfoOnly = on
				col.WithLabels(src)
			}
			if on {
				cri, err := kube.New(kube.Options{Endpoint: fake.Socket, Timeout: 5 * time.Second, RefreshInterval: 15 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cri.Close() })
				col.WithKubernetes(cri)
			}
			scrapeAsPrometheus(b, col.Handler(HandlerOpts{}))
		})
	}
}

// scrapeAsPrometheus scrapes h as Prometheus asks (text, gzip) once to
// fill its caches, then b.N times from a reset timer, each answer checked
// and kept, and reports the size of the last.
func scrapeAsPrometheus(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	h.ServeHTTP(httptest.NewRecorder(), req)
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
}

// serveN serves req b.N times from a reset timer, keeping no body, and
// returns the size of the last response.
func serveN(b *testing.B, h http.Handler, req *http.Request) int {
	b.ResetTimer()
	var size int
	for i := 0; i < b.N; i++ {
		w := &discard{h: http.Header{}}
		h.ServeHTTP(w, req)
		size, _ = strconv.Atoi(w.h.Get("Content-Length"))
	}
	return size
}
