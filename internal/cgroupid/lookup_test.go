package cgroupid

import (
	"errors"
	"testing"
)

// A process's identity is read once per namespace and PID; failures are
// not remembered; a PID in another namespace is another process.
func TestLookupReadsOnce(t *testing.T) {
	reads := map[int]int{}
	fail := map[int]bool{3: true}
	l := newLookup(func(pid int) (Identity, error) {
		reads[pid]++
		if fail[pid] {
			return Identity{}, errors.New("gone")
		}
		return Identity{Runtime: "podman", ContainerID: string(rune('a' + pid))}, nil
	})
	for i := 0; i < 3; i++ {
		if id, err := l.Identity(100, 1); err != nil || id.ContainerID != "b" {
			t.Fatalf("Identity(100, 1) = %+v, %v", id, err)
		}
		if _, err := l.Identity(100, 3); err == nil {
			t.Fatal("a failed read must fail")
		}
	}
	if reads[1] != 1 || reads[3] != 3 {
		t.Fatalf("reads = %v, want pid 1 once, pid 3 every time", reads)
	}
	if _, err := l.Identity(200, 1); err != nil || reads[1] != 2 {
		t.Fatalf("pid 1 in another namespace must be read again: reads %v, err %v", reads, err)
	}
}

// Entries asked for on every round survive; those nobody asks for any more
// are forgotten after a while.
func TestLookupForgetsUnused(t *testing.T) {
	reads := 0
	l := newLookup(func(int) (Identity, error) { reads++; return Identity{}, nil })
	for pid := 1; pid <= 5000; pid++ { // one-off namespaces
		_, _ = l.Identity(uint64(pid), pid)
	}
	for round := 0; round < 100; round++ { // 100 live namespaces, asked each round
		for pid := 1; pid <= 100; pid++ {
			_, _ = l.Identity(uint64(pid), pid)
		}
	}
	if n := l.size(); n > 1200 {
		t.Fatalf("%d entries remembered, want the 100 live ones plus at most one period's worth", n)
	}
	before := reads
	for pid := 1; pid <= 100; pid++ {
		_, _ = l.Identity(uint64(pid), pid)
	}
	if reads != before {
		t.Fatalf("live entries were read again (%d reads)", reads-before)
	}
}
