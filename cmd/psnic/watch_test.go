package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// watcher is a running `psnic watch -o json`, its changes filtered to the
// host interfaces of one test.
type watcher struct {
	cmd    *exec.Cmd
	lines  chan change
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newSentinel makes a namespace with a process and a veth whose "present"
// line tells a test that a watch has taken its first snapshot: whatever the
// test does afterwards is a change.
func newSentinel(t *testing.T) string {
	t.Helper()
	ns := netnstest.NewNetns(t, "cvws")
	ns.Spawn()
	host := "cvs" + netnstest.Suffix()
	ns.Veth(host, "eth0")
	return host
}

// newMacvlanSentinel is newSentinel for a watch that passes macvlans only:
// its "present" line names the macvlan's host parent, which it returns.
func newMacvlanSentinel(t *testing.T) string {
	t.Helper()
	ns := netnstest.NewNetns(t, "cvws")
	ns.Spawn()
	parent := "cvs" + netnstest.Suffix()
	addMacvlan(t, parent, ns, "cvm"+netnstest.Suffix())
	return parent
}

// addMacvlan makes a macvlan named name inside ns on the host interface
// parent, a bridge it creates if needed (and deletes when t ends).
func addMacvlan(t *testing.T, parent string, ns *netnstest.Netns, name string) {
	t.Helper()
	if exec.Command("ip", "link", "show", "dev", parent).Run() != nil {
		netnstest.IP(t, "link", "add", parent, "type", "bridge")
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", parent).Run() })
		netnstest.IP(t, "link", "set", parent, "up")
	}
	// Named once, in the host: a rename inside would be a change of its own.
	netnstest.IP(t, "link", "add", name, "link", parent, "type", "macvlan", "mode", "bridge")
	netnstest.IP(t, "link", "set", name, "netns", ns.Name)
}

func startWatch(t *testing.T, prefix string, args ...string) *watcher {
	t.Helper()
	return startWatchWith(t, prefix, newSentinel(t), args...)
}

// startWatchWith starts a watch and returns once it printed sentinel's
// "present" line.
func startWatchWith(t *testing.T, prefix, sentinel string, args ...string) *watcher {
	t.Helper()
	w := &watcher{lines: make(chan change, 1000), stderr: &syncBuffer{}, done: make(chan error, 1)}
	w.cmd = exec.Command(psnicBin, append([]string{"watch", "-o", "json"}, args...)...)
	w.cmd.Stderr = w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			var c change
			if err := json.Unmarshal(s.Bytes(), &c); err != nil {
				c = change{Event: "unparsable: " + s.Text()}
			}
			if c.HostIfname == sentinel {
				if c.Event == "present" {
					close(ready)
				}
				continue
			}
			if strings.HasPrefix(c.HostIfname, prefix) || strings.HasPrefix(c.Event, "unparsable") ||
				(c.Old != nil && strings.HasPrefix(c.Old.HostIfname, prefix)) {
				w.lines <- c
			}
		}
		close(w.lines)
		w.done <- w.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("psnic watch stderr:\n%s", w.stderr)
		}
	})
	select {
	case <-ready:
	case err := <-w.done:
		t.Fatalf("psnic watch ended (%v) before its snapshot; stderr:\n%s", err, w.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("no present line for the sentinel %s within 30 s; stderr:\n%s", sentinel, w.stderr)
	}
	return w
}

// next returns the next change of ours, failing after 10 s.
func (w *watcher) next(t *testing.T) change {
	t.Helper()
	select {
	case c, ok := <-w.lines:
		if !ok {
			t.Fatalf("psnic watch ended early; stderr:\n%s", w.stderr)
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("no change within 10 s; stderr:\n%s", w.stderr)
	}
	return change{}
}

// expect checks the next change: its event, container ifname, host ifname,
// and for "changed" the old host and container names.
func (w *watcher) expect(t *testing.T, event, container, host string, pid int, old ...string) change {
	t.Helper()
	c := w.next(t)
	bad := c.Event != event || c.ContainerIfname != container || c.HostIfname != host || c.PID != pid || c.Time == ""
	if len(old) == 2 && (c.Old == nil || c.Old.ContainerIfname != old[0] || c.Old.HostIfname != old[1]) {
		bad = true
	}
	if bad {
		t.Fatalf("got %+v (old %+v), want %s %s -> %s pid %d (old %v)", c, c.Old, event, container, host, pid, old)
	}
	return c
}

// The exact sequence for create, renames on either side, a process that
// joins after the links, a moved container, and deletion.
func TestWatchSequence(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvw" + netnstest.Suffix()[:4]
	w := startWatch(t, prefix)

	// Process first, then its veth: the link notification drives it.
	a := netnstest.NewNetns(t, "cvwa")
	pidA := a.Spawn()
	a.Veth(prefix+"a", "eth0")
	first := w.expect(t, "added", "eth0", prefix+"a", pidA)
	inoA := first.Netns

	netnstest.IP(t, "link", "set", prefix+"a", "name", prefix+"b")
	w.expect(t, "changed", "eth0", prefix+"b", pidA, "eth0", prefix+"a")

	a.IP("link", "set", "eth0", "down")
	a.IP("link", "set", "eth0", "name", "net0")
	w.expect(t, "changed", "net0", prefix+"b", pidA, "eth0", prefix+"b")

	// Links first, process later: only a process event can tell.
	// (No `ip -n` here: it would enter the namespace itself, and rightly be
	// reported as its oldest process for a moment.)
	c := netnstest.NewNetns(t, "cvwc")
	netnstest.IP(t, "link", "add", prefix+"c", "type", "veth", "peer", "name", "eth0", "netns", c.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"c").Run() })
	pidC := c.Spawn()
	w.expect(t, "added", "eth0", prefix+"c", pidC)

	// Move container a: its namespace goes, a new one comes with a new veth
	// under the same host name.
	killAndDelete(t, a, pidA)
	if got := w.expect(t, "removed", "net0", prefix+"b", pidA); got.Netns != inoA {
		t.Fatalf("removed netns %d, want %d", got.Netns, inoA)
	}
	// Its last process gone, the namespace is; the kernel deletes its
	// veth a moment later.
	netnstest.Eventually(t, 10*time.Second, prefix+"b to be deleted with its namespace", func() bool {
		return exec.Command("ip", "link", "show", "dev", prefix+"b").Run() != nil
	})
	a2 := netnstest.NewNetns(t, "cvwa")
	pidA2 := a2.Spawn()
	// The name may still be taken for a moment after the link stopped
	// being listed ("File exists" was seen on a loaded host): wait for the
	// add to go through, not for a guessed delay.
	netnstest.Eventually(t, 10*time.Second, "the host name "+prefix+"b to be free again", func() bool {
		return exec.Command("ip", "link", "add", prefix+"b", "type", "veth", "peer", "name", "eth0", "netns", a2.Name).Run() == nil
	})
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"b").Run() })
	netnstest.IP(t, "link", "set", prefix+"b", "up")
	a2.IP("link", "set", "eth0", "up")
	// (The new namespace may well get the old one's inode: the kernel
	// reuses them. The "removed" before it, and the new PID, tell them apart.)
	w.expect(t, "added", "eth0", prefix+"b", pidA2)

	killAndDelete(t, c, pidC)
	w.expect(t, "removed", "eth0", prefix+"c", pidC)

	// SIGTERM: exit 0, and no thread ever left the host namespace.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/net", w.cmd.Process.Pid))
	host, _ := os.Readlink("/proc/self/ns/net")
	for _, task := range tasks {
		if ns, err := os.Readlink(task); err == nil && ns != host {
			t.Errorf("%s is in %s, not the host's %s", task, ns, host)
		}
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range w.lines {
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v; stderr:\n%s", err, w.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("psnic watch still running 10 s after SIGTERM")
	}
}

func killAndDelete(t *testing.T, ns *netnstest.Netns, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	netnstest.IP(t, "netns", "del", ns.Name)
}

// Notifications lost to a minimal socket buffer: the stream still ends on
// the truth, and says so with changes, not silence.
func TestWatchOverflowConverges(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvo" + netnstest.Suffix()[:4]
	w := startWatch(t, prefix, "--event-buffer=1")
	a := netnstest.NewNetns(t, "cvwo")
	pid := a.Spawn()
	a.Veth(prefix+"a", "eth0")
	w.expect(t, "added", "eth0", prefix+"a", pid)

	var batch strings.Builder
	for i := 0; i < 200; i++ {
		batch.WriteString("link set eth0 down\nlink set eth0 up\n")
	}
	batch.WriteString("link set eth0 down\nlink set eth0 name final0\n")
	cmd := exec.Command("ip", "-n", a.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Intermediate states may be skipped; the last word must be the truth.
	for {
		c := w.next(t)
		if c.Event != "changed" {
			t.Fatalf("unexpected %+v", c)
		}
		if c.ContainerIfname == "final0" && c.HostIfname == prefix+"a" {
			break
		}
	}
}

// --exec runs the command per change with the change in its environment;
// a failing or hanging command is reported and the stream goes on. (The
// timeout leaves room for clsact.sh's tc on a loaded host: a hook killed at
// its timeout takes its whole process group, tc included.) The
// command's own flags follow it without "--" (sh -c). With --exec only veths
// are passed by default: a macvlan's host end is a shared parent. The
// README's clsact example gives each new host veth a clsact qdisc.
func TestWatchExec(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := exec.LookPath("tc"); err != nil {
		t.Fatalf("tc (iproute2) is needed: %v", err)
	}
	prefix := "cvx" + netnstest.Suffix()[:4]
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := `case "$PSNIC_HOST_IFNAME" in ` + prefix + `*) ;; *) exit 0 ;; esac
echo "$PSNIC_EVENT|$PSNIC_PID|$PSNIC_NETNS|$PSNIC_CONTAINER_IFNAME|$PSNIC_CONTAINER_IFINDEX|$PSNIC_HOST_IFNAME|$PSNIC_HOST_IFINDEX|$PSNIC_KIND|$PSNIC_OLD_HOST_IFNAME|${PSNIC_CONTAINER_ID-unset}|${PSNIC_POD_UID-unset}|${PSNIC_RUNTIME-unset}" >>"$1"
case "$PSNIC_HOST_IFNAME" in *fail) exit 3 ;; *hang) sleep 30 ;; esac
exec "$2"`
	w := startWatch(t, prefix, "--exec-timeout=3s", "--exec", "/bin/sh", "-c", script, "hook", log,
		"../../examples/tc/clsact.sh")

	a := netnstest.NewNetns(t, "cvxa")
	pid := a.Spawn()
	// A macvlan on a host parent first: neither printed nor hooked.
	addMacvlan(t, prefix+"par", a, prefix+"mv0")
	for _, suffix := range []string{"fail", "hang", "ok"} {
		host := prefix + suffix
		a.Veth(host, "e"+suffix)
		w.expect(t, "added", "e"+suffix, host, pid)
	}
	netnstest.Eventually(t, 10*time.Second, "the hook to see the third vNIC", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), prefix+"ok|")
	})
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("hook ran %d times, want 3 (the veths, not the macvlan):\n%s", len(lines), b)
	}
	f := strings.Split(lines[2], "|")
	want := []string{"added", strconv.Itoa(pid), netnstest.NetnsLabel(t, pid), "eok", strconv.Itoa(a.Index("eok")), prefix + "ok",
		strconv.Itoa(netnstest.HostIndex(t, prefix+"ok")), "veth", "", "", "", ""}
	if len(f) != len(want) {
		t.Fatalf("hook line %q: %d fields, want %d", lines[2], len(f), len(want))
	}
	for i := range want {
		if f[i] != want[i] {
			t.Errorf("hook field %d = %q, want %q (%s)", i, f[i], want[i], lines[2])
		}
	}
	// The hook logs before it hands over to clsact.sh: wait for the qdisc.
	netnstest.Eventually(t, 10*time.Second, "a clsact qdisc on "+prefix+"ok", func() bool {
		out, _ := exec.Command("tc", "qdisc", "show", "dev", prefix+"ok").Output()
		return strings.Contains(string(out), "qdisc clsact")
	})
	if out, _ := exec.Command("tc", "qdisc", "show", "dev", prefix+"par").Output(); strings.Contains(string(out), "clsact") {
		t.Errorf("the macvlan's shared parent got a clsact qdisc: %s", out)
	}
	stderr := w.stderr.String()
	if !strings.Contains(stderr, "--exec /bin/sh for added "+prefix+"fail: exit status 3") ||
		!strings.Contains(stderr, "for added "+prefix+"hang: killed after 3s") {
		t.Errorf("failures not reported as expected:\n%s", stderr)
	}
}

// Filters: by kind (veths only by default with --exec, stacked links with
// --include-parents or --kind) and by host interface name. Each watch's next
// line proves the lines it should have skipped were skipped.
func TestWatchFilters(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvk" + netnstest.Suffix()[:4]
	sentinel := newSentinel(t)
	macvlans := startWatchWith(t, prefix, newMacvlanSentinel(t), "--kind=macvlan")
	parents := startWatchWith(t, prefix, sentinel, "--include-parents", "--exec", "true")
	veths := startWatchWith(t, prefix, sentinel, "--exec", "true")
	named := startWatchWith(t, prefix, sentinel, "--host-ifname="+prefix+"v*", "--host-ifname="+sentinel)

	a := netnstest.NewNetns(t, "cvka")
	pid := a.Spawn()
	par := prefix + "par"
	m1, m2 := prefix+"m1", prefix+"m2"
	addMacvlan(t, par, a, m1)
	macvlans.expect(t, "added", m1, par, pid)
	parents.expect(t, "added", m1, par, pid)
	a.Veth(prefix+"v1", "e1")
	parents.expect(t, "added", "e1", prefix+"v1", pid)
	veths.expect(t, "added", "e1", prefix+"v1", pid)
	named.expect(t, "added", "e1", prefix+"v1", pid)
	addMacvlan(t, par, a, m2)
	macvlans.expect(t, "added", m2, par, pid)
	parents.expect(t, "added", m2, par, pid)
	a.Veth(prefix+"v2", "e2")
	parents.expect(t, "added", "e2", prefix+"v2", pid)
	veths.expect(t, "added", "e2", prefix+"v2", pid)
	named.expect(t, "added", "e2", prefix+"v2", pid)
	// Renamed out of the pattern: removed, for the named watch only.
	netnstest.IP(t, "link", "set", prefix+"v1", "name", prefix+"x1")
	named.expect(t, "removed", "e1", prefix+"v1", pid)
	veths.expect(t, "changed", "e1", prefix+"x1", pid, "e1", prefix+"v1")
}

// Three watchers side by side each see a process join a namespace whose
// links already exist (only the process events tell). The resync is an
// hour away: nothing else could bring the line before expect gives up. How
// soon it comes is a benchmark's business (bench/watchlatency), not a test's.
func TestWatchSideBySide(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvt" + netnstest.Suffix()[:4]
	sentinel := newSentinel(t)
	var ws []*watcher
	for i := 0; i < 3; i++ {
		ws = append(ws, startWatchWith(t, prefix, sentinel, "--resync-interval=1h"))
	}
	for round := 0; round < 2; round++ {
		c := netnstest.NewNetns(t, "cvtc")
		host := prefix + strconv.Itoa(round)
		netnstest.IP(t, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", c.Name)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
		start := time.Now()
		pid := c.Spawn()
		for i, w := range ws {
			w.expect(t, "added", "eth0", host, pid)
			t.Logf("round %d: watcher %d: added after %v", round, i, time.Since(start))
		}
	}
	for i, w := range ws {
		if strings.Contains(w.stderr.String(), "process events") {
			t.Errorf("watcher %d lost its process events:\n%s", i, w.stderr)
		}
	}
}

// What docs/psnic.md says each event means. The stream sees a namespace
// through its processes: "present" is a vNIC seen at start, "added" one
// that comes into sight (a veth made in a namespace with a process, or a
// process entering a namespace whose veth exists), "removed" one that
// goes out of sight, whether its link went or its namespace lost its last
// process (a namespace kept only by a bind mount is out of sight, its veth
// still there).
func TestWatchEventMeanings(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cve" + netnstest.Suffix()[:4]
	before := netnstest.NewNetns(t, "cvep")
	beforePID := before.Spawn()
	before.Veth(prefix+"p", "eth0")
	w := startWatch(t, prefix)
	w.expect(t, "present", "eth0", prefix+"p", beforePID)

	// A veth made in a namespace with a process: added.
	ns := netnstest.NewNetns(t, "cvee")
	pid := ns.Spawn()
	ns.Veth(prefix+"a", "eth0")
	w.expect(t, "added", "eth0", prefix+"a", pid)

	// Its last process exits; /run/netns keeps the namespace and the veth:
	// removed all the same, the veth still there.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "removed", "eth0", prefix+"a", pid)
	if err := exec.Command("ip", "link", "show", "dev", prefix+"a").Run(); err != nil {
		t.Fatalf("the veth went with the process (%v): the case is not the one tested", err)
	}

	// A process enters the namespace whose veth exists: added again.
	pid2 := ns.Spawn()
	w.expect(t, "added", "eth0", prefix+"a", pid2)

	// The link deleted, the process still there: removed.
	netnstest.IP(t, "link", "del", prefix+"a")
	w.expect(t, "removed", "eth0", prefix+"a", pid2)
}
