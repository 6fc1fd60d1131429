// Package coalesce lets concurrent identical HTTP requests share one
// response: while a request is being served, others with the same method,
// URL and content negotiation headers wait for it and get a copy of its
// answer. Ten scrapers arriving at once cost one scrape, not ten: one
// resolution, one encoding, one compression.
//
// Each request waits at most as long as its scraper will
// (X-Prometheus-Scrape-Timeout-Seconds, less an offset); one that runs out
// gets 503 while the shared work finishes for the requests still waiting,
// so slow scrapes never pile up work.
package coalesce

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// TimeoutHeader is the header Prometheus sends with its scrape timeout.
const TimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// Handler wraps next. The zero value is not usable; use New.
type Handler struct {
	next http.Handler
	// offset is taken off each scraper's timeout, for the network and the
	// scraper's own work.
	offset   time.Duration
	mu       sync.Mutex
	inflight map[string]*call
}

type call struct {
	done    chan struct{}
	waiters int // requests sharing this one, under Handler.mu
	status  int
	header  http.Header
	body    bytes.Buffer
}

// New returns a Handler sharing next's responses among concurrent requests.
// A request carrying TimeoutHeader waits at most that long less offset.
func New(next http.Handler, offset time.Duration) *Handler {
	return &Handler{next: next, offset: offset, inflight: map[string]*call{}}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.next.ServeHTTP(w, r)
		return
	}
	key := r.Method + " " + r.URL.RequestURI() + "\x00" + r.Header.Get("Accept") + "\x00" + r.Header.Get("Accept-Encoding")
	h.mu.Lock()
	c, joined := h.inflight[key]
	if joined {
		c.waiters++
	} else {
		c = &call{done: make(chan struct{}), header: http.Header{}}
		h.inflight[key] = c
		// The shared work must not end with the request that started it.
		go h.serve(key, c, r.WithContext(context.WithoutCancel(r.Context())))
	}
	h.mu.Unlock()

	var timeout <-chan time.Time
	if d, ok := h.deadline(r); ok {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-c.done:
	case <-r.Context().Done():
		return // this client gave up
	case <-timeout:
		http.Error(w, fmt.Sprintf("scrape timed out after %s (%s less %s); "+
			"the resolution goes on and the next scrape shares it", r.Header.Get(TimeoutHeader)+"s", TimeoutHeader, h.offset),
			http.StatusServiceUnavailable)
		return
	}
	for k, v := range c.header {
		w.Header()[k] = append([]string(nil), v...)
	}
	status := c.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(c.body.Bytes())
}

// serve runs the shared request, then releases its waiters and forgets the
// call, so the next request starts afresh.
func (h *Handler) serve(key string, c *call, r *http.Request) {
	defer func() {
		h.mu.Lock()
		delete(h.inflight, key)
		h.mu.Unlock()
		close(c.done)
	}()
	h.next.ServeHTTP((*recorder)(c), r)
}

// deadline returns how long r may wait, from its scraper's timeout header.
func (h *Handler) deadline(r *http.Request) (time.Duration, bool) {
	v := r.Header.Get(TimeoutHeader)
	if v == "" {
		return 0, false
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs <= 0 {
		return 0, false
	}
	d := time.Duration(secs * float64(time.Second))
	if d > h.offset {
		d -= h.offset // an offset as long as the timeout would fail every scrape
	}
	return d, true
}

// recorder is the http.ResponseWriter the shared request is served into.
type recorder call

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
