package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// genResolver answers each resolution with the same 1,000 vNICs whose
// receive bytes are the resolution's number, so each flight's body is its
// own.
type genResolver struct {
	gen  atomic.Uint64
	gate chan struct{} // when set, the next resolution waits for it
}

func (g *genResolver) ResolveAll() (vnic.Snapshot, error) {
	if g.gate != nil {
		<-g.gate
		g.gate = nil
	}
	snap := benchSnapshot(1000, true)
	n := g.gen.Add(1)
	for i := range snap.Namespaces {
		snap.Namespaces[i].VNICs[0].ContainerStats.RxBytes = n
	}
	return snap, nil
}

// blockingWriter takes its first write, then blocks every other until
// released, keeping what it was given.
type blockingWriter struct {
	h       http.Header
	body    bytes.Buffer
	writes  int
	blocked chan struct{} // closed when a write blocks
	release chan struct{}
}

func (w *blockingWriter) Header() http.Header { return w.h }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Write(b []byte) (int, error) {
	w.writes++
	if w.writes == 2 {
		close(w.blocked)
		<-w.release
	}
	return w.body.Write(b)
}

// A flight's buffers go back to the pool only when its last scrape has
// written them: a scrape still writing flight A's body, which it shares
// with a scrape that has finished, while flights B, C and D are resolved,
// encoded, compressed and served, gets A's bytes to the end.
func TestFlightBuffersOutliveTheirScrapes(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "gzip"}[gz], func(t *testing.T) {
			res := &genResolver{}
			col := New(res, promslog.NewNopLogger())
			h := col.Handler(HandlerOpts{Rest: fixtureRest()})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			for range 2 { // fill the pool
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
			// Flight 3: a quick scrape starts it, the slow one joins.
			gate := make(chan struct{})
			res.gate = gate
			quick := make(chan struct{})
			go func() {
				defer close(quick)
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
			joined := func(n int32) bool {
				col.flights.mu.Lock()
				defer col.flights.mu.Unlock()
				return col.flights.cur != nil && col.flights.cur.refs.Load() == n
			}
			for !joined(2) { // the quick scrape's and the resolution's
				runtime.Gosched()
			}
			slow := &blockingWriter{h: http.Header{}, blocked: make(chan struct{}), release: make(chan struct{})}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(slow, req)
			}()
			for deadline := time.Now().Add(10 * time.Second); !joined(3); runtime.Gosched() {
				if time.Now().After(deadline) {
					t.Fatal("the slow scrape never took a reference to the running flight")
				}
			}
			close(gate)
			<-quick
			<-slow.blocked
			for range 3 { // later flights, while the slow scrape is mid-body
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
			close(slow.release)
			<-done
			body := slow.body.Bytes()
			if gz {
				r, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(r); err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			for _, line := range strings.Split(string(body), "\n") {
				if !strings.HasPrefix(line, "container_vnic_receive_bytes_total{") {
					continue
				}
				if !strings.HasSuffix(line, "} 3") {
					t.Fatalf("the slow scrape's body changed under it: %q", line)
				}
				n++
			}
			if n != 1000 {
				t.Fatalf("%d receive_bytes samples, want 1000", n)
			}
		})
	}
}

// Sequential scrapes reuse their buffers: after the first two, a scrape
// of 1,000 vNICs allocates less than its own body, about half of it for
// the families it builds (with a fresh body per resolution it allocated
// 1.6 times its body, and paid a page fault per 4 KiB of it).
func TestSequentialScrapesReuseBuffers(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "gzip"}[gz], func(t *testing.T) {
			col := New(&genResolver{}, promslog.NewNopLogger())
			h := col.Handler(HandlerOpts{})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			plain := httptest.NewRecorder()
			h.ServeHTTP(plain, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			text := plain.Body.Len()
			for range 2 {
				h.ServeHTTP(&discard{h: http.Header{}}, req)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			h.ServeHTTP(&discard{h: http.Header{}}, req)
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > uint64(text) {
				t.Errorf("a scrape allocated %d bytes, its body is %d: buffers not reused", got, text)
			}
		})
	}
}

// Concurrent scrapes, some giving up, some sharing a flight, some not,
// under -race: every answer whole, every flight's buffers recycled once.
func TestFlightsConcurrentRecycle(t *testing.T) {
	col := New(&genResolver{}, promslog.NewNopLogger())
	h := col.Handler(HandlerOpts{Rest: fixtureRest()})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if i%2 == 0 {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			for range 5 {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					t.Errorf("status %d", w.Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	if col.flights.cur != nil {
		t.Error("a flight is still current after every scrape returned")
	}
}

// After a peak, the pool lets the peak's buffers go once the sizes asked
// for are smaller again: it held eight of them for good (a soak whose
// containers went from 300 to 680 and back kept 20 MB of them).
func TestBufPoolForgetsAPeak(t *testing.T) {
	var p bufPool
	const peak, now = 3 << 20, 1 << 20
	var bufs [][]byte
	for range maxPooled {
		bufs = append(bufs, p.get(peak))
	}
	for _, b := range bufs {
		p.put(b[:peak])
	}
	if len(p.free) != maxPooled {
		t.Fatalf("%d buffers kept at the peak, want %d", len(p.free), maxPooled)
	}
	// Flights of the smaller size, each getting and putting back a few.
	for range 2 * recentAsks {
		b := p.get(now)
		p.put(append(b, make([]byte, now)...))
	}
	held := 0
	for _, b := range p.free {
		held += cap(b)
		if cap(b) > 2*now {
			t.Errorf("a buffer of %d bytes kept, the sizes asked are %d", cap(b), now)
		}
	}
	if held > maxPooled*2*now {
		t.Errorf("%d bytes kept", held)
	}
}
