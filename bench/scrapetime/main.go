// Command scrapetime times HTTP GETs of a metrics endpoint from inside one
// process, so a scrape is timed without a client's start-up cost.
//
//	scrapetime -n 50 URL          sequential GETs: min/median/mean µs
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
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: scrapetime [-n SAMPLES] [-c CONCURRENCY] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *c}}
	get := func(plain bool) error {
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
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	if err := get(false); err != nil { // warm up: connections, first cache fill
		fmt.Fprintln(os.Stderr, "scrapetime:", err)
		os.Exit(1)
	}
	samples := make([]float64, 0, *n)
	for i := 0; i < *n; i++ {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, *c)
		for j := 0; j < *c; j++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- get(j < *plain) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				fmt.Fprintln(os.Stderr, "scrapetime:", err)
				os.Exit(1)
			}
		}
		samples = append(samples, float64(time.Since(start).Microseconds()))
	}
	sort.Float64s(samples)
	sum := 0.0
	for _, s := range samples {
		sum += s
	}
	fmt.Printf("scrapetime c=%d n=%d us min=%.0f median=%.0f mean=%.0f\n", *c, *n, samples[0], samples[len(samples)/2], sum/float64(len(samples)))
}
