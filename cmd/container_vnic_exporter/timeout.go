package main

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// timeoutHeader is the header Prometheus sends with its scrape timeout.
const timeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// withScrapeTimeout answers 503 to a scrape still unanswered when its
// scraper is about to give up (its timeout header, less offset), rather
// than let it time out with nothing. The resolution under way is not
// cancelled: the collector shares it with the next scrape, so slow scrapes
// never pile up work.
func withScrapeTimeout(next http.Handler, offset time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get(timeoutHeader)
		d, ok := scrapeDeadline(header, offset)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		msg := fmt.Sprintf("scrape timed out after %ss (%s less %s); the resolution goes on and the next scrape shares it",
			header, timeoutHeader, offset)
		http.TimeoutHandler(next, d, msg).ServeHTTP(w, r)
	})
}

// scrapeDeadline returns how long a scrape may take, from its timeout
// header: ok is false (no deadline) when the header is absent, not a
// positive finite number, or too large for a time.Duration. An offset as
// long as the timeout is not taken off, or every scrape would fail.
func scrapeDeadline(header string, offset time.Duration) (time.Duration, bool) {
	if header == "" {
		return 0, false
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || math.IsNaN(secs) || secs <= 0 || secs >= float64(math.MaxInt64)/float64(time.Second) {
		return 0, false
	}
	d := time.Duration(secs * float64(time.Second))
	if d > offset {
		d -= offset
	}
	return d, true
}
