package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// exitBound is how long a test waits for psnic to exit before it fails: a
// test timeout, not a timed assertion (what each test asserts is an order).
const exitBound = 60 * time.Second

// plainWatch is a `psnic watch` run with its stdout going to out.
type plainWatch struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func startPlainWatch(t *testing.T, out io.Writer, args ...string) *plainWatch {
	t.Helper()
	w := &plainWatch{stderr: &syncBuffer{}, done: make(chan error, 1)}
	w.cmd = exec.Command(psnicBin, append([]string{"watch"}, args...)...)
	w.cmd.Stdout, w.cmd.Stderr = out, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("psnic watch stderr:\n%s", w.stderr)
		}
	})
	return w
}

// stop sends SIGTERM and returns psnic's exit code, failing the test if it
// has not exited within exitBound.
func (w *plainWatch) stop(t *testing.T) int {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return w.cmd.ProcessState.ExitCode()
	case <-time.After(exitBound):
		t.Fatalf("psnic watch still running %v after SIGTERM", exitBound)
	}
	return -1
}

// vethFleet makes one namespace with a process and n veths named
// prefix0..prefix<n-1> on the host side.
func vethFleet(t *testing.T, prefix string, n int) {
	t.Helper()
	ns := netnstest.NewNetns(t, "cvh")
	ns.Spawn()
	for i := range n {
		ns.Veth(prefix+strconv.Itoa(i), "e"+strconv.Itoa(i))
	}
}

// groupAlive lists the processes of process group pgid that are not dead
// (zombies are), from /proc.
func groupAlive(pgid int) []int {
	var alive []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command name's ")": state ppid pgrp ...
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			alive = append(alive, pid)
		}
	}
	return alive
}

// hookGroups reads the PIDs hooks logged with `echo $$`: each is its
// process group's id.
func hookGroups(t *testing.T, log string) []int {
	t.Helper()
	b, _ := os.ReadFile(log)
	var pgids []int
	for _, f := range strings.Fields(string(b)) {
		pgid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("hook log %q: %v", b, err)
		}
		pgids = append(pgids, pgid)
		t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	}
	return pgids
}

// Issue 21 item 5: --exec-timeout kills the hook's whole process group, not
// only its first process: `sleep 300 & sleep 300` leaves nothing behind.
func TestWatchExecTimeoutKillsGroup(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvg" + netnstest.Suffix()[:4]
	log := filepath.Join(t.TempDir(), "log")
	w := startPlainWatch(t, io.Discard, "--host-ifname="+prefix+"*", "--exec-timeout=500ms",
		"--exec", "/bin/sh", "-c", `echo $$ >>"$1"; sleep 300 & sleep 300`, "hook", log)
	vethFleet(t, prefix, 1)
	netnstest.Eventually(t, 30*time.Second, "the hook to be killed after its timeout", func() bool {
		return strings.Contains(w.stderr.String(), "for added "+prefix+"0: killed after 500ms")
	})
	pgids := hookGroups(t, log)
	if len(pgids) != 1 {
		t.Fatalf("hook logged %v, want one process group", pgids)
	}
	netnstest.Eventually(t, 10*time.Second, "the hook's process group to be gone", func() bool {
		return len(groupAlive(pgids[0])) == 0
	})
	if code := w.stop(t); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

var droppedLine = regexp.MustCompile(`psnic watch: stopping: (\d+) queued change\(s\) dropped`)

// Issue 21 item 3: SIGTERM while 30 hooks of 5 s each are queued ends the
// watch without running them (it took 29 s with 1 s hooks): the running
// hook's group is killed, the rest dropped and counted on stderr. Asserted
// as an order, not a time: fewer lines were handled than queued, and the
// dropped count is the rest.
func TestWatchStopDropsQueuedHooks(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvq" + netnstest.Suffix()[:4]
	const n = 30
	vethFleet(t, prefix, n)
	log := filepath.Join(t.TempDir(), "log")
	stdout := &syncBuffer{}
	w := startPlainWatch(t, stdout, "-o", "text", "--host-ifname="+prefix+"*", "--exec-timeout=1m",
		"--exec", "/bin/sh", "-c", `echo $$ >>"$1"; sleep 5`, "hook", log)
	netnstest.Eventually(t, 30*time.Second, "the first hook to start", func() bool {
		b, _ := os.ReadFile(log)
		return len(b) > 0
	})
	if code := w.stop(t); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	handled := strings.Count(stdout.String(), "\n")
	m := droppedLine.FindStringSubmatch(w.stderr.String())
	if m == nil {
		t.Fatalf("stderr does not say how many changes were dropped:\n%s", w.stderr)
	}
	dropped, _ := strconv.Atoi(m[1])
	if handled >= n || handled+dropped != n {
		t.Errorf("%d lines printed and %d dropped, want fewer than %d printed and the rest dropped", handled, dropped, n)
	}
	for _, pgid := range hookGroups(t, log) {
		if alive := groupAlive(pgid); len(alive) > 0 {
			t.Errorf("hook group %d still has %v after psnic exited", pgid, alive)
		}
	}
}

// blockedInWrite reports whether a thread of pid is in write(2) on fd 1.
func blockedInWrite(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == strconv.Itoa(unix.SYS_WRITE) && f[1] == "0x1" {
			return true
		}
	}
	return false
}

// Issue 21 item 4: a reader that stopped reading blocks psnic's write to
// stdout; SIGTERM must still end it, saying the line being written is lost.
func TestWatchStopWithBlockedStdout(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvb" + netnstest.Suffix()[:4]
	vethFleet(t, prefix, 30) // 30 JSON lines: more than the pipe's one page
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // never read
	if _, err := unix.FcntlInt(wr.Fd(), unix.F_SETPIPE_SZ, os.Getpagesize()); err != nil {
		t.Fatal(err)
	}
	w := startPlainWatch(t, wr, "--host-ifname="+prefix+"*")
	wr.Close()
	netnstest.Eventually(t, 30*time.Second, "psnic to block writing to stdout", func() bool {
		return blockedInWrite(w.cmd.Process.Pid)
	})
	if code := w.stop(t); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if s := w.stderr.String(); !strings.Contains(s, "stdout is not being read") {
		t.Errorf("stderr does not say stdout was blocked:\n%s", s)
	}
}
