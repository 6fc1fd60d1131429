// Package netnstest builds real network namespaces, veth pairs and
// processes for tests, with iproute2, and removes them when the test ends,
// whether it passed or not.
//
// The tests of this project prove their promises on the real kernel: they
// need root. Outside CI a non-root run skips them; in CI (CI set) a missing
// privilege fails the test, so a green CI cannot hide a skipped proof.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips t when not root, unless running in CI, where it fails.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("real-kernel test needs root, and CI runs as root: refusing to skip")
	}
	t.Skip("real-kernel test: run as root")
}

// Suffix returns a short random hex string, so that names made by tests of
// different packages running at once do not collide.
func Suffix() string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// IP runs `ip args...` and returns its standard output; it fails t with
// the error output if ip fails. Warnings on the error output are not part
// of the answer: ip prints "Peer netns reference is invalid" beside a link
// whose peer's namespace another test is deleting.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ip %s: %v: %s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// Netns is a named network namespace made for one test.
type Netns struct {
	Name string
	t    testing.TB
}

// NewNetns creates a network namespace named prefix+random suffix and
// deletes it when t ends. Processes started with Spawn keep it alive after
// its name is gone; they are killed first.
func NewNetns(t testing.TB, prefix string) *Netns {
	t.Helper()
	RequireRoot(t)
	name := prefix + Suffix()
	IP(t, "netns", "add", name)
	t.Cleanup(func() {
		if _, err := os.Stat("/run/netns/" + name); err != nil {
			return // the test deleted it already
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("cleanup: ip netns del %s: %v: %s", name, err, out)
		}
	})
	return &Netns{Name: name, t: t}
}

// Path returns the namespace's file, for nsenter and setns.
func (n *Netns) Path() string { return "/run/netns/" + n.Name }

// IP runs `ip -n NAME args...`.
func (n *Netns) IP(args ...string) string {
	n.t.Helper()
	return IP(n.t, append([]string{"-n", n.Name}, args...)...)
}

// Index returns the ifindex of ifname inside the namespace.
func (n *Netns) Index(ifname string) int {
	n.t.Helper()
	return ifindex(n.t, n.IP("-o", "link", "show", "dev", ifname))
}

// HostIndex returns the ifindex of a host interface.
func HostIndex(t testing.TB, ifname string) int {
	t.Helper()
	return ifindex(t, IP(t, "-o", "link", "show", "dev", ifname))
}

func ifindex(t testing.TB, line string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(line, "%d:", &i); err != nil {
		t.Fatalf("no ifindex in %q: %v", line, err)
	}
	return i
}

// Veth creates a veth pair with hostName in the host namespace and
// peerName inside n, both up. The host end is deleted when t ends (which
// removes the peer too) if it still exists.
func (n *Netns) Veth(hostName, peerName string) {
	n.t.Helper()
	IP(n.t, "link", "add", hostName, "type", "veth", "peer", "name", peerName, "netns", n.Name)
	n.t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostName).Run() })
	IP(n.t, "link", "set", hostName, "up")
	// "peer ... up" is refused by these kernels: bring the peer up inside.
	n.IP("link", "set", peerName, "up")
}

// Spawn starts a process inside n that lives until t ends, and returns its
// PID. It returns once the process is inside the namespace.
func (n *Netns) Spawn() int {
	n.t.Helper()
	return Spawn(n.t, n.Path())
}

// Spawn starts `sleep` in the network namespace at nsPath (the host's when
// empty) and kills it when t ends. It returns once the process has entered
// the namespace (nsenter has exec'd sleep).
func Spawn(t testing.TB, nsPath string) int {
	t.Helper()
	args := []string{"sleep", "3600"}
	if nsPath != "" {
		args = append([]string{"nsenter", "--net=" + nsPath}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", args, err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := WaitExec(pid, "sleep", time.Minute); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return pid
}

// WaitExec waits until process pid runs comm (has exec'd it): the event a
// test that spawned it through nsenter or a shell needs. On a loaded host
// that takes from milliseconds to seconds; timeout only bounds a process
// that will never get there.
func WaitExec(pid int, comm string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; {
		got, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(got)) == comm {
			return nil
		}
		if err != nil && os.IsNotExist(err) {
			return fmt.Errorf("process %d exited before running %s", pid, comm)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d did not run %s within %v (comm %q, %v)", pid, comm, timeout, got, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Member is one namespace of a Fleet.
type Member struct {
	Netns string // name under /run/netns
	Host  string // host end of its veth; the container end is eth0
	PIDs  []int
}

// Fleet makes n namespaces, each with one veth pair (host end up, container
// end eth0 up) and procs processes, with a few `ip -batch` calls: fast
// enough for benchmarks with hundreds of namespaces. Everything is removed
// when tb ends.
func Fleet(tb testing.TB, n, procs int) []Member {
	tb.Helper()
	RequireRoot(tb)
	tag := Suffix()
	members := make([]Member, n)
	var nsBatch, linkBatch, upBatch strings.Builder
	for i := range members {
		m := &members[i]
		m.Netns = fmt.Sprintf("cvf%s-%d", tag, i)
		m.Host = fmt.Sprintf("cvf%s%d", tag[:3], i)
		fmt.Fprintf(&nsBatch, "netns add %s\n", m.Netns)
		fmt.Fprintf(&linkBatch, "link add %s type veth peer name eth0 netns %s\nlink set %s up\n", m.Host, m.Netns, m.Host)
		fmt.Fprintf(&upBatch, "-n %s link set eth0 up\n", m.Netns)
	}
	tb.Cleanup(func() {
		var del strings.Builder
		for _, m := range members {
			fmt.Fprintf(&del, "netns del %s\n", m.Netns)
		}
		cmd := exec.Command("ip", "-force", "-batch", "-")
		cmd.Stdin = strings.NewReader(del.String())
		_ = cmd.Run()
	})
	for _, b := range []string{nsBatch.String(), linkBatch.String()} {
		cmd := exec.Command("ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("ip -batch: %v: %s", err, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(upBatch.String()), "\n") {
		IP(tb, strings.Fields(line)...)
	}
	for i := range members {
		for j := 0; j < procs; j++ {
			members[i].PIDs = append(members[i].PIDs, Spawn(tb, "/run/netns/"+members[i].Netns))
		}
	}
	return members
}

// NetnsLabel returns the inode of pid's network namespace in decimal, as
// the exporter's netns label and psnic's netns field give it.
func NetnsLabel(t testing.TB, pid int) string {
	t.Helper()
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(target, "net:["), "]")
}

// HostLinkChurn runs loops `ip -batch` loops, each adding and then deleting
// pairs veth pairs in the host namespace over and over, until the returned
// stop is called (or tb ends). Every link it makes is named with a prefix
// of its own and removed when it stops. It reports how many batches ran.
//
// It is the churn of a busy node, where the host link table changes all
// the time and link dumps come back interrupted (NLM_F_DUMP_INTR).
func HostLinkChurn(tb testing.TB, loops, pairs int) (stop func() int) {
	tb.Helper()
	RequireRoot(tb)
	prefix := "cvq" + Suffix()
	done := make(chan struct{})
	counts := make(chan int, loops)
	for l := range loops {
		var add, del strings.Builder
		for i := range pairs {
			name := fmt.Sprintf("%s%d_%d", prefix, l, i)
			fmt.Fprintf(&add, "link add %s type veth peer name %sp\n", name, name)
			fmt.Fprintf(&del, "link del %s\n", name)
		}
		go func() {
			n := 0
			defer func() { counts <- n }()
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, batch := range []string{add.String(), del.String()} {
					cmd := exec.Command("ip", "-force", "-batch", "-")
					cmd.Stdin = strings.NewReader(batch)
					_ = cmd.Run() // a failed line (a leftover name) is churn too
					n++
				}
			}
		}()
	}
	stopped := false
	total := 0
	stop = func() int {
		if stopped {
			return total
		}
		stopped = true
		close(done)
		for range loops {
			total += <-counts
		}
		out, _ := exec.Command("ip", "-o", "link", "show").Output()
		var del strings.Builder
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], prefix) {
				name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
				fmt.Fprintf(&del, "link del %s\n", name)
			}
		}
		cmd := exec.Command("ip", "-force", "-batch", "-")
		cmd.Stdin = strings.NewReader(del.String())
		_ = cmd.Run()
		return total
	}
	tb.Cleanup(func() { stop() })
	return stop
}

// LinkedProcfs returns a procfs root that holds only the given processes:
// one symlink per PID into the real /proc, and self. A resolver walking it
// sees exactly the namespaces a test made, on the real kernel, whatever
// else runs on the machine.
func LinkedProcfs(t testing.TB, pids ...int) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink("/proc/self", filepath.Join(root, "self")); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		p := strconv.Itoa(pid)
		if err := os.Symlink("/proc/"+p, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Cgroup makes the cgroup path names (each below the one before) under a
// cgroup of the test's own, in the hierarchy whose line of /proc/PID/cgroup
// internal/cgroupid reads first (name=systemd on cgroup v1, the unified one
// on v2), and returns the innermost one's directory. When t ends, pid is
// moved back to the root (if it is still alive) and the cgroups removed.
func Cgroup(t testing.TB, pid int, names ...string) string {
	t.Helper()
	hierarchy := "/sys/fs/cgroup/systemd"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		hierarchy = "/sys/fs/cgroup"
	}
	dirs := []string{filepath.Join(hierarchy, "cvtest"+Suffix())}
	for _, name := range names {
		dirs = append(dirs, filepath.Join(dirs[len(dirs)-1], name))
	}
	if err := os.MkdirAll(dirs[len(dirs)-1], 0o755); err != nil {
		t.Fatalf("making a cgroup: %v", err)
	}
	t.Cleanup(func() {
		err := os.WriteFile(filepath.Join(hierarchy, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Logf("cleanup: moving %d back to the root cgroup: %v", pid, err)
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	return dirs[len(dirs)-1]
}

// MoveToCgroup moves pid into the cgroup at dir.
func MoveToCgroup(t testing.TB, dir string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("moving %d to %s: %v", pid, dir, err)
	}
}

// ContainerID returns a random 64-hex container id.
func ContainerID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ReportCPU starts counting the process's CPU time (user and system, which
// includes the kernel's work for the requests) and returns the function
// that reports it per op: on a machine shared with other work, wall time
// mostly measures the wait for a CPU.
func ReportCPU(b *testing.B) func() {
	var start syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &start)
	return func() {
		var end syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &end)
		us := func(r syscall.Rusage) float64 {
			return float64(r.Utime.Sec+r.Stime.Sec)*1e6 + float64(r.Utime.Usec+r.Stime.Usec)
		}
		b.ReportMetric((us(end)-us(start))/float64(b.N), "cpu-us/op")
	}
}
