package vnic

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestParseStartTime(t *testing.T) {
	// Field 22 after a command name holding ") (" and spaces.
	ok := "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615\n"
	if got, err := parseStartTime([]byte(ok)); err != nil || got != 987654 {
		t.Errorf("got %d, %v; want 987654", got, err)
	}
	for name, bad := range map[string]string{
		"empty":        "",
		"no name":      "4242 S 1 2 3",
		"too short":    "4242 (sleep) S 1 4242 4242 0 -1 4194560",
		"not a number": "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 abc 1000",
	} {
		if got, err := parseStartTime([]byte(bad)); err == nil {
			t.Errorf("%s: got %d, want an error", name, got)
		}
	}
}

func TestOldest(t *testing.T) {
	errGone := errors.New("gone")
	starts := map[int]uint64{10: 500, 20: 100, 30: 100, 40: 900}
	start := func(pid int) (uint64, error) {
		if s, ok := starts[pid]; ok {
			return s, nil
		}
		return 0, errGone
	}
	for _, tc := range []struct {
		pids []int
		want int
	}{
		{[]int{10}, 10},
		{[]int{10, 40}, 10},
		{[]int{40, 10, 20}, 20},      // earliest start wins over lowest PID
		{[]int{30, 40, 20}, 20},      // equal start: lowest PID
		{[]int{5, 40}, 40},           // 5 is gone: a known start wins
		{[]int{7, 5, 6}, 5},          // all gone: the lowest PID
		{[]int{7, 30, 5, 10, 6}, 30}, // gone ones never win
	} {
		if got := oldest(tc.pids, start); got != tc.want {
			t.Errorf("oldest(%v) = %d, want %d", tc.pids, got, tc.want)
		}
	}
}

// fakeProc writes a procfs root with a stat file per PID giving its start.
func fakeProc(t *testing.T, starts map[int]uint64) string {
	t.Helper()
	root := t.TempDir()
	for pid, st := range starts {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := strconv.Itoa(pid) + " (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " + strconv.FormatUint(st, 10) + " 0 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A holder keeps the label while it is in the namespace, even when an
// older-looking or lower PID arrives; only when it leaves is another
// chosen; a namespace not found is forgotten.
func TestHoldersKeepWhileAlive(t *testing.T) {
	root := fakeProc(t, map[int]uint64{100: 50, 200: 70, 50: 10, 300: 80})
	h := holders{procRoot: root}
	found := func(pids ...int) map[uint64]*netnsProcs {
		return map[uint64]*netnsProcs{7: {Inode: 7, PID: pids[0], PIDs: pids}}
	}
	step := func(want int, pids ...int) {
		t.Helper()
		f := found(pids...)
		h.choose(f)
		if f[7].PID != want {
			t.Fatalf("PIDs %v: holder %d, want %d", pids, f[7].PID, want)
		}
	}
	step(100, 200, 100)     // the oldest, not the lowest
	step(100, 50, 100, 200) // 50 came in (and even started earlier): 100 holds
	step(50, 200, 300, 50)  // 100 left: the oldest of the others
	step(50, 300, 50)
	h.choose(map[uint64]*netnsProcs{})
	if len(h.byInode) != 0 {
		t.Errorf("namespace not found but remembered: %v", h.byInode)
	}
}
