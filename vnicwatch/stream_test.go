package vnicwatch

import (
	"os/exec"
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

	report, overflows := reportsOf(procevents.ErrOverflow)
	s, err := Open(Options{ProcEventBuffer: 1, ResyncInterval: time.Hour, Report: report})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := startHeldRun(s, prefix, prefix+"s") // the stream stands still while processes come and go
	defer run.stop(t)
	run.waitHeld(t)
	// With the stream held, fifty processes overflow its tiny socket.
	for i := 0; i < 50; i++ {
		if err := exec.Command("true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	run.release()
	netnstest.Eventually(t, 10*time.Second, "the lost process events to be reported", func() bool {
		return overflows() > 0
	})

	c := netnstest.NewNetns(t, "cvlc")
	netnstest.IP(t, "link", "add", prefix+"c", "type", "veth", "peer", "name", "eth0", "netns", c.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"c").Run() })
	pid := c.Spawn()
	for {
		select {
		case ch := <-run.changes:
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
	run := startRun(s, prefix)
	defer run.stop(t)
	next := func() Change { return run.next(t, "line") }

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
