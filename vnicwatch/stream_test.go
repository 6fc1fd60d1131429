package vnicwatch

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/procevents"
)

// Process events lost to a full socket (ENOBUFS) are reported, everything
// is resolved again, and the stream goes on: a process joining a namespace
// whose veth already exists still brings its line.
func TestStreamSurvivesLostProcessEvents(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvl" + netnstest.Suffix()[:4]
	sentinel := netnstest.NewNetns(t, "cvls")
	sentinel.Spawn()
	sentinel.Veth(prefix+"s", "eth0")

	var mu sync.Mutex
	var overflows int
	s, err := Open(Options{ProcEventBuffer: 1, ResyncInterval: time.Hour, Report: func(err error) {
		if errors.Is(err, procevents.ErrOverflow) {
			mu.Lock()
			overflows++
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	changes := make(chan Change, 100)
	unblock := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(c Change) {
			if c.HostIfname == prefix+"s" && c.Event == Present {
				<-unblock // the stream stands still while processes come and go
			}
			if strings.HasPrefix(c.HostIfname, prefix) {
				changes <- c
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// With the stream held, fifty processes overflow its tiny socket.
	for i := 0; i < 50; i++ {
		if err := exec.Command("true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	close(unblock)
	netnstest.Eventually(t, 10*time.Second, "the lost process events to be reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return overflows > 0
	})

	c := netnstest.NewNetns(t, "cvlc")
	netnstest.IP(t, "link", "add", prefix+"c", "type", "veth", "peer", "name", "eth0", "netns", c.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"c").Run() })
	pid := c.Spawn()
	for {
		select {
		case ch := <-changes:
			if ch.HostIfname == prefix+"c" {
				if ch.Event != Added || ch.PID != pid {
					t.Fatalf("got %+v, want added with pid %d", ch, pid)
				}
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no added line for the process's namespace within 10 s")
		}
	}
}

// A process whose main thread exited while others run on is named by one
// of its threads at the next resync (the walk's way; between resyncs, the
// exit of its main thread removed it), and goes when its threads do.
func TestStreamLeaderExited(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvq" + netnstest.Suffix()[:4]
	// Made before the stream starts: `ip -n` enters the namespace for a
	// moment, and would be seen there.
	z := netnstest.NewNetns(t, "cvqz")
	z.Veth(prefix+"z", "eth0")
	s, err := Open(Options{ResyncInterval: 200 * time.Millisecond, Report: func(err error) { t.Logf("reported: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes := make(chan Change, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(c Change) {
			if c.HostIfname == prefix+"z" {
				changes <- c
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	next := func() Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(20 * time.Second):
			t.Fatal("no line within 20 s")
		}
		panic("unreachable")
	}

	pid := netnstest.SpawnLeaderExited(t, z.Path())
	// Seen with its PID first if its exec was read before its main
	// thread's exit (and then removed), then named by a thread.
	seen := func(c Change) bool { return (c.Event == Added || c.Event == Present) && netnstest.ThreadOf(c.PID, pid) }
	for c := next(); !seen(c); c = next() {
		if c.PID != pid && !netnstest.ThreadOf(c.PID, pid) {
			t.Fatalf("got %+v, want lines of %d or its threads", c, pid)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Removed once its threads are gone; a resync between two thread
	// exits may name it by another thread a moment longer.
	for c := next(); c.Event != Removed; c = next() {
		if c.Event != Changed || c.PID == pid {
			t.Fatalf("got %+v after the kill, want removed (or changed to another thread of %d)", c, pid)
		}
	}
}
