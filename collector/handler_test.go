package collector

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"google.golang.org/protobuf/proto"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixtureSnapshot has every kind of series: two veths in one namespace,
// a macvlan (parent info and parent counters, the parent shared by two
// links), a namespace without vNICs, names that need escaping, counters
// at the edges of float64's exactness, and every error and skip cause.
func fixtureSnapshot() vnic.Snapshot {
	up := vnic.LinkState{MTU: 1500, OperState: vnic.OperUp, Carrier: true}
	down := vnic.LinkState{MTU: 9000, OperState: 2}
	stats := func(base uint64) *vnic.Stats {
		return &vnic.Stats{RxBytes: base, TxBytes: base * 3, RxPackets: base / 7, TxPackets: 1,
			RxErrors: 0, TxErrors: 2, RxDropped: 1 << 53, TxDropped: 1<<64 - 1}
	}
	return vnic.Snapshot{
		Namespaces: []vnic.Netns{
			{Inode: 4026532301, PID: 10, VNICs: []vnic.VNIC{
				{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth1", HostIfindex: 14, Kind: "veth",
					ContainerStats: stats(123456789), HostStats: stats(987654321), ContainerState: up, HostState: up},
				{ContainerIfname: `q"b\é`, ContainerIfindex: 10, HostIfname: "e\xff", HostIfindex: 9, Kind: "veth",
					ContainerStats: stats(0), HostStats: stats(1), ContainerState: down, HostState: up},
				{ContainerIfname: "mv0", ContainerIfindex: 3, HostIfname: "br0", HostIfindex: 5, Kind: "macvlan",
					ContainerStats: stats(55), HostStats: stats(1e12), ContainerState: up, HostState: up},
			}},
			{Inode: 4026532400, PID: 20},
			{Inode: 4026532500, PID: 30, VNICs: []vnic.VNIC{
				{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth3", HostIfindex: 100, Kind: "veth",
					ContainerStats: stats(42), HostStats: nil, ContainerState: up}, // host end gone: no host series
				{ContainerIfname: "mv1", ContainerIfindex: 4, HostIfname: "br0", HostIfindex: 5, Kind: "macvlan",
					ContainerStats: stats(56), HostStats: stats(1e12), ContainerState: up, HostState: up},
			}},
		},
		Walk:     vnic.WalkStats{Processes: 50, Skipped: map[vnic.Cause]int{vnic.CausePermission: 2, vnic.CauseVanished: 1}},
		Failed:   map[vnic.Cause]int{vnic.CauseNetlink: 1, vnic.CauseNoProcess: 3},
		Vanished: 2,
		Queried:  1,
	}
}

// fixtureLabels is a label source whose values need every escape, are
// empty, or are not UTF-8.
var fixtureLabels = LabelSource{Names: []string{"pod", "empty", "odd"}, Values: func(_ uint64, pid int) []string {
	if pid == 30 {
		return []string{"p\nq", ""} // short: odd is ""
	}
	return []string{`a"b\c`, "", "x\xc3y"}
}}

// fixtureCollector serves fixtureSnapshot; the duration is made fixed so
// that outputs compare.
func fixtureCollector() *Collector {
	c := New(fixedResolver{fixtureSnapshot()}, promslog.NewNopLogger()).WithLabels(fixtureLabels)
	c.since = func(time.Time) time.Duration { return 1234567 * time.Microsecond }
	return c
}

// fixtureKubeCollector serves fixtureSnapshot with identity and
// Kubernetes names: a pod of two containers whose names need escaping in
// the first namespace, a pod the runtime does not know in the other.
func fixtureKubeCollector() *Collector {
	const known, unknown = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "11111111-2222-4333-8444-555555555555"
	c := New(fixedResolver{fixtureSnapshot()}, promslog.NewNopLogger()).WithIdentity(func(_ uint64, pid int) (cgroupid.Identity, error) {
		if pid == 10 {
			return cgroupid.Identity{ContainerID: strings.Repeat("ab", 32), PodUID: known, Runtime: "containerd"}, nil
		}
		return cgroupid.Identity{ContainerID: strings.Repeat("cd", 32), PodUID: unknown, Runtime: "cri-o"}, nil
	}).WithKubernetes(&fakeKube{up: true, pods: map[string]kube.Pod{known: {Namespace: "shop", Name: `web"1\`, Containers: []kube.Container{
		{ID: strings.Repeat("ef", 32), Name: "sidecar", Image: "envoy:1\n"},
		{ID: strings.Repeat("01", 32), Name: "app", Image: "reg.example/nginx@sha256:" + strings.Repeat("9", 64)},
	}}}})
	c.since = func(time.Time) time.Duration { return 1234567 * time.Microsecond }
	return c
}

// fixtures are the collectors the exactness and golden tests serve, by
// the stem of their golden files.
var fixtures = []struct {
	name string
	new  func() *Collector
}{{"fixture", fixtureCollector}, {"fixture-kubernetes", fixtureKubeCollector}}

type fixedResolver struct{ snap vnic.Snapshot }

func (f fixedResolver) ResolveAll() (vnic.Snapshot, error) { return f.snap, nil }

// fixtureRest are other families around the collector's in name order:
// before, between and after them.
func fixtureRest() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"a_first", "container_vnic_exporter_build_info", "container_vnic_mtu", "zz_last_total"} {
		if strings.HasSuffix(name, "_total") {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "A \\ counter."})
			c.Add(3)
			reg.MustRegister(c)
		} else {
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "A gauge\nof two lines."}, []string{"l"})
			g.WithLabelValues("v").Set(1.5)
			reg.MustRegister(g)
		}
	}
	return reg
}

// Accept headers: Prometheus 3's default (OpenMetrics), Prometheus 2's
// text, and none.
var accepts = map[string]string{
	"openmetrics":       "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
	"openmetrics-0.0.1": "application/openmetrics-text;version=0.0.1",
	"text":              "text/plain;version=0.0.4;q=0.9,*/*;q=0.1",
	"none":              "",
}

// get serves one request and returns its content type and body, gunzipped
// when it asked for gzip.
func get(t *testing.T, h http.Handler, accept string, gz bool) (string, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if gz {
		if w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("asked for gzip, got Content-Encoding %q", w.Header().Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false) // one member, as every gzip client reads
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	return w.Header().Get("Content-Type"), body
}

// decode parses a body with expfmt's own parser for its content type.
func decode(t *testing.T, contentType string, body []byte) []*dto.MetricFamily {
	t.Helper()
	format := expfmt.ResponseFormat(http.Header{"Content-Type": {contentType}})
	dec := expfmt.NewDecoder(bytes.NewReader(body), format)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			// The text parser gives families in no particular order.
			slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
			return out
		} else if err != nil {
			t.Fatalf("parsing %s: %v\n%s", contentType, err, body)
		}
		out = append(out, mf)
	}
}

// The fast path writes exactly what client_golang writes for the same
// families (the collector and others registered together, served by
// promhttp): the same bytes, in every format and with or without gzip,
// and, parsed by expfmt, the same families and samples one by one (the
// text format and OpenMetrics 1.0.0 without gzip: expfmt's OpenMetrics
// parser takes seconds a body, and equal bytes parse the same).
func TestFastPathMatchesClientGolang(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			col := fx.new()
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(col)
			rest := fixtureRest()
			slow := promhttp.HandlerFor(prometheus.Gatherers{reg, rest}, promhttp.HandlerOpts{EnableOpenMetrics: true})
			fast := fx.new().Handler(HandlerOpts{Rest: rest})
			for name, accept := range accepts {
				for _, gz := range []bool{false, true} {
					wantType, want := get(t, slow, accept, gz)
					gotType, got := get(t, fast, accept, gz)
					if gotType != wantType {
						t.Errorf("%s: Content-Type %q, client_golang's %q", name, gotType, wantType)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s, gzip %v: the bytes differ from client_golang's:\n%s\n---- client_golang:\n%s", name, gz, got, want)
					}
					if gz || name != "text" && name != "openmetrics" {
						continue
					}
					gotFams := decode(t, gotType, got)
					compareFamilies(t, name, gotFams, decode(t, wantType, want))
					if name == "openmetrics" {
						checkOpenMetrics(t, gotType, got, gotFams)
					}
				}
			}
		})
	}
}

func compareFamilies(t *testing.T, name string, gotFams, wantFams []*dto.MetricFamily) {
	t.Helper()
	if len(gotFams) != len(wantFams) {
		t.Errorf("%s: %d families, client_golang %d", name, len(gotFams), len(wantFams))
	}
	for i := range min(len(gotFams), len(wantFams)) {
		g, w := gotFams[i], wantFams[i]
		if g.GetName() != w.GetName() || g.GetHelp() != w.GetHelp() || g.GetType() != w.GetType() || len(g.Metric) != len(w.Metric) {
			t.Errorf("%s: family %d is %s %v (%d samples), client_golang's %s %v (%d)", name, i,
				g.GetName(), g.GetType(), len(g.Metric), w.GetName(), w.GetType(), len(w.Metric))
			continue
		}
		for j := range g.Metric {
			if !proto.Equal(g.Metric[j], w.Metric[j]) {
				t.Errorf("%s: %s sample %d is %v, client_golang's %v", name, g.GetName(), j, g.Metric[j], w.Metric[j])
			}
		}
	}
}

// checkOpenMetrics checks an OpenMetrics answer as Prometheus 3 asks for
// it: counters named without _total in # TYPE and with it on samples, and
// one # EOF, last.
func checkOpenMetrics(t *testing.T, contentType string, body []byte, fams []*dto.MetricFamily) {
	t.Helper()
	if !strings.HasPrefix(contentType, "application/openmetrics-text; version=1.0.0") {
		t.Errorf("Content-Type %q", contentType)
	}
	text := string(body)
	if !strings.HasSuffix(text, "\n# EOF\n") || strings.Count(text, "# EOF") != 1 {
		t.Errorf("body does not end in one # EOF:\n%s", text[max(0, len(text)-200):])
	}
	for _, want := range []string{
		"# TYPE container_vnic_host_receive_bytes counter\n",
		"\ncontainer_vnic_host_receive_bytes_total{",
		"# TYPE container_vnic_mtu_bytes gauge\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the OpenMetrics body", want)
		}
	}
	counters := 0
	for _, mf := range fams {
		if mf.GetType() == dto.MetricType_COUNTER {
			counters++
			if !strings.HasSuffix(mf.GetName(), "_total") {
				t.Errorf("counter %s parsed without _total", mf.GetName())
			}
		}
	}
	if counters == 0 {
		t.Error("no counter parsed from the OpenMetrics body")
	}
}

// The fast path's output for the fixture, kept in testdata (go test
// -run TestGolden -update rewrites it): a change of any series, label or
// HELP shows in review.
func TestGolden(t *testing.T) {
	for _, fx := range fixtures {
		h := fx.new().Handler(HandlerOpts{Rest: fixtureRest()})
		for _, tc := range []struct{ file, accept string }{
			{fx.name + ".prom", accepts["text"]},
			{fx.name + ".om.txt", accepts["openmetrics"]},
		} {
			_, got := get(t, h, tc.accept, false)
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestGolden -update ./collector/ writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the output (rerun with -update if the change is meant):\n%s", path, got)
			}
		}
	}
}

// discard is a ResponseWriter that keeps nothing of the body.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// Scrapes sharing a resolution share its encoding and compression: twenty
// concurrent scrapes of 1,000 vNICs, half asking for gzip, half for
// OpenMetrics, with other families to merge, allocate little more than the
// first four (one of each kind) do. (Each encoding its own body allocated
// several MB per scrape; a compressor per gzip scrape, 700 KB.)
func TestConcurrentScrapesShareMemory(t *testing.T) {
	col := New(fixedResolver{benchSnapshot(1000, true)}, promslog.NewNopLogger())
	h := col.Handler(HandlerOpts{Rest: fixtureRest()}).(*handler)
	formats := []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)}
	// allocated serves n concurrent scrapes of one fresh flight and
	// returns the bytes they allocated.
	allocated := func(n int) uint64 {
		f := col.resolve()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				if i%2 == 1 {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				kind := i / 2 % 2
				h.serve(&discard{h: http.Header{}}, req, f, kind, formats[kind], h.gather())
			}()
		}
		wg.Wait()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	allocated(4) // warm the pools
	// The least of three tries: a GC during one (the race detector makes
	// them frequent) can empty the pools and charge a compressor to it.
	perScrape := math.Inf(1)
	for range 3 {
		four, twenty := allocated(4), allocated(20)
		p := (float64(twenty) - float64(four)) / 16
		t.Logf("4 scrapes allocate %.2f MB, 20: %.2f MB, %.0f KB per additional scrape", float64(four)/1e6, float64(twenty)/1e6, p/1e3)
		perScrape = min(perScrape, p)
	}
	// A body of its own is over 3 MB per scrape here; the budget
	// is 2 MB of RSS per additional scrape. Measured: 6-200 KB.
	if perScrape > 1e6 {
		t.Errorf("each additional concurrent scrape allocates %.0f KB: scrapes do not share the flight's encoding", perScrape/1e3)
	}
}

// Every family's HELP is its own: the host end's do not read as the
// container end's (issue 21).
func TestHelpNamesTheEnd(t *testing.T) {
	seen := map[string]string{}
	defs := New(nil, promslog.NewNopLogger()).defs()
	for _, d := range defs.all {
		if other, ok := seen[d.help]; ok {
			t.Errorf("%s and %s share their HELP %q", d.name, other, d.help)
		}
		seen[d.help] = d.name
		if !model.LegacyValidation.IsValidMetricName(d.name) {
			t.Errorf("family name %q", d.name)
		}
	}
	for e := range numEnds {
		for _, d := range defs.ends[e] {
			if !strings.HasPrefix(d.name, namespace+"_"+endPrefix[e]) || !strings.HasPrefix(d.help, endHelp[e]) {
				t.Errorf("%s: HELP %q does not start with its end, %q", d.name, d.help, endHelp[e])
			}
		}
	}
}

// --collector.counters.ends and .kinds export exactly the chosen families.
func TestWithSeries(t *testing.T) {
	col, err := New(fixedResolver{fixtureSnapshot()}, promslog.NewNopLogger()).WithSeries("host, parent", "bytes,state")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range gatherPedantic(t, col) {
		names[mf.GetName()] = true
	}
	for name, want := range map[string]bool{
		"container_vnic_host_receive_bytes_total":    true,
		"container_vnic_parent_transmit_bytes_total": true,
		"container_vnic_host_mtu_bytes":              true,
		"container_vnic_parent_up":                   true,
		"container_vnic_receive_bytes_total":         false,
		"container_vnic_up":                          false,
		"container_vnic_host_receive_packets_total":  false,
		"container_vnic_host_transmit_drop_total":    false,
		"container_vnic_info":                        true,
	} {
		if names[name] != want {
			t.Errorf("%s exported: %v, want %v", name, names[name], want)
		}
	}
	for _, bad := range [][2]string{{"container,guest", "bytes"}, {"host", "bytes,octets"}} {
		if _, err := New(nil, promslog.NewNopLogger()).WithSeries(bad[0], bad[1]); err == nil {
			t.Errorf("WithSeries(%q, %q) took it", bad[0], bad[1])
		}
	}
}

// A body large enough to be compressed on every CPU at once still
// gunzips to exactly the plain body.
func TestParallelGzip(t *testing.T) {
	col := New(fixedResolver{benchSnapshot(1000, true)}, promslog.NewNopLogger())
	col.since = func(time.Time) time.Duration { return time.Second }
	h := col.Handler(HandlerOpts{})
	_, plain := get(t, h, accepts["text"], false)
	if len(plain) < 4*parallelChunk {
		t.Fatalf("body of %d bytes: too small to be split", len(plain))
	}
	_, gunzipped := get(t, h, accepts["text"], true)
	if !bytes.Equal(plain, gunzipped) {
		t.Fatalf("gzip body gunzips to %d bytes, not the plain body's %d", len(gunzipped), len(plain))
	}
}

// blockingResolver answers once released.
type blockingResolver struct {
	release chan struct{}
	calls   atomic.Int32
}

func (b *blockingResolver) ResolveAll() (vnic.Snapshot, error) {
	b.calls.Add(1)
	<-b.release
	return fixtureSnapshot(), nil
}

// A scrape whose deadline passes while it waits for the resolution gets
// 503 without waiting for it, and the resolution is not abandoned: the
// next scrape gets an answer from it (or, if it came after, one more).
func TestHandlerDeadline(t *testing.T) {
	r := &blockingResolver{release: make(chan struct{})}
	h := New(r, promslog.NewNopLogger()).Handler(HandlerOpts{Deadline: func(req *http.Request) (time.Duration, bool) {
		return time.Millisecond, req.URL.Query().Get("deadline") != ""
	}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics?deadline=1", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "timed out") {
		t.Fatalf("scrape past its deadline: %d %q, want 503 timed out", w.Code, w.Body)
	}
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		done <- w.Code
	}()
	close(r.release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("next scrape: %d", code)
	}
	if n := r.calls.Load(); n > 2 {
		t.Fatalf("%d resolutions for two scrapes", n)
	}
}

// A client that asks and never reads keeps its place among
// MaxRequestsInFlight only until WriteTimeout: then the write fails, and
// the server closes its connection (it stayed open, and every other scrape
// got 503, for as long as the client did), and the next scrape is served.
func TestHandlerClientNotReading(t *testing.T) {
	h := New(&genResolver{}, promslog.NewNopLogger()).Handler(HandlerOpts{MaxRequestsInFlight: 1, WriteTimeout: 300 * time.Millisecond})
	srv := httptest.NewUnstartedServer(h)
	var stuck atomic.Value // the client's address
	closed := make(chan struct{})
	var once sync.Once
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed && c.RemoteAddr().String() == stuck.Load() {
			once.Do(func() { close(closed) })
		}
	}
	srv.Start()
	defer srv.Close()
	conn := netnstest.DialNotReading(t, srv.Listener.Addr().String())
	defer conn.Close()
	stuck.Store(conn.LocalAddr().String())
	// Pipelined scrapes of ~1 MB each: more than the kernel buffers hold,
	// so one of them is left writing.
	if _, err := io.WriteString(conn, strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 40)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection of a client that reads nothing still open 20 s on")
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("next scrape: %d, want 200", resp.StatusCode)
	}
}

// A scrape whose deadline is longer than WriteTimeout still gets its 503
// when the deadline passes: it has WriteTimeout after it to be written (the
// connection closed at the deadline instead, and the scraper saw EOF).
func TestHandlerDeadlineLongerThanWriteTimeout(t *testing.T) {
	r := &blockingResolver{release: make(chan struct{})}
	defer close(r.release)
	h := New(r, promslog.NewNopLogger()).Handler(HandlerOpts{WriteTimeout: 200 * time.Millisecond,
		Deadline: func(*http.Request) (time.Duration, bool) { return 400 * time.Millisecond, true }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("scrape past its deadline: %v, want a 503", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("scrape past its deadline: %d, want 503", resp.StatusCode)
	}
}
