// Package coalesce lets concurrent identical HTTP requests share one
// response: while a request is being served, others with the same method,
// URL and content negotiation headers wait for it and get a copy of its
// answer. Ten scrapers arriving at once cost one scrape, not ten: one
// resolution, one encoding, one compression.
package coalesce

import (
	"bytes"
	"net/http"
	"sync"
)

// Handler wraps next. The zero value is not usable; use New.
type Handler struct {
	next     http.Handler
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
func New(next http.Handler) *Handler {
	return &Handler{next: next, inflight: map[string]*call{}}
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
	}
	h.mu.Unlock()

	if !joined {
		// Serve into the shared buffer; whatever happens, release the
		// waiters and forget the call, so the next request starts afresh.
		func() {
			defer func() {
				h.mu.Lock()
				delete(h.inflight, key)
				h.mu.Unlock()
				close(c.done)
			}()
			h.next.ServeHTTP((*recorder)(c), r)
		}()
	} else {
		select {
		case <-c.done:
		case <-r.Context().Done():
			return // this client gave up
		}
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

// recorder is the http.ResponseWriter a leading request is served into.
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
