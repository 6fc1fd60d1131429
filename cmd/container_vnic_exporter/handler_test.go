package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/container-vnic/container_vnic_exporter/collector"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// blockingCollector holds every Collect until released, and counts them.
type blockingCollector struct {
	entered chan struct{}
	release chan struct{}
}

var blockingDesc = prometheus.NewDesc("blocking", "A test metric.", nil, nil)

func (b *blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- blockingDesc }
func (b *blockingCollector) Collect(ch chan<- prometheus.Metric) {
	b.entered <- struct{}{}
	<-b.release
	ch <- prometheus.MustNewConstMetric(blockingDesc, prometheus.GaugeValue, 1)
}

// noNamespaces is a resolver of a host without containers.
type noNamespaces struct{}

func (noNamespaces) ResolveAll() (vnic.Snapshot, error) { return vnic.Snapshot{}, nil }

// Every scrape is its own promhttp request: each is counted in
// promhttp_metric_handler_requests_total and --web.max-requests holds for
// all of them (issue 13: a sharing layer in front of promhttp hid both).
func TestMetricsHandlerCountsAndLimitsEveryScrape(t *testing.T) {
	const limit, scrapes = 2, 5
	b := &blockingCollector{entered: make(chan struct{}, scrapes), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	col := collector.New(noNamespaces{}, promslog.NewNopLogger())
	srv := httptest.NewServer(metricsHandler(col, reg, true, limit, 0, promslog.NewNopLogger()))
	defer srv.Close()

	codes := make(chan int, scrapes)
	var wg sync.WaitGroup
	get := func() {
		defer wg.Done()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Error(err)
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}
	for range limit {
		wg.Add(1)
		go get()
		<-b.entered // this one holds a slot
	}
	// The rest find the limit reached.
	for range scrapes - limit {
		wg.Add(1)
		go get()
	}
	for range scrapes - limit {
		if code := <-codes; code != http.StatusServiceUnavailable {
			t.Errorf("scrape over the limit: status %d, want 503", code)
		}
	}
	close(b.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("scrape within the limit: status %d, want 200", code)
		}
	}

	// Count them in a fresh scrape's own exposition.
	want := `# HELP promhttp_metric_handler_requests_total Total number of scrapes by HTTP status code.
# TYPE promhttp_metric_handler_requests_total counter
promhttp_metric_handler_requests_total{code="200"} 2
promhttp_metric_handler_requests_total{code="500"} 0
promhttp_metric_handler_requests_total{code="503"} 3
`
	// The scrape being answered is counted once it ends: 2 and 3 so far.
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want), "promhttp_metric_handler_requests_total"); err != nil {
		t.Fatal(err)
	}
}
