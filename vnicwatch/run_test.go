package vnicwatch

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// running is one Run of a stream, its changes of host links named prefix*
// on a channel.
type running struct {
	changes chan Change
	cancel  context.CancelFunc
	done    chan error
	// held is closed when emit stands still at the Present line of the
	// host link startHeldRun was given, until release.
	held, unblock chan struct{}
	releaseOnce   sync.Once
}

func startRun(s *Stream, prefix string) *running { return startHeldRun(s, prefix, "") }

// startHeldRun is startRun whose emit, at the Present line of host link
// hold, stands still (the stream with it) until release.
func startHeldRun(s *Stream, prefix, hold string) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{changes: make(chan Change, 1000), cancel: cancel, done: make(chan error, 1),
		held: make(chan struct{}), unblock: make(chan struct{})}
	go func() {
		r.done <- s.Run(ctx, func(c Change) {
			if hold != "" && c.HostIfname == hold && c.Event == Present {
				close(r.held)
				<-r.unblock
			}
			if strings.HasPrefix(c.HostIfname, prefix) || c.Old != nil && strings.HasPrefix(c.Old.HostIfname, prefix) {
				r.changes <- c
			}
		})
	}()
	return r
}

// waitHeld waits for emit to stand still at the held link's Present line.
func (r *running) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-r.held:
	case <-time.After(20 * time.Second):
		t.Fatal("no present line for the held link within 20 s")
	}
}

func (r *running) release() { r.releaseOnce.Do(func() { close(r.unblock) }) }

// reportsOf returns a Report that counts the errors that are target, and
// the count so far.
func reportsOf(target error) (report func(error), count func() int) {
	var mu sync.Mutex
	n := 0
	report = func(err error) {
		if errors.Is(err, target) {
			mu.Lock()
			n++
			mu.Unlock()
		}
	}
	count = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	return report, count
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.release() // a test that failed while it held emit
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s of its context's end")
	}
}

// next returns the next change, failing t when none comes within 20 s or
// Run returns.
func (r *running) next(t *testing.T, what string) Change {
	t.Helper()
	select {
	case c := <-r.changes:
		return c
	case err := <-r.done:
		t.Fatalf("Run returned %v while waiting for %s", err, what)
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20 s", what)
	}
	panic("unreachable")
}

// until returns the changes up to and including the first that stop
// accepts.
func (r *running) until(t *testing.T, what string, stop func(Change) bool) []Change {
	t.Helper()
	var got []Change
	for {
		c := r.next(t, what)
		got = append(got, c)
		if stop(c) {
			return got
		}
	}
}

// vethWithProcess makes a namespace whose eth0 pairs with host link host,
// and a process in it.
func vethWithProcess(t *testing.T, host string) *netnstest.Netns {
	t.Helper()
	n := netnstest.NewNetns(t, "cvr")
	n.Veth(host, "eth0")
	n.Spawn()
	return n
}

// marker makes one more vNIC, and returns a test for its line. Made once
// the Run has emitted a Present line, it comes as added, after every
// Present line.
func marker(t *testing.T, host string) func(Change) bool {
	t.Helper()
	vethWithProcess(t, host)
	return func(c Change) bool { return c.HostIfname == host && (c.Event == Added || c.Event == Present) }
}

// A Run after one that returned starts over: a Present line for every vNIC
// there is then, as it is then, and none for what went meanwhile; the
// changes after it are heard again, each time (the first Run's reader does
// not outlive it and take them).
func TestRunAgainStartsOver(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvr" + netnstest.Suffix()[:4]
	vethWithProcess(t, prefix+"a")
	gone := vethWithProcess(t, prefix+"b")
	s, err := Open(Options{ResyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	run := startRun(s, prefix)
	seen := map[string]bool{}
	run.until(t, "present lines of a and b", func(c Change) bool {
		seen[c.HostIfname] = c.Event == Present
		return seen[prefix+"a"] && seen[prefix+"b"]
	})
	run.stop(t)

	// Meanwhile: b's namespace goes, a's host end is renamed.
	gone.IP("link", "del", "eth0")
	netnstest.IP(t, "link", "set", prefix+"a", "name", prefix+"A")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"A").Run() })

	for i := range 3 {
		want := prefix + "A"
		if i > 0 {
			want = prefix + "a" + strings.Repeat("x", i-1)
		}
		next := prefix + "a" + strings.Repeat("x", i)
		run = startRun(s, prefix)
		got := run.until(t, "a present line", func(c Change) bool { return c.Event == Present })
		// A change made now is heard by this Run, not by the last one's
		// reader (on a quiet host, nothing else wakes it first).
		netnstest.IP(t, "link", "set", want, "name", next)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", next).Run() })
		renamed := func(c Change) bool {
			return c.Event == Changed && c.HostIfname == next && c.Old.HostIfname == want
		}
		isMarker := marker(t, prefix+"m"+string(rune('0'+i)))
		sawRename, sawMarker := false, false
		got = append(got, run.until(t, "rename to "+next+" and marker line", func(c Change) bool {
			sawRename = sawRename || renamed(c)
			if isMarker(c) {
				sawMarker = true
				if c.Event != Added {
					t.Fatalf("run %d: marker made after a present line came as %+v, want added", i, c)
				}
			}
			return sawRename && sawMarker
		})...)
		var present []string
		for _, c := range got {
			if c.Event == Present && !strings.HasPrefix(c.HostIfname, prefix+"m") { // earlier runs' markers stay
				present = append(present, c.HostIfname)
				if c.Old != nil {
					t.Errorf("run %d: present line with old values: %+v", i, c)
				}
			}
		}
		if len(present) != 1 || present[0] != want {
			t.Fatalf("run %d: present lines for %v, want only %s", i, present, want)
		}
		run.stop(t)
	}
}

// Two Runs of one Stream at once: the second returns ErrRunning and the
// first goes on. A zero Stream's Run and a closed one's fail without a
// panic; negative buffers are refused.
func TestRunMisuse(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvs" + netnstest.Suffix()[:4]
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := startRun(s, prefix)
	run.until(t, "the marker's line", marker(t, prefix+"m")) // the first is running
	if err := s.Run(context.Background(), func(Change) {}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run at once = %v, want ErrRunning", err)
	}
	vethWithProcess(t, prefix+"n")
	run.until(t, "the first Run's next line", func(c Change) bool { return c.HostIfname == prefix+"n" })
	run.stop(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), func(Change) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	var zero Stream
	if err := zero.Run(context.Background(), func(Change) {}); err == nil {
		t.Fatal("Run of a zero Stream returned nil")
	}
	if _, err := Open(Options{ProcEventBuffer: -1}); err == nil {
		t.Fatal("Open with a negative buffer returned nil")
	}
}

// No change is emitted once the context has ended, not even the rest of
// the batch at hand.
func TestRunNoEmitAfterCancel(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvc" + netnstest.Suffix()[:4]
	for _, h := range []string{"a", "b", "c"} {
		vethWithProcess(t, prefix+h)
	}
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	after := 0
	err = s.Run(ctx, func(Change) {
		if ctx.Err() != nil {
			after++
		}
		cancel() // at the first: three or more vNICs, so more were due
	})
	if err != nil || after != 0 {
		t.Fatalf("Run = %v, with %d changes emitted after the cancel, want nil and 0", err, after)
	}
}

// Link notifications lost to a full socket are reported, and the stream
// resolves everything again: a rename whose notification was lost still
// comes.
func TestRunReportsLostLinkNotifications(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvo" + netnstest.Suffix()[:4]
	vethWithProcess(t, prefix+"a")
	vethWithProcess(t, prefix+"c")
	report, lost := reportsOf(vnic.ErrOverflow)
	// The smallest buffer the kernel allows holds a few notifications:
	// changes to this test's own link overflow it, no one else's socket.
	s, err := Open(Options{LinkEventBuffer: 1, ResyncInterval: time.Hour, Report: report})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := startHeldRun(s, prefix, prefix+"a") // the stream stands still while the links change
	defer run.stop(t)
	run.waitHeld(t)
	for i := range 50 {
		netnstest.IP(t, "link", "set", prefix+"a", "alias", "cvo"+string(rune('a'+i%26)))
	}
	// Its notification lost with the socket full, this rename is found
	// by resolving everything again.
	netnstest.IP(t, "link", "set", prefix+"c", "name", prefix+"d")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"d").Run() })
	run.release()
	renamed := false
	for deadline := time.Now().Add(20 * time.Second); ; {
		reported := lost() > 0
		switch {
		case renamed && reported:
			return
		case time.Now().After(deadline):
			t.Fatalf("within 20 s: rename seen %v, lost notifications reported %v", renamed, reported)
		}
		select {
		case c := <-run.changes:
			renamed = renamed || c.Event == Changed && c.HostIfname == prefix+"d"
		case <-time.After(50 * time.Millisecond): // the report comes on its own
		}
	}
}
