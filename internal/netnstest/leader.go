package netnstest

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leaderExitsEnv makes a test binary that links this package, instead of
// running its tests, start a thread that stays and then end its main thread
// alone (exit, not exit_group): what a program whose main calls
// pthread_exit leaves behind.
const leaderExitsEnv = "NETNSTEST_LEADER_EXITS"

func init() {
	if os.Getenv(leaderExitsEnv) == "" {
		return
	}
	runtime.LockOSThread() // package initialisers run on the main thread: stay there
	stay := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(stay)
		for {
			_, _, _ = syscall.Syscall(syscall.SYS_PAUSE, 0, 0, 0)
		}
	}()
	<-stay
	_, _, _ = syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
}

// SpawnLeaderExited starts, in the network namespace at nsPath, a process
// whose main thread has exited while other threads run on, and returns its
// PID once it is so: a zombie by its state, with no ns/net of its own,
// living on in its threads (ThreadOf tells them). It is killed when t ends.
func SpawnLeaderExited(t testing.TB, nsPath string) (pid int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+nsPath, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), leaderExitsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid = cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	Eventually(t, time.Minute, "the main thread of process "+strconv.Itoa(pid)+" to exit alone", func() bool {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		s := string(status)
		return err == nil && strings.Contains(s, "\nState:\tZ") && !strings.Contains(s, "\nThreads:\t1\n")
	})
	return pid
}

// ThreadOf reports whether id is a thread of process pid other than its
// main one (Tgid in /proc/ID/status). A resolver names such a process by
// the first other thread in /proc/PID/task, listed in creation order: a
// test need not know which one that is.
func ThreadOf(id, pid int) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(id) + "/status")
	return id != pid && err == nil && strings.Contains(string(status), "\nTgid:\t"+strconv.Itoa(pid)+"\n")
}
