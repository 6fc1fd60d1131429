package collector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// HandlerOpts configure Handler.
type HandlerOpts struct {
	// Rest gathers every other family to serve beside the collector's
	// (build info, process, Go, promhttp); nil: none.
	Rest prometheus.Gatherer
	// Fallback serves the formats the fast path does not write (protobuf,
	// OpenMetrics 2.0): promhttp over a registry holding the collector
	// and Rest. Nil: those scrapers get the text format.
	Fallback http.Handler
	// MaxRequestsInFlight answers 503 to a scrape beyond this many at
	// once, as promhttp does; 0: no limit.
	MaxRequestsInFlight int
	// WriteTimeout is the time a scrape is given to write its answer,
	// after its Deadline when it has one (a minute when 0). A client that
	// reads nothing is cut off then, instead of keeping its place among
	// MaxRequestsInFlight for good.
	WriteTimeout time.Duration
	// Deadline returns how long a scrape may wait for its resolution (ok
	// false: no limit); a scrape still waiting then gets 503 while the
	// resolution goes on for the next one.
	Deadline func(*http.Request) (d time.Duration, ok bool)
	// Registry, when set, gets promhttp_metric_handler_errors_total, as
	// promhttp's handler registers it.
	Registry prometheus.Registerer
	// ErrorLog logs errors gathering Rest.
	ErrorLog *slog.Logger
}

// Handler serves the collector's families and those of opts.Rest, as
// promhttp would serve a registry holding both, but writes the
// collector's families from bytes encoded once per resolution: scrapes
// sharing a resolution share its encoding and its compression, and each
// still is a request of its own, counted by whatever wraps the handler.
// Families come in name order, each once; OpenMetrics when the scraper
// asks for it, gzip when it accepts it.
//
// The collector must not also be registered with opts.Rest.
func (c *Collector) Handler(opts HandlerOpts) http.Handler {
	h := &handler{c: c, opts: opts, errs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_errors_total",
		Help: "Total number of internal errors encountered by the promhttp metric handler.",
	}, []string{"cause"})}
	if opts.MaxRequestsInFlight > 0 {
		h.sem = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	if opts.Registry != nil {
		h.errs.WithLabelValues("gathering")
		h.errs.WithLabelValues("encoding")
		if err := opts.Registry.Register(h.errs); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
				h.errs = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return h
}

type handler struct {
	c    *Collector
	opts HandlerOpts
	sem  chan struct{}
	errs *prometheus.CounterVec
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var deadline time.Duration
	bounded := false
	if h.opts.Deadline != nil {
		deadline, bounded = h.opts.Deadline(r)
	}
	// A client that does not read must not keep its place among
	// MaxRequestsInFlight for good: the write fails, and the connection
	// closes, once the scraper would have given up anyway.
	_ = http.NewResponseController(w).SetWriteDeadline(start.Add(h.writeLimit(deadline, bounded)))
	if h.sem != nil {
		select {
		case h.sem <- struct{}{}:
			defer func() { <-h.sem }()
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", h.opts.MaxRequestsInFlight),
				http.StatusServiceUnavailable)
			return
		}
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	kind := -1
	switch format.FormatType() {
	case expfmt.TypeTextPlain:
		kind = formatText
	case expfmt.TypeOpenMetrics:
		if v := format.Version(); v == expfmt.OpenMetricsVersion_0_0_1 || v == expfmt.OpenMetricsVersion_1_0_0 {
			kind = formatOpenMetrics
		}
	}
	if kind < 0 {
		if h.opts.Fallback != nil {
			h.opts.Fallback.ServeHTTP(w, r)
			return
		}
		kind, format = formatText, expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	f := h.c.join()
	defer f.release()
	// The other families while the resolution runs: they need none of it.
	// (A scrape that then times out, or whose scraper goes, gathered them
	// for nothing; a gathering error is counted for it all the same.)
	others := h.gather()
	if h.wait(w, r, f, start, deadline, bounded) {
		h.serve(w, r, f, kind, format, others)
	}
}

// serve answers a scrape from its flight, with the other families gathered
// for it.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, f *flight, kind int, format expfmt.Format, others []*dto.MetricFamily) {
	ours := h.c.encoded(f, kind)
	rest, err := h.rest(others, ours.names, format)
	if err != nil {
		h.errs.WithLabelValues("encoding").Inc()
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	if kind == formatOpenMetrics {
		rest = append(rest, restRun{at: len(ours.names), text: []byte("# EOF\n")})
	}
	w.Header().Set("Content-Type", string(format))
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		writeGzip(w, ours, rest)
		return
	}
	n := 0
	forEachPart(ours, rest, func(b []byte, _, _ int) { n += len(b) })
	w.Header().Set("Content-Length", strconv.Itoa(n))
	forEachPart(ours, rest, func(b []byte, _, _ int) { w.Write(b) }) //nolint:errcheck // a scraper gone is no error of ours
}

// maxDeadline caps the deadline a scrape's header may ask for in
// writeLimit: a client must not lift the limit by asking for years.
const maxDeadline = 10 * time.Minute

// writeLimit is how long a scrape may take in all: its deadline, if it has
// one (capped at maxDeadline), to wait for its resolution, then
// WriteTimeout to write the answer, 200 or 503. Prometheus has read it, or
// given up, long before.
func (h *handler) writeLimit(deadline time.Duration, bounded bool) time.Duration {
	limit := h.opts.WriteTimeout
	if limit <= 0 {
		limit = time.Minute
	}
	if bounded {
		limit += min(deadline, maxDeadline)
	}
	return limit
}

// wait waits for the flight the scrape shares, or answers 503 when the
// scrape's deadline, counted from start, passes first.
func (h *handler) wait(w http.ResponseWriter, r *http.Request, f *flight, start time.Time, deadline time.Duration, bounded bool) bool {
	var timeout <-chan time.Time
	if bounded {
		t := time.NewTimer(deadline - time.Since(start))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.done:
		return true
	case <-timeout:
		http.Error(w, "scrape timed out waiting for the resolution; it goes on, and the next scrape shares it",
			http.StatusServiceUnavailable)
	case <-r.Context().Done():
	}
	return false
}

// encoded returns f's families in format, encoded on first demand.
func (c *Collector) encoded(f *flight, format int) *encoded {
	e := &f.encoded[format]
	e.once.Do(func() { e.enc = encode(c.familiesOf(f), format, &c.bufs) })
	return e.enc
}

// restRun is other families, encoded for one scrape, that go before the
// collector's block at.
type restRun struct {
	at   int
	text []byte
}

// gather gathers opts.Rest, counting and logging an error as promhttp
// does; what was gathered is served all the same.
func (h *handler) gather() []*dto.MetricFamily {
	if h.opts.Rest == nil {
		return nil
	}
	mfs, err := h.opts.Rest.Gather()
	if err != nil {
		h.errs.WithLabelValues("gathering").Inc()
		if h.opts.ErrorLog != nil {
			h.opts.ErrorLog.Error("error gathering metrics", "err", err)
		}
	}
	return mfs
}

// rest encodes the other families (mfs, sorted by name, as gathered) in
// runs placed among the collector's families (names, sorted) so that all
// come out sorted. A family the collector has too is left out: it is the
// collector's.
func (h *handler) rest(mfs []*dto.MetricFamily, names []string, format expfmt.Format) ([]restRun, error) {
	var runs []restRun
	var buf *bytes.Buffer
	var enc expfmt.Encoder
	i := 0
	for _, mf := range mfs {
		for i < len(names) && names[i] < mf.GetName() {
			i++
		}
		if i < len(names) && names[i] == mf.GetName() {
			if h.opts.ErrorLog != nil {
				h.opts.ErrorLog.Error("family served twice: kept the collector's", "family", mf.GetName())
			}
			continue
		}
		if len(runs) == 0 || runs[len(runs)-1].at != i {
			if buf != nil {
				runs[len(runs)-1].text = buf.Bytes()
			}
			buf = &bytes.Buffer{}
			enc = expfmt.NewEncoder(buf, format)
			runs = append(runs, restRun{at: i})
		}
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	if buf != nil {
		runs[len(runs)-1].text = buf.Bytes()
	}
	return runs, nil
}

// forEachPart calls f with each part of the response in order: the
// collector's blocks [i, j) in one piece, or one run of other families
// (i == j == -1).
func forEachPart(ours *encoded, rest []restRun, f func(b []byte, i, j int)) {
	i := 0
	for _, run := range rest {
		if run.at > i {
			f(ours.run(i, run.at), i, run.at)
			i = run.at
		}
		f(run.text, -1, -1)
	}
	if n := len(ours.names); i < n {
		f(ours.run(i, n), i, n)
	}
}

// gzipHeader is a gzip member header without name, time or flags, as
// compress/gzip writes one (OS unknown).
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// writeGzip writes the response as one gzip member whose deflate stream
// is the parts' own streams one after the other: each ends in a sync flush
// (byte-aligned, not final) and refers to nothing before it, so the
// collector's runs are the flight's shared compression (encoded.segment),
// the other families (a few KB) go in stored blocks, an empty final block
// ends the stream, and the trailer's CRC-32 and size cover it all. Stored,
// because a compressor holds 700 KB of tables whatever it compresses: one
// per concurrent gzip scrape was most of the memory twenty of them took.
func writeGzip(w http.ResponseWriter, ours *encoded, rest []restRun) {
	type part struct {
		shared     []byte
		start, end int // in own, when not shared
	}
	var own []byte
	var parts []part
	crc, size := uint32(0), 0
	forEachPart(ours, rest, func(b []byte, i, j int) {
		crc = crc32.Update(crc, crc32.IEEETable, b)
		size += len(b)
		if i >= 0 {
			parts = append(parts, part{shared: ours.segment(i, j)})
			return
		}
		start := len(own)
		own = appendStored(own, b)
		parts = append(parts, part{start: start, end: len(own)})
	})
	final := []byte{3, 0} // an empty final fixed-Huffman block
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[0:], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(size))
	n := len(gzipHeader) + len(own) + len(final) + len(trailer)
	for _, p := range parts {
		n += len(p.shared)
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(gzipHeader) //nolint:errcheck // a scraper gone is no error of ours
	for _, p := range parts {
		if p.shared != nil {
			w.Write(p.shared) //nolint:errcheck // as above
		} else {
			w.Write(own[p.start:p.end]) //nolint:errcheck // as above
		}
	}
	w.Write(final)      //nolint:errcheck // as above
	w.Write(trailer[:]) //nolint:errcheck // as above
}

// appendStored appends b to dst as stored (uncompressed) deflate blocks,
// not final, each starting on a byte boundary as the stream before it
// ends.
func appendStored(dst, b []byte) []byte {
	for len(b) > 0 {
		n := min(len(b), 0xffff)
		dst = append(dst, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		dst = append(dst, b[:n]...)
		b = b[n:]
	}
	return dst
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip
// (with a q above 0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}
