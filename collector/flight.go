package collector

import (
	"slices"
	"sync"
	"sync/atomic"
)

// flights runs at most one resolution at a time; a scrape that arrives
// while one runs joins it. Each joiner holds a reference until it has
// written its answer, and so does the resolution until it is done: when
// the last reference goes, nobody can join any more (a finished flight is
// no longer current) and nobody still reads the flight's encoded bytes, so
// their buffers go back to the collector's pool for the next flight.
// (Allocating a fresh body of several MB per resolution cost a page fault
// per 4 KiB touched: at 1,000 vNICs, 4 ms of a 50 ms scrape.)
type flights struct {
	mu  sync.Mutex
	cur *flight // running; nil when none is
}

// join returns the running flight, or starts one running run, with a
// reference the caller must drop with release.
func (g *flights) join(run func(*flight), recycle func(*flight)) *flight {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.cur; f != nil {
		f.refs.Add(1)
		return f
	}
	f := &flight{flightRefs: flightRefs{done: make(chan struct{}), recycle: recycle}}
	f.refs.Store(2) // the caller's and the resolution's
	g.cur = f
	go func() {
		defer f.release()
		defer close(f.done)
		defer func() {
			g.mu.Lock()
			g.cur = nil
			g.mu.Unlock()
		}()
		run(f)
	}()
	return f
}

// release drops a reference to f; the last one recycles its buffers.
func (f *flight) release() {
	if f.refs.Add(-1) == 0 && f.recycle != nil {
		f.recycle(f)
	}
}

// flightRefs is what a flight holds for its joiners.
type flightRefs struct {
	done    chan struct{} // closed when the resolution is in the flight
	refs    atomic.Int32
	recycle func(*flight)
}

// recycle gives the buffers of a flight nobody reads any more to the pool.
func (c *Collector) recycle(f *flight) {
	for k := range f.encoded {
		if e := f.encoded[k].enc; e != nil {
			e.recycle()
		}
	}
}

// bufPool keeps a few byte buffers between flights, for good: a sync.Pool
// drops what it holds at every other collection, and a scrape of 1,000
// vNICs allocates enough to bring one about each time. What it keeps
// follows what is asked: a buffer more than twice the largest of the last
// sizes asked for is let go, so that after a peak of containers the pool
// does not hold eight buffers of the peak's size for good.
type bufPool struct {
	mu    sync.Mutex
	free  [][]byte
	asked [recentAsks]int // the last sizes asked for, a ring
	next  int
}

// maxPooled bounds the buffers kept: a flight uses one for each format
// asked and one for each compressed segment, plus one per CPU while
// compressing.
const maxPooled = 8

// recentAsks is how many of the last gets decide what is worth keeping:
// a few flights' worth.
const recentAsks = 4 * maxPooled

// get returns an empty buffer of at least size bytes: the smallest kept
// one that is large enough, or a new one.
func (p *bufPool) get(size int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked[p.next] = size
	p.next = (p.next + 1) % recentAsks
	limit := p.keepLimit()
	p.free = slices.DeleteFunc(p.free, func(b []byte) bool { return cap(b) > limit })
	best := -1
	for i, b := range p.free {
		if cap(b) >= size && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]byte, 0, size)
	}
	b := p.free[best]
	p.free = slices.Delete(p.free, best, best+1)
	return b[:0]
}

// keepLimit is the largest capacity worth keeping: twice the largest size
// asked for lately. p.mu is held.
func (p *bufPool) keepLimit() int {
	return 2 * slices.Max(p.asked[:])
}

// put keeps b for a later get; when the pool is full, the smallest buffer
// goes. A buffer oversized for what is asked now is not kept.
func (p *bufPool) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cap(b) > p.keepLimit() {
		return
	}
	if len(p.free) < maxPooled {
		p.free = append(p.free, b)
		return
	}
	small := 0
	for i := range p.free {
		if cap(p.free[i]) < cap(p.free[small]) {
			small = i
		}
	}
	if cap(b) > cap(p.free[small]) {
		p.free[small] = b
	}
}
