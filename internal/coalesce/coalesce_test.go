package coalesce

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent identical requests are served once; each gets the full answer.
func TestConcurrentRequestsShareOneResponse(t *testing.T) {
	var served atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		started <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprintf(w, "answer %d", n)
	}), 0)
	srv := httptest.NewServer(h)
	defer srv.Close()

	const clients = 10
	var wg sync.WaitGroup
	bodies := make(chan string, clients)
	get := func() {
		defer wg.Done()
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTeapot || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		bodies <- string(b)
	}
	wg.Add(1)
	go get()
	<-started // the leader is inside the handler
	for i := 1; i < clients; i++ {
		wg.Add(1)
		go get()
	}
	// Let the followers join the call before the leader finishes.
	for {
		h.mu.Lock()
		waiting := 0
		for _, c := range h.inflight {
			waiting += c.waiters
		}
		h.mu.Unlock()
		if waiting == clients-1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(bodies)
	seen := map[string]int{}
	for b := range bodies {
		seen[b]++
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("served %d times for %d concurrent clients, want once", n, clients)
	}
	if seen["answer 1"] != clients {
		t.Fatalf("answers %v, want %d x \"answer 1\"", seen, clients)
	}
	total := 0
	for _, c := range seen {
		total += c
	}
	if total != clients {
		t.Fatalf("%d answers for %d clients: %v", total, clients, seen)
	}
}

// Requests that differ in what they accept are not merged, and a request
// after the first has finished is served again.
func TestDistinctAndLaterRequests(t *testing.T) {
	var served atomic.Int32
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, r.Header.Get("Accept"))
	}), 0)
	for i, accept := range []string{"text/plain", "application/openmetrics-text", "text/plain"} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Body.String() != accept || rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d %q", i, rec.Code, rec.Body.String())
		}
	}
	if served.Load() != 3 {
		t.Fatalf("served %d times, want 3", served.Load())
	}
}

// A request whose scraper's timeout runs out gets 503 at once; the shared
// work goes on for the others and is not started twice.
func TestScrapeTimeout(t *testing.T) {
	var served atomic.Int32
	release := make(chan struct{})
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		<-release
		fmt.Fprint(w, "late answer")
	}), 100*time.Millisecond)
	srv := httptest.NewServer(h)
	defer srv.Close()

	patient := make(chan string, 1)
	go func() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			patient <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		patient <- string(b)
	}()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set(TimeoutHeader, "0.3")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Fatalf("got %s after %v: %s; want 503 after about 0.2 s", resp.Status, took, b)
	}
	close(release)
	if got := <-patient; got != "late answer" {
		t.Fatalf("patient request got %q", got)
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("served %d times, want 1", n)
	}
}

func TestDeadline(t *testing.T) {
	h := New(nil, 500*time.Millisecond)
	for v, want := range map[string]time.Duration{
		"10":   9500 * time.Millisecond,
		"0.25": 250 * time.Millisecond, // offset longer than the timeout: the whole timeout
		"0.5":  500 * time.Millisecond,
		"":     0, "abc": 0, "-3": 0, "0": 0,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if v != "" {
			r.Header.Set(TimeoutHeader, v)
		}
		got, ok := h.deadline(r)
		if ok != (want != 0) || got != want {
			t.Errorf("header %q: got %v %v, want %v", v, got, ok, want)
		}
	}
}
