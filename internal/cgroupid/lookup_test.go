package cgroupid

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// The cgroup file is read on every call, so a process moved to another
// cgroup gets the new identity (issue 21: it was read once per namespace
// and PID); a content already seen is not parsed again; failures are
// returned.
func TestLookupFollowsMoves(t *testing.T) {
	files := map[int]string{1: "0::/docker/" + ctr + "\n", 2: "0::/docker/" + ctr + "\n"}
	reads, parses := 0, 0
	l := newLookup(func(pid int) ([]byte, error) {
		reads++
		if f, ok := files[pid]; ok {
			return []byte(f), nil
		}
		return nil, errors.New("gone")
	}, func(b []byte) Identity { parses++; return Parse(b) })
	want := Identity{ContainerID: ctr, Runtime: RuntimeDocker}
	for i := 0; i < 3; i++ {
		for pid := 1; pid <= 2; pid++ {
			if id, err := l.Identity(100, pid); err != nil || id != want {
				t.Fatalf("Identity(100, %d) = %+v, %v; want %+v", pid, id, err, want)
			}
		}
		if _, err := l.Identity(100, 3); err == nil {
			t.Fatal("a failed read must fail")
		}
	}
	if reads != 9 || parses != 1 {
		t.Fatalf("%d reads, %d parses; want every call read, one content parsed once", reads, parses)
	}
	files[1] = "0::/system.slice/docker-" + other + ".scope\n"
	if id, err := l.Identity(100, 1); err != nil || id != (Identity{ContainerID: other, Runtime: RuntimeDocker}) {
		t.Fatalf("after the move: %+v, %v; want container %s", id, err, other)
	}
}

// Contents read on every round survive; those nobody has any more are
// forgotten after a while.
func TestLookupForgetsUnused(t *testing.T) {
	parses := 0
	content := func(pid int) []byte { return []byte(fmt.Sprintf("0::/docker/%064x\n", pid)) }
	l := newLookup(func(pid int) ([]byte, error) { return content(pid), nil },
		func(b []byte) Identity { parses++; return Parse(b) })
	for pid := 1; pid <= 5000; pid++ { // one-off containers
		_, _ = l.Identity(0, pid)
	}
	for round := 0; round < 100; round++ { // 100 live containers, read each round
		for pid := 1; pid <= 100; pid++ {
			_, _ = l.Identity(0, pid)
		}
	}
	if n := l.size(); n > 1200 {
		t.Fatalf("%d contents remembered, want the 100 live ones plus at most one period's worth", n)
	}
	before := parses
	for pid := 1; pid <= 100; pid++ {
		_, _ = l.Identity(0, pid)
	}
	if parses != before {
		t.Fatalf("live contents were parsed again (%d parses)", parses-before)
	}
}

// The cost a scrape with identity pays per namespace: one read of a real
// /proc/PID/cgroup, its content already parsed.
//
//	go test -run '^$' -bench LookupIdentity ./internal/cgroupid
func BenchmarkLookupIdentity(b *testing.B) {
	l := NewLookup("/proc")
	pid := os.Getpid()
	for b.Loop() {
		if _, err := l.Identity(0, pid); err != nil {
			b.Fatal(err)
		}
	}
}
