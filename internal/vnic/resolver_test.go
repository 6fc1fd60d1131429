package vnic

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// These tests run on the real kernel: they create namespaces, veths and
// processes with iproute2 and remove them when done.

func newResolver(t *testing.T) *Resolver {
	t.Helper()
	netnstest.RequireRoot(t)
	r, err := New(Options{ProcfsPath: "/proc"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// hostName returns a unique host interface name (at most 15 bytes).
func hostName(prefix string) string { return prefix + netnstest.Suffix() }

func inodeOfPID(t *testing.T, pid int) uint64 {
	t.Helper()
	f, err := os.Open("/proc/" + itoa(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ino, err := nsFile(f.Fd()).inode()
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

func itoa(i int) string { return strconv.Itoa(i) }

func wantCause(t *testing.T, err error, want Cause) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Cause != want {
		t.Fatalf("got error %v, want cause %s", err, want)
	}
}

func TestResolvePIDOneVeth(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvr")
	host := hostName("cvh")
	ns.Veth(host, "eth0")
	pid := ns.Spawn()

	got, err := r.ResolvePID(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := Netns{Inode: inodeOfPID(t, pid), PID: pid, VNICs: []VNIC{{
		ContainerIfname: "eth0", ContainerIfindex: ns.Index("eth0"),
		HostIfname: host, HostIfindex: netnstest.HostIndex(t, host), Kind: "veth",
	}}}
	got.VNICs = pairing(got.VNICs)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// pairing returns vnics without their link state, which the kernel may be
// changing still (operstate follows carrier a moment later): these tests
// check the pairing; collector's TestLinkStateExact checks the state.
func pairing(vnics []VNIC) []VNIC {
	out := make([]VNIC, len(vnics))
	for i, v := range vnics {
		v.ContainerState, v.HostState = LinkState{}, LinkState{}
		out[i] = v
	}
	return out
}

func TestResolvePIDThreeVeths(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvr")
	var want []VNIC
	for _, c := range []string{"eth0", "eth1", "net1"} {
		h := hostName("cvh")
		ns.Veth(h, c)
		want = append(want, VNIC{ContainerIfname: c, ContainerIfindex: ns.Index(c),
			HostIfname: h, HostIfindex: netnstest.HostIndex(t, h), Kind: "veth"})
	}
	pid := ns.Spawn()
	got, err := r.ResolvePID(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := pairing(got.VNICs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestResolvePIDHostNetns(t *testing.T) {
	r := newResolver(t)
	_, err := r.ResolvePID(netnstest.Spawn(t, ""))
	wantCause(t, err, CauseHostNetns)
	_, err = r.ResolvePID(os.Getpid())
	wantCause(t, err, CauseHostNetns)
}

func TestResolvePIDLoOnly(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvr")
	ns.IP("link", "set", "lo", "up")
	_, err := r.ResolvePID(ns.Spawn())
	wantCause(t, err, CauseNoVNIC)
}

func TestResolvePIDNoProcess(t *testing.T) {
	r := newResolver(t)
	for _, pid := range []int{0, -1, 1 << 30} {
		_, err := r.ResolvePID(pid)
		wantCause(t, err, CauseNoProcess)
	}
}

// A veth between two containers whose indexes mirror an unrelated host
// veth pair exactly (both directions) must not be reported: only the
// namespace ids tell them apart.
func TestResolvePIDIndexCollision(t *testing.T) {
	r := newResolver(t)
	a := netnstest.NewNetns(t, "cva")
	b := netnstest.NewNetns(t, "cvb")
	c := netnstest.NewNetns(t, "cvc")
	hostIdx := 20000 + rand.IntN(30000)
	host := hostName("cvh")
	netnstest.IP(t, "link", "add", host, "index", itoa(hostIdx), "type", "veth",
		"peer", "name", "eth0", "netns", a.Name, "index", "7")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	// b:7 <-> c:hostIdx, mirroring host:hostIdx <-> a:7.
	netnstest.IP(t, "link", "add", "xb", "netns", b.Name, "index", "7", "type", "veth",
		"peer", "name", "xc", "netns", c.Name, "index", itoa(hostIdx))
	pidA, pidB, pidC := a.Spawn(), b.Spawn(), c.Spawn()

	got, err := r.ResolvePID(pidA)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.VNICs) != 1 || got.VNICs[0].HostIfname != host || got.VNICs[0].ContainerIfindex != 7 {
		t.Fatalf("pid in a: got %+v, want eth0(7) -> %s", got.VNICs, host)
	}
	for _, pid := range []int{pidB, pidC} {
		got, err := r.ResolvePID(pid)
		wantCause(t, err, CauseNoVNIC)
		if got.VNICs != nil {
			t.Fatalf("pid %d: reported %+v for a container-to-container veth", pid, got.VNICs)
		}
	}

	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	byIno := namespacesByInode(snap)
	if v := byIno[inodeOfPID(t, pidA)].VNICs; len(v) != 1 || v[0].HostIfname != host {
		t.Fatalf("ResolveAll, a: got %+v", v)
	}
	for _, pid := range []int{pidB, pidC} {
		ns, ok := byIno[inodeOfPID(t, pid)]
		if !ok || len(ns.VNICs) != 0 {
			t.Fatalf("ResolveAll, pid %d: got %+v (present %v), want listed with no vNIC", pid, ns, ok)
		}
	}
}

func TestResolvePIDMacvlan(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvm")
	bridge := hostName("cvbr")
	netnstest.IP(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	mv := hostName("cvmv")
	netnstest.IP(t, "link", "add", mv, "link", bridge, "type", "macvlan", "mode", "bridge")
	netnstest.IP(t, "link", "set", mv, "netns", ns.Name)
	ns.IP("link", "set", mv, "name", "eth0")
	pid := ns.Spawn()

	got, err := r.ResolvePID(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := []VNIC{{ContainerIfname: "eth0", ContainerIfindex: ns.Index("eth0"),
		HostIfname: bridge, HostIfindex: netnstest.HostIndex(t, bridge), Kind: "macvlan"}}
	if got := pairing(got.VNICs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestResolveRenameShowsOnNextCall(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvr")
	host := hostName("cvh")
	ns.Veth(host, "eth0")
	pid := ns.Spawn()
	if got, err := r.ResolvePID(pid); err != nil || got.VNICs[0].HostIfname != host {
		t.Fatalf("before rename: %+v, %v", got, err)
	}
	renamed := hostName("cvn")
	netnstest.IP(t, "link", "set", host, "down")
	netnstest.IP(t, "link", "set", host, "name", renamed)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", renamed).Run() })
	ns.IP("link", "set", "eth0", "name", "net0")

	got, err := r.ResolvePID(pid)
	if err != nil || got.VNICs[0].HostIfname != renamed || got.VNICs[0].ContainerIfname != "net0" {
		t.Fatalf("ResolvePID after rename: %+v, %v; want net0 -> %s", got, err, renamed)
	}
	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	v := namespacesByInode(snap)[inodeOfPID(t, pid)].VNICs
	if len(v) != 1 || v[0].HostIfname != renamed || v[0].ContainerIfname != "net0" {
		t.Fatalf("ResolveAll after rename: %+v; want net0 -> %s", v, renamed)
	}
}

// Many processes share one namespace: one result, named by the oldest
// process (spawned in PID order here, so also the lowest PID).
func TestResolveAllDedupes(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvr")
	host := hostName("cvh")
	ns.Veth(host, "eth0")
	lo := netnstest.NewNetns(t, "cvl")
	pids := []int{ns.Spawn(), ns.Spawn(), ns.Spawn(), ns.Spawn()}
	lowest := pids[0]
	for _, p := range pids {
		lowest = min(lowest, p)
	}
	loPID := lo.Spawn()

	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	ino := inodeOfPID(t, pids[0])
	count := 0
	for _, n := range snap.Namespaces {
		if n.Inode == ino {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("namespace %d listed %d times, want once", ino, count)
	}
	got := namespacesByInode(snap)[ino]
	if got.PID != lowest || len(got.VNICs) != 1 || got.VNICs[0].HostIfname != host {
		t.Fatalf("got %+v, want pid %d and one vNIC to %s", got, lowest, host)
	}
	if l, ok := namespacesByInode(snap)[inodeOfPID(t, loPID)]; !ok || len(l.VNICs) != 0 {
		t.Fatalf("lo-only namespace: got %+v (listed %v), want listed without vNICs", l, ok)
	}
	if snap.Walk.Processes < len(pids)+1 {
		t.Fatalf("walk saw %d processes, fewer than the %d started", snap.Walk.Processes, len(pids)+1)
	}
}

func TestNewRejectsBadProcfs(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/nonexistent/proc", file, t.TempDir()} {
		if r, err := New(Options{ProcfsPath: path}); err == nil {
			r.Close()
			t.Errorf("New(%q) succeeded, want an error", path)
		}
	}
}

func namespacesByInode(s Snapshot) map[uint64]Netns {
	m := map[uint64]Netns{}
	for _, n := range s.Namespaces {
		m[n.Inode] = n
	}
	return m
}
