package collector

import (
	"bytes"

	"github.com/klauspost/compress/flate"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
)

// The exposition formats the fast path writes itself.
const (
	formatText        = iota // text/plain; version=0.0.4 or 1.0.0: the same bytes for these families
	formatOpenMetrics        // application/openmetrics-text, without its "# EOF"
	numFormats
)

// encoded is a flight's families in one format: one block per family, in
// name order, all in one buffer. Scrapes sharing the flight write these
// bytes, and share the compression of each run of them (segment).
type encoded struct {
	names []string
	buf   []byte
	off   []int // block i is buf[off[i]:off[i+1]]

	mu       sync.Mutex
	segments map[[2]int]*segment
	pool     *bufPool // buf and the segments' come from it
}

// recycle gives e's buffers back to its pool, when no scrape reads them
// any more.
func (e *encoded) recycle() {
	e.pool.put(e.buf)
	for _, s := range e.segments {
		e.pool.put(s.deflated)
	}
	e.buf, e.segments = nil, nil
}

type encodedOnce struct {
	once sync.Once
	enc  *encoded
}

// segment is blocks [i, j) as a raw deflate stream that ends in a sync
// flush, so that it can sit anywhere in a gzip member (see writeGzip).
type segment struct {
	once     sync.Once
	deflated []byte
}

// encode writes fams in format, one block per family, as client_golang's
// expfmt writes them (TestFastPathMatchesClientGolang).
func encode(fams []family, format int, pool *bufPool) *encoded {
	size := 0
	for _, f := range fams {
		size += 2*len(f.def.name) + len(f.def.help) + 32
		for _, s := range f.samples {
			size += len(f.def.name) + len(s.series.text) + 26
		}
	}
	buf := pool.get(size)
	e := &encoded{names: make([]string, len(fams)), off: make([]int, 0, len(fams)+1), segments: map[[2]int]*segment{}, pool: pool}
	for i, f := range fams {
		e.off = append(e.off, len(buf))
		buf = appendFamily(buf, f, format)
		e.names[i] = f.def.name
	}
	e.off = append(e.off, len(buf))
	e.buf = buf
	return e
}

// run returns blocks [i, j), contiguous in the buffer.
func (e *encoded) run(i, j int) []byte { return e.buf[e.off[i]:e.off[j]:e.off[j]] }

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func appendFamily(b []byte, f family, format int) []byte {
	name := f.def.name
	typ := "gauge"
	if f.def.typ == dto.MetricType_COUNTER {
		typ = "counter"
	}
	help := f.def.help
	if format == formatOpenMetrics {
		// OpenMetrics names a counter family without its _total, which
		// only its samples carry; its HELP escapes quotes too.
		if f.def.typ == dto.MetricType_COUNTER {
			name = strings.TrimSuffix(name, "_total")
		}
		help = labelEscaper.Replace(help)
	} else {
		help = helpEscaper.Replace(help)
	}
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, '\n')
	for _, s := range f.samples {
		b = append(b, f.def.name...)
		b = append(b, s.series.text...)
		b = append(b, ' ')
		b = appendFloat(b, s.value, format == formatOpenMetrics)
		b = append(b, '\n')
	}
	return b
}

// appendFloat writes f as expfmt's writeFloat (text) or
// writeOpenMetricsFloat (OpenMetrics, where an integer gets ".0") does.
func appendFloat(b []byte, f float64, om bool) []byte {
	switch {
	case f == 0: // and -0, which AppendFloat writes with its sign
		if om {
			return append(b, "0.0"...)
		}
		return append(b, '0')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if om && !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// segment returns blocks [i, j) deflated, compressing them on first
// demand only: every gzip scrape of the flight shares it.
func (e *encoded) segment(i, j int) []byte {
	e.mu.Lock()
	s, ok := e.segments[[2]int{i, j}]
	if !ok {
		s = &segment{}
		e.segments[[2]int{i, j}] = s
	}
	e.mu.Unlock()
	s.once.Do(func() { s.deflated = deflateParallel(e.run(i, j), e.pool) })
	return s.deflated
}

// parallelChunk is the least a CPU gets to compress: below it, starting a
// compressor costs more than it saves.
const parallelChunk = 256 << 10

// deflateParallel deflates b in chunks on every CPU and joins them: each
// chunk's stream ends in a sync flush and refers to nothing before it, so
// they follow one another as one stream. The first gzip scrape of a
// resolution waits for this; on 2 CPUs it takes half as long.
func deflateParallel(b []byte, pool *bufPool) []byte {
	n := min(runtime.GOMAXPROCS(0), len(b)/parallelChunk)
	if n < 2 {
		return deflate(pool.get(len(b)/deflateRatio+64), b)
	}
	chunks := make([][]byte, n)
	out := make([][]byte, n)
	for k := range n {
		end := len(b)
		if k < n-1 {
			// Cut after a newline, for no reason but tidiness.
			end = len(b) / n
			if nl := bytes.IndexByte(b[end:], '\n'); nl >= 0 {
				end += nl + 1
			}
		}
		chunks[k], b = b[:end], b[end:]
	}
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[k] = deflate(pool.get(len(chunks[k])/deflateRatio+64), chunks[k])
		}()
	}
	wg.Wait()
	size := 0
	for _, o := range out {
		size += len(o)
	}
	joined := pool.get(size)
	for _, o := range out {
		joined = append(joined, o...)
		pool.put(o)
	}
	return joined
}

// deflateRatio is about how many times smaller the exposition deflates:
// 15 at 1,000 vNICs; room is made for 1/8th.
const deflateRatio = 8

// deflate appends b to dst as a raw deflate stream ending in a sync flush.
func deflate(dst, b []byte) []byte {
	out := bytes.NewBuffer(dst)
	w := getFlate(out)
	w.Write(b) //nolint:errcheck // a bytes.Buffer does not fail
	w.Flush()  //nolint:errcheck // as above
	putFlate(w)
	return out.Bytes()
}

// sharedLevel compresses a flight's own families, once for all its
// scrapes: BestSpeed, since the first gzip scrape of every resolution
// waits for it (at 1,000 vNICs promhttp's default level took four times
// as long, 58 ms against 15, for 10 % fewer bytes).
const sharedLevel = flate.BestSpeed

// flateWriters keeps a compressor per CPU for good: a sync.Pool loses
// them at every GC, and making one allocates 1.2 MB.
var flateWriters = make(chan *flate.Writer, runtime.GOMAXPROCS(0))

func getFlate(w *bytes.Buffer) *flate.Writer {
	select {
	case fw := <-flateWriters:
		fw.Reset(w)
		return fw
	default:
		fw, _ := flate.NewWriter(w, sharedLevel) // a valid level
		return fw
	}
}

func putFlate(fw *flate.Writer) {
	select {
	case flateWriters <- fw:
	default:
	}
}
