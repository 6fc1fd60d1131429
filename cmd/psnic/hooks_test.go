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
	// psnic's exit is what stop waits for, not that of whatever else holds
	// its stderr (a hook's orphans, on code that leaves them).
	w.cmd.WaitDelay = 5 * time.Second
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
		if err != nil && !errors.As(err, &exit) && !errors.Is(err, exec.ErrWaitDelay) {
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

// hookProcs reads the PIDs hooks logged, one a line.
func hookProcs(t *testing.T, log string) []int {
	t.Helper()
	b, _ := os.ReadFile(log)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("hook log %q: %v", b, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// sleepsAlive lists which of pids are still a live (not zombie) `sleep`
// process: what a hook left behind.
func sleepsAlive(pids []int) []int {
	var alive []int
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.HasPrefix(cmdline, []byte("sleep\x00")) {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] != "Z" {
			alive = append(alive, pid)
		}
	}
	return alive
}

// killLeft kills what the test's hooks left behind, when the code under
// test did not.
func killLeft(t *testing.T, log string) {
	t.Cleanup(func() {
		for _, pid := range sleepsAlive(hookProcs(t, log)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// hookScript logs the PIDs of the two sleeps it runs, one in the
// background, one in the foreground (exec: the hook's own process).
func hookScript(seconds int) string {
	return fmt.Sprintf(`sleep %d & echo $! >>"$1"; echo $$ >>"$1"; exec sleep %d`, seconds, seconds)
}

// Issue 21 item 5: --exec-timeout kills the hook's whole process group, not
// only its first process: `sleep 300 & sleep 300` leaves nothing behind.
func TestWatchExecTimeoutKillsGroup(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvg" + netnstest.Suffix()[:4]
	log := filepath.Join(t.TempDir(), "log")
	killLeft(t, log)
	vethFleet(t, prefix, 1)
	w := startPlainWatch(t, io.Discard, "--host-ifname="+prefix+"*", "--exec-timeout=2s",
		"--exec", "/bin/sh", "-c", hookScript(300), "hook", log)
	netnstest.Eventually(t, 30*time.Second, "the hook to be killed after its timeout", func() bool {
		return strings.Contains(w.stderr.String(), "for present "+prefix+"0: killed after 2s")
	})
	pids := hookProcs(t, log)
	if len(pids) != 2 {
		t.Fatalf("hook logged %v, want its two sleeps", pids)
	}
	netnstest.Eventually(t, 10*time.Second, "both of the hook's sleeps to be gone", func() bool {
		return len(sleepsAlive(pids)) == 0
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
	killLeft(t, log)
	w := startPlainWatch(t, stdout, "-o", "text", "--host-ifname="+prefix+"*", "--exec-timeout=1m",
		"--exec", "/bin/sh", "-c", hookScript(5), "hook", log)
	netnstest.Eventually(t, 30*time.Second, "the first hook to start", func() bool {
		return len(hookProcs(t, log)) == 2
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
	// The running hook was killed with its group, not left to finish.
	netnstest.Eventually(t, 10*time.Second, "the running hook's sleeps to be gone", func() bool {
		return len(sleepsAlive(hookProcs(t, log))) == 0
	})
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
