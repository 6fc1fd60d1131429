// Command scrapetime times HTTP GETs of metrics endpoints from inside one
// process, so a scrape is timed without a client's start-up cost.
//
//	scrapetime -n 50 URL          sequential GETs: min/median/mean µs
//	scrapetime -n 50 URL1 URL2    the same, alternating between the endpoints
//	                              (one line each, in order): a ratio of two
//	                              servers under the same load of the moment
//	scrapetime -n 20 -c 10 URL    batches of 10 concurrent GETs: wall µs per batch
//	scrapetime -c 20 -plain 10    of each batch, 10 ask for no compression (the rest gzip, as
//	                              Go's client and Prometheus do by default)
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 50, "samples")
	c := flag.Int("c", 1, "concurrent GETs per sample")
	plain := flag.Int("plain", 0, "of each batch, how many GETs ask for no compression")
	flag.Parse()
	urls := flag.Args()
	if len(urls) == 0 || len(urls) > 1 && *c != 1 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: scrapetime [-n SAMPLES] [-c CONCURRENCY [-plain K]] URL | scrapetime [-n SAMPLES] URL...")
		os.Exit(2)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *c}}
	get := func(url string, plain bool) error {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if plain {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
	for _, url := range urls {
		if err := get(url, false); err != nil { // warm up: connections, first cache fill
			fmt.Fprintln(os.Stderr, "scrapetime:", err)
			os.Exit(1)
		}
	}
	samples := make([][]float64, len(urls))
	for i := 0; i < *n; i++ {
		for u, url := range urls {
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, *c)
			for j := 0; j < *c; j++ {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- get(url, j < *plain) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					fmt.Fprintln(os.Stderr, "scrapetime:", err)
					os.Exit(1)
				}
			}
			samples[u] = append(samples[u], float64(time.Since(start).Microseconds()))
		}
	}
	for _, s := range samples {
		sort.Float64s(s)
		sum := 0.0
		for _, v := range s {
			sum += v
		}
		fmt.Printf("scrapetime c=%d n=%d us min=%.0f median=%.0f mean=%.0f\n", *c, *n, s[0], s[len(s)/2], sum/float64(len(s)))
	}
}
