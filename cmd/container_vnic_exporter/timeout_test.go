package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestScrapeDeadline(t *testing.T) {
	const offset = 500 * time.Millisecond
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"10", 9500 * time.Millisecond, true},
		{"0.25", 250 * time.Millisecond, true}, // shorter than the offset: kept whole
		{"0", 0, false},
		{"-3", 0, false},
		{"abc", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"+Inf", 0, false},
		{"-Inf", 0, false},
		{"1e300", 0, false}, // would overflow to a negative duration
		{"9223372037", 0, false},
		{"1e9", time.Duration(1e9*float64(time.Second)) - offset, true},
	} {
		got, ok := scrapeDeadline(tc.header, offset)
		if got != tc.want || ok != tc.ok {
			t.Errorf("scrapeDeadline(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

// A scrape whose deadline passes gets 503 while the handler goes on; an
// out-of-range header means no deadline at all, never an instant 503.
func TestWithScrapeTimeout(t *testing.T) {
	release := make(chan struct{})
	finished := make(chan struct{}, 10)
	h := withScrapeTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			<-release
		}
		// Fails once the scrape timeout has answered for this handler:
		// that is the case under test, not an error.
		_, _ = io.WriteString(w, "ok")
		finished <- struct{}{}
	}), 0)
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(query, header string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics"+query, nil)
		if header != "" {
			req.Header.Set(timeoutHeader, header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, header := range []string{"1e300", "NaN", "Inf", "abc", ""} {
		if code, body := get("", header); code != http.StatusOK || body != "ok" {
			t.Errorf("header %q: %d %q, want 200 ok", header, code, body)
		}
		<-finished
	}
	code, body := get("?slow=1", "0.05")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "timed out") {
		t.Fatalf("slow scrape: %d %q, want 503 timed out", code, body)
	}
	close(release)
	<-finished // the handler was not cancelled: it ran to its end
}
