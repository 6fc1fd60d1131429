package vnicwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/procevents"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// Options configure a Stream.
type Options struct {
	// ResyncInterval is how often everything is resolved again even
	// without events, a backstop (30 s when 0).
	ResyncInterval time.Duration
	// LinkEventBuffer and ProcEventBuffer are the receive buffers of the
	// link notification and process event sockets, bytes (8 MiB and 4 MiB
	// when 0): what the kernel queues while emit works. When one fills,
	// events are lost, Report is told, and everything is resolved again.
	LinkEventBuffer int
	ProcEventBuffer int
	// ProcfsPath is the procfs mountpoint ("/proc" when empty): the /proc
	// of the host's PID namespace, as this program sees it.
	ProcfsPath string
	// Report is told of problems the stream survives (a namespace that
	// could not be resolved, events lost, namespaces left out: see
	// ErrIncomplete); nil ignores them. Open calls it on its caller's
	// goroutine, Run on its own, between two emits; the stream waits while
	// it runs.
	Report func(error)
}

// Stream is the change stream of one host's container vNICs. Make it with
// Open, Run it, and Close it once Run has returned.
type Stream struct {
	r      *vnic.Resolver
	opts   Options
	procs  *procevents.Conn // nil without process events
	engine *engine

	run    sync.Mutex // held by Run
	mu     sync.Mutex
	closed bool
}

// resolverBackend is the production backend: the resolver and the lookup.
type resolverBackend struct {
	*vnic.Resolver
	lookup *cgroupid.Lookup
}

func (b resolverBackend) Identity(netns uint64, pid int) cgroupid.Identity {
	id, _ := b.lookup.Identity(netns, pid) // a process gone has none to tell
	return id
}

// Open subscribes to link, namespace-id and process events, so that
// nothing that happens from now on is missed. It needs root, or
// CAP_NET_ADMIN, CAP_NET_BROADCAST and CAP_SYS_PTRACE: without the link
// notifications (CAP_NET_ADMIN and CAP_NET_BROADCAST) it fails; without
// process events (CAP_NET_ADMIN in the initial namespace) it reports why
// and goes on, and processes joining a namespace whose links exist are
// seen at the next resync.
func Open(opts Options) (*Stream, error) {
	if opts.LinkEventBuffer < 0 || opts.ProcEventBuffer < 0 {
		return nil, fmt.Errorf("vnicwatch: event buffers of %d and %d bytes: must not be negative (0 for the default)",
			opts.LinkEventBuffer, opts.ProcEventBuffer)
	}
	if opts.ProcfsPath == "" {
		opts.ProcfsPath = "/proc"
	}
	r, err := vnic.New(vnic.Options{ProcfsPath: opts.ProcfsPath, EventBuffer: opts.LinkEventBuffer})
	if err != nil {
		return nil, err
	}
	s, err := newStream(r, opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	return s, nil
}

// newStream makes a stream on r, whose notification socket (the one a
// process needs, whose events keep its cache exact) it reads through
// Resolver.ReadNotifications; Close closes r.
func newStream(r *vnic.Resolver, opts Options) (*Stream, error) {
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 30 * time.Second
	}
	if opts.Report == nil {
		opts.Report = func(error) {}
	}
	if err := r.CacheError(); err != nil {
		return nil, fmt.Errorf("link notifications: %w (run as root, or with CAP_NET_ADMIN and CAP_NET_BROADCAST)", err)
	}
	s := &Stream{r: r, opts: opts}
	var err error
	s.procs, err = procevents.Listen(opts.ProcEventBuffer)
	if err != nil {
		opts.Report(fmt.Errorf("%w (processes joining a namespace after its links are seen at the next resync)", err))
	}
	s.engine = newEngine(resolverBackend{r, cgroupid.NewLookup(r.ProcfsPath())}, opts.Report)
	return s, nil
}

// Close releases the stream's sockets; call it once Run has returned (not
// meanwhile, from another goroutine). A Run after Close returns ErrClosed.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.r == nil {
		return nil
	}
	s.closed = true
	defer s.r.Close()
	if s.procs != nil {
		return s.procs.Close()
	}
	return nil
}

// ErrClosed is returned by Run on a Stream that was closed.
var ErrClosed = errors.New("vnicwatch: stream closed")

// ErrRunning is returned by Run while another Run of the same Stream goes on.
var ErrRunning = errors.New("vnicwatch: Run is already running on this stream")

// procBatchDelay is how often process events are read.
const procBatchDelay = 50 * time.Millisecond

type noteBatch struct {
	notes []vnic.Notification
	err   error
}

// Run emits a Present change for every vNIC, then the changes as they
// happen, until ctx ends (nil) or the notifications fail (an error). The
// changes of one namespace come as Diff orders them (removals, then
// changes, then additions); those of different namespaces in no set
// order: the Removed of a host link may come after the Added of a new link
// that took its name. Key what is attached on HostIfindex, which the
// kernel does not give out again soon, not on the name.
//
// emit runs on Run's goroutine, one change at a time, and is not called
// once ctx has ended. While it works, events wait in the kernel (see
// Options.LinkEventBuffer): a slow emit delays the stream, and one that
// holds it up until a buffer fills makes it resolve everything again, which
// tells the net difference (a container that came and went meanwhile is
// not seen).
//
// One Run at a time: a second one meanwhile returns ErrRunning. A Run
// after one has returned (for a panic in emit, too) starts over, with a
// Present change for every vNIC there is then.
func (s *Stream) Run(ctx context.Context, emit func(Change)) error {
	if s == nil || s.engine == nil {
		return errors.New("vnicwatch: Run on a Stream not made by Open")
	}
	if !s.run.TryLock() {
		return ErrRunning
	}
	defer s.run.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}

	ctx, cancel := context.WithCancel(ctx)
	notes := make(chan noteBatch)
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		for {
			var b noteBatch
			b.err = s.r.ReadNotifications(ctx, func(n vnic.Notification) { b.notes = append(b.notes, n) })
			if ctx.Err() != nil {
				return
			}
			select {
			case notes <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil && !errors.Is(b.err, vnic.ErrOverflow) {
				return
			}
		}
	}()
	// The reader ends with Run: no notification is read for a Run that is
	// over.
	defer reader.Wait()
	defer cancel()
	// Process events are read on a ticker, not when they arrive: a busy
	// host sends thousands a second, and a wakeup per event would cost more
	// than the events do; a process joining a namespace may wait this long.
	var procTick <-chan time.Time
	if s.procs != nil {
		t := time.NewTicker(procBatchDelay)
		defer t.Stop()
		procTick = t.C
		// Events of before this Run are old news: the walk below sees
		// what they did.
		_ = s.procs.Drain(func(procevents.Event) {})
	}

	if ctx.Err() != nil {
		return nil
	}
	e := s.engine
	e.reset()
	e.out, e.incomplete = nil, nil
	if err := e.full(); err != nil {
		return err
	}
	for _, c := range e.take() {
		if ctx.Err() != nil {
			return nil
		}
		c.Event = Present
		emit(c)
	}
	resync := time.NewTicker(s.opts.ResyncInterval)
	defer resync.Stop()
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case b := <-notes:
			if b.err != nil && !errors.Is(b.err, vnic.ErrOverflow) {
				return fmt.Errorf("link notifications: %w", b.err)
			}
			for _, n := range b.notes {
				e.notification(n)
			}
			if b.err != nil {
				s.opts.Report(fmt.Errorf("link notifications: %w (resolving everything again)", b.err))
				full = true
			}
		case <-procTick:
			if err := s.procs.Drain(e.process); err != nil {
				s.opts.Report(fmt.Errorf("process events: %w (resolving everything again)", err))
				if !errors.Is(err, procevents.ErrOverflow) {
					procTick = nil // broken: the resync interval is the backstop
				}
				full = true
			}
		case <-resync.C:
			full = true
		}
		if full {
			if err := e.full(); err != nil {
				// Reported, and retried at the next event or resync.
				s.opts.Report(err)
			}
		} else {
			e.flush()
		}
		for _, c := range e.take() {
			if ctx.Err() != nil {
				return nil
			}
			emit(c)
		}
	}
}
