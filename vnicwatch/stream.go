package vnicwatch

import (
	"context"
	"errors"
	"fmt"
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
	// ProcEventBuffer is the receive buffer of the process events socket,
	// bytes (4 MiB when 0).
	ProcEventBuffer int
	// ProcfsPath is the procfs mountpoint Open resolves through ("/proc"
	// when empty). New takes its resolver's.
	ProcfsPath string
	// Report is told of problems the stream survives (a namespace that
	// could not be resolved, lost process events); nil ignores them.
	Report func(error)
}

// Resolver finds the vNICs of network namespaces; a Stream re-resolves
// through it. Open makes one; New takes one a program already has.
type Resolver = vnic.Resolver

// Stream is the change stream of one host's container vNICs.
type Stream struct {
	r      *vnic.Resolver
	ownsR  bool // made by Open: Close closes it
	opts   Options
	procs  *procevents.Conn // nil without process events
	engine *engine
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

// New subscribes to process events, so that nothing that happens from now
// on is missed. Link and namespace-id notifications are the resolver's:
// it opened their socket (the one a process needs, whose events keep its
// cache exact) in vnic.New, and the stream reads it through
// Resolver.ReadNotifications. Without it (CacheError: no CAP_NET_ADMIN and
// CAP_NET_BROADCAST, or vnic.Options.NoCache) New fails; without process
// events (CAP_NET_ADMIN in the initial namespace) it reports why and goes
// on, and processes joining a namespace whose links exist are seen at the
// next resync.
func New(r *Resolver, opts Options) (*Stream, error) {
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 30 * time.Second
	}
	if opts.Report == nil {
		opts.Report = func(error) {}
	}
	if err := r.CacheError(); err != nil {
		return nil, fmt.Errorf("link notifications: %w", err)
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

// Open makes a resolver on opts.ProcfsPath and a Stream on it, which
// Close closes too: what a program outside this module calls. It needs
// root, or CAP_NET_ADMIN, CAP_NET_BROADCAST and CAP_SYS_PTRACE.
func Open(opts Options) (*Stream, error) {
	procfs := opts.ProcfsPath
	if procfs == "" {
		procfs = "/proc"
	}
	r, err := vnic.New(vnic.Options{ProcfsPath: procfs})
	if err != nil {
		return nil, err
	}
	s, err := New(r, opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	s.ownsR = true
	return s, nil
}

// Close releases the stream's process events socket, and its resolver
// (with the notification socket) when Open made it. Call it after Run has
// returned; a resolver given to New is the caller's to close.
func (s *Stream) Close() error {
	if s.ownsR {
		defer s.r.Close()
	}
	if s.procs != nil {
		return s.procs.Close()
	}
	return nil
}

// procBatchDelay is how often process events are read.
const procBatchDelay = 50 * time.Millisecond

type noteBatch struct {
	notes []vnic.Notification
	err   error
}

// Run emits a Present change for every vNIC, then the changes as they
// happen, until ctx ends (nil) or the notifications fail (an error).
// emit runs on Run's goroutine; events queue while it works.
func (s *Stream) Run(ctx context.Context, emit func(Change)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notes := make(chan noteBatch)
	go func() {
		for {
			var b noteBatch
			b.err = s.r.ReadNotifications(func(n vnic.Notification) { b.notes = append(b.notes, n) })
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
	// Process events are read on a ticker, not when they arrive: a busy
	// host sends thousands a second, and a wakeup per event would cost more
	// than the events do; a process joining a namespace may wait this long.
	var procTick <-chan time.Time
	if s.procs != nil {
		t := time.NewTicker(procBatchDelay)
		defer t.Stop()
		procTick = t.C
	}

	e := s.engine
	if err := e.full(); err != nil {
		return err
	}
	for _, c := range e.take() {
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
			full = b.err != nil
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
			emit(c)
		}
	}
}
