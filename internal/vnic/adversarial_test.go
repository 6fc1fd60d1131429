package vnic

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// Cases an adversarial tryout found wrong (issue 13), on real namespaces.

// freeIndex returns an ifindex no host link has, from a range the kernel's
// own allocation (counting up from 1) will not reach during a test.
func freeIndex(t *testing.T) int {
	t.Helper()
	for range 100 {
		i := 40000 + rand.IntN(20000)
		if out, _ := exec.Command("ip", "-o", "link", "show", "index", strconv.Itoa(i)).CombinedOutput(); !strings.HasPrefix(string(out), strconv.Itoa(i)+":") {
			return i
		}
	}
	t.Fatal("no free ifindex found")
	return 0
}

// A vxlan moved into a namespace reports its own old index with the host's
// id as IFLA_LINK: that names no lower device. With a host link sitting at
// that index, the pairing used to report it as the vxlan's parent.
func TestVxlanHasNoHostVNIC(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvx")
	idx := freeIndex(t)
	vx := hostName("cvvx")
	netnstest.IP(t, "link", "add", vx, "index", strconv.Itoa(idx), "type", "vxlan", "id", "42", "dstport", "4789")
	netnstest.IP(t, "link", "set", vx, "netns", ns.Name)
	if got := ns.Index(vx); got != idx {
		t.Fatalf("vxlan index %d after the move, want %d", got, idx)
	}
	// An unrelated host link takes the index the vxlan names.
	bait := hostName("cvif")
	netnstest.IP(t, "link", "add", bait, "index", strconv.Itoa(idx), "type", "ifb")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bait).Run() })
	pid := ns.Spawn()

	got, err := r.ResolvePID(pid)
	wantCause(t, err, CauseNoVNIC)
	if got.VNICs != nil {
		t.Fatalf("vxlan reported with host vNIC %+v", got.VNICs)
	}
	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	if ns, ok := namespacesByInode(snap)[inodeOfPID(t, pid)]; !ok || len(ns.VNICs) != 0 {
		t.Fatalf("ResolveAll: %+v (listed %v), want listed with no vNIC", ns, ok)
	}
}

// A macvlan's parent moves away, an unrelated link takes its index, and the
// parent comes back under a new index. Nothing happens in the macvlan's
// namespace, so the cache used to keep naming the old index: the unrelated
// link. It must name the parent, at its new index.
func TestCachedMacvlanFollowsItsParent(t *testing.T) {
	r := newResolver(t)
	if err := r.CacheError(); err != nil {
		t.Fatalf("this test proves the cache: %v", err)
	}
	m := netnstest.NewNetns(t, "cvm")
	away := netnstest.NewNetns(t, "cvo")
	idx := freeIndex(t)
	lower, lowerPeer := hostName("cvl"), hostName("cvp")
	netnstest.IP(t, "link", "add", lower, "index", strconv.Itoa(idx), "type", "veth", "peer", "name", lowerPeer)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", lower).Run()
		_ = exec.Command("ip", "link", "del", lowerPeer).Run()
	})
	mv := hostName("cvmv")
	netnstest.IP(t, "link", "add", mv, "link", lower, "type", "macvlan", "mode", "bridge")
	netnstest.IP(t, "link", "set", mv, "netns", m.Name)
	pid := m.Spawn()
	ino := inodeOfPID(t, pid)

	parentOf := func() VNIC {
		t.Helper()
		snap, err := r.ResolveAll()
		if err != nil {
			t.Fatal(err)
		}
		v := namespacesByInode(snap)[ino].VNICs
		if len(v) != 1 {
			t.Fatalf("macvlan namespace: got %+v, want one stacked link", v)
		}
		return v[0]
	}
	if v := parentOf(); v.HostIfname != lower || v.HostIfindex != idx {
		t.Fatalf("before: parent %s(%d), want %s(%d)", v.HostIfname, v.HostIfindex, lower, idx)
	}
	if v := parentOf(); v.HostIfname != lower {
		t.Fatalf("cached: parent %s, want %s", v.HostIfname, lower)
	}

	netnstest.IP(t, "link", "set", lower, "netns", away.Name)
	bait := hostName("cvz")
	netnstest.IP(t, "link", "add", bait, "index", strconv.Itoa(idx), "type", "veth", "peer", "name", bait+"p")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bait).Run() })
	away.IP("link", "set", lower, "netns", strconv.Itoa(os.Getpid()))
	newIdx := netnstest.HostIndex(t, lower)
	if newIdx == idx {
		t.Fatalf("%s kept index %d though %s holds it", lower, idx, bait)
	}
	for range 3 { // and it stays right, scrape after scrape
		if v := parentOf(); v.HostIfname != lower || v.HostIfindex != newIdx {
			t.Fatalf("after the parent came back: %s(%d), want %s(%d), not %s", v.HostIfname, v.HostIfindex, lower, newIdx, bait)
		}
	}
}

// fakeProcfs returns a procfs root whose self links to the real one, as a
// crafted --path.procfs would, with dir PID holding ns/net made by mk.
func fakeProcfs(t *testing.T, pid int, mk func(path string) error) string {
	t.Helper()
	root := netnstest.LinkedProcfs(t)
	dir := filepath.Join(root, strconv.Itoa(pid), "ns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mk(filepath.Join(dir, "net")); err != nil {
		t.Fatal(err)
	}
	return root
}

// A FIFO at ns/net used to block the open forever; a file that is not a
// network namespace was blamed on the kernel version.
func TestNotANetworkNamespace(t *testing.T) {
	netnstest.RequireRoot(t)
	for name, mk := range map[string]func(string) error{
		"fifo":         func(p string) error { return unix.Mkfifo(p, 0o600) },
		"regular file": func(p string) error { return os.WriteFile(p, []byte("net:[4026531840]"), 0o600) },
		"other namespace type": func(p string) error {
			return os.Symlink("/proc/self/ns/uts", p)
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := fakeProcfs(t, 77, mk)
			r, err := New(Options{ProcfsPath: root, NoCache: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			done := make(chan error, 1)
			go func() {
				_, err := r.ResolvePID(77)
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("ResolvePID still blocked after 30 s")
			}
			wantCause(t, err, CauseProcfs)
			msg := err.Error()
			if !strings.Contains(msg, "pid 77") || !strings.Contains(msg, "not a network namespace") ||
				!strings.Contains(msg, "--path.procfs") || strings.Contains(msg, "kernel") {
				t.Fatalf("message %q: want the PID, 'not a network namespace' and --path.procfs, no kernel blame", msg)
			}
		})
	}
}

func TestZombieMessage(t *testing.T) {
	r := newResolver(t)
	// A child that exits and is not reaped until the test is done.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cmd.Wait(); err != nil {
			t.Error(err)
		}
	}()
	pid := cmd.Process.Pid
	netnstest.Eventually(t, 10*time.Second, "the child to become a zombie", func() bool {
		return zombie("/proc/" + strconv.Itoa(pid))
	})
	_, err := r.ResolvePID(pid)
	wantCause(t, err, CauseZombie)
	if msg := err.Error(); !strings.Contains(msg, "zombie") || strings.Contains(msg, "restarted") {
		t.Fatalf("message %q", msg)
	}
}

// The procfs root must be a procfs: a directory that merely has a self/
// is refused.
func TestNewChecksProcfsType(t *testing.T) {
	netnstest.RequireRoot(t)
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{ProcfsPath: root, NoCache: true})
	if err == nil {
		r.Close()
		t.Fatalf("New(%s) accepted a directory with a self/ as a procfs", root)
	}
	if !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), "--path.procfs") {
		t.Fatalf("error %q must name the path and the flag", err)
	}
	r, err = New(Options{ProcfsPath: "/proc", NoCache: true})
	if err != nil {
		t.Fatalf("the real /proc: %v", err)
	}
	r.Close()
}

// As root, some processes still refuse (here PID 1: another user namespace
// or a security module). The message must not tell root to run as root.
func TestPermissionMessageAsRoot(t *testing.T) {
	r := newResolver(t)
	if len(MissingCapabilities()) > 0 {
		t.Skip("needs CAP_SYS_PTRACE and CAP_NET_ADMIN")
	}
	if _, err := os.Open("/proc/1/ns/net"); !os.IsPermission(err) {
		t.Skipf("/proc/1/ns/net opens here (%v): nothing refuses root", err)
	}
	_, err := r.ResolvePID(1)
	wantCause(t, err, CausePermission)
	if msg := err.Error(); strings.Contains(msg, "run as root") || !strings.Contains(msg, "pid 1") {
		t.Fatalf("message %q", msg)
	}
}

// When the host link dump keeps coming back interrupted, ResolveAll asks
// for the host ends one by one and still answers every namespace right.
// With no retry budget the first interrupted dump takes that path.
func TestResolveAllFallsBackToLinkByLink(t *testing.T) {
	netnstest.RequireRoot(t)
	budget := rtnl.DumpBudget
	rtnl.DumpBudget = 0
	t.Cleanup(func() { rtnl.DumpBudget = budget })
	ns := netnstest.NewNetns(t, "cvfb")
	host := hostName("cvfb")
	ns.Veth(host, "eth0")
	pid := ns.Spawn()
	// Only the test's namespace in the walk: other tests' may fail on
	// their own.
	r := cachedResolver(t, Options{ProcfsPath: netnstest.LinkedProcfs(t, pid)})

	netnstest.HostLinkChurn(t, 3, 50)
	calls, byLink := 0, 0
	for deadline := time.Now().Add(60 * time.Second); byLink < 3; calls++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 60 s, %d listed the host link by link: the churn never interrupted a dump", calls, byLink)
		}
		v, snap := vnicsOf(t, r, pid)
		wantVNICs(t, v, "eth0>"+host)
		if len(snap.Failed) != 0 {
			t.Fatalf("call %d: failed %v", calls+1, snap.Failed)
		}
		if snap.HostByLink {
			byLink++
		}
	}
	t.Logf("%d calls, %d of them with the host ends asked link by link", calls, byLink)
}

// A procfs unmounted under a running resolver leaves an empty directory:
// a walk that finds no process directory fails, rather than report no
// namespaces as a success.
func TestWalkFindsNoProcess(t *testing.T) {
	netnstest.RequireRoot(t)
	root := netnstest.LinkedProcfs(t) // self only: New accepts it
	r, err := New(Options{ProcfsPath: root})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ResolveAll(); err == nil || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), "no process directories") {
		t.Fatalf("ResolveAll: %v, want an error naming %s and no process directories", err, root)
	}
}
