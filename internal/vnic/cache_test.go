package vnic

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// fromHost9: the host numbers itself 9.
func fromHost9(nsid int) bool { return nsid == 9 || nsid == noNSID }

func TestCacheApply(t *testing.T) {
	var c cache
	c.reset()
	a := c.store(100, 4, []link{{Index: 2, Name: "eth0"}})
	b := c.store(200, 5, nil)

	c.setHost([]link{{Index: 13, Name: "veth13", Kind: "veth", PeerIndex: 2, PeerNSID: 4}})
	if len(c.hostPeers[4]) != 1 {
		t.Fatalf("hostPeers %v", c.hostPeers)
	}
	c.apply(Notification{Type: unix.RTM_NEWLINK, From: 4}, fromHost9)
	if !a.stale || b.stale || c.host != nil || c.hostPeers != nil {
		t.Fatalf("link event in nsid 4: a stale %v, b stale %v, host kept %v; want a and the host links stale", a.stale, b.stale, c.host != nil)
	}
	a.stale = false
	for _, from := range []int{9, noNSID} { // the host, or a namespace not cached
		c.setHost(nil)
		c.apply(Notification{Type: unix.RTM_DELLINK, From: from}, fromHost9)
		if a.stale || b.stale || c.host != nil {
			t.Fatalf("link event from nsid %d: a stale %v, b stale %v, host kept %v; want only the host links stale", from, a.stale, b.stale, c.host != nil)
		}
	}
	c.setHost(nil)
	c.apply(Notification{Type: unix.RTM_NEWNSID, From: 9, NSID: 8}, fromHost9)
	if c.host == nil {
		t.Fatal("an nsid event must not invalidate the host links")
	}
	c.apply(Notification{Type: unix.RTM_NEWNSID, From: 9, NSID: 5}, fromHost9)
	if c.byInode[200] == nil {
		t.Fatal("a new nsid must not drop anything")
	}
	// Namespace 4 deleting its own id 5 for some other namespace is not
	// the host deleting its id 5: the entry stays.
	c.apply(Notification{Type: unix.RTM_DELNSID, From: 4, NSID: 5}, fromHost9)
	if c.byInode[200] == nil || c.byNSID[5] == nil {
		t.Fatal("a DELNSID from namespace 4 dropped the host's nsid 5")
	}
	c.apply(Notification{Type: unix.RTM_DELNSID, From: 9, NSID: 5}, fromHost9)
	if c.byInode[200] != nil || c.byNSID[5] != nil {
		t.Fatal("deleted nsid 5 still cached")
	}
	// The same inode stored again under a new nsid replaces the old entry.
	c.store(100, 7, nil)
	if c.byNSID[4] != nil || c.byNSID[7] == nil || c.byInode[100].nsid != 7 {
		t.Fatalf("re-store: byNSID %v, byInode[100] %+v", c.byNSID, c.byInode[100])
	}
	c.prune(map[uint64]*netnsProcs{})
	if len(c.byInode) != 0 || len(c.byNSID) != 0 {
		t.Fatalf("prune left %v %v", c.byInode, c.byNSID)
	}
}

func TestConsistent(t *testing.T) {
	const self = 9
	e := &cachedNetns{nsid: 4, links: []link{
		{Index: 1, Name: "lo", PeerNSID: noNSID},
		{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: self},
	}}
	agree := map[int][]link{4: {{Index: 13, Kind: "veth", PeerIndex: 2, PeerNSID: 4}}, 5: {{Index: 14, Kind: "veth", PeerIndex: 3, PeerNSID: 5}}}
	if !consistent(e, agree, self) {
		t.Error("agreeing host dump judged inconsistent")
	}
	if !consistent(e, map[int][]link{}, self) {
		t.Error("host end gone: the cached links are still the container's truth")
	}
	for name, peers := range map[string][]link{
		"host veth names a container link not cached": {{Index: 15, Kind: "veth", PeerIndex: 3, PeerNSID: 4}},
		"cached link points elsewhere":                {{Index: 16, Kind: "veth", PeerIndex: 2, PeerNSID: 4}},
		"cached link is lo":                           {{Index: 17, Kind: "veth", PeerIndex: 1, PeerNSID: 4}},
	} {
		if consistent(e, map[int][]link{4: peers}, self) {
			t.Errorf("%s: judged consistent", name)
		}
	}
}

func cachedResolver(t *testing.T, opts Options) *Resolver {
	t.Helper()
	netnstest.RequireRoot(t)
	if opts.ProcfsPath == "" {
		opts.ProcfsPath = "/proc"
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.CacheError() != nil {
		t.Fatalf("no cache: %v", r.CacheError())
	}
	return r
}

// vnicsOf runs ResolveAll and returns the vNICs of the namespace of pid.
func vnicsOf(t *testing.T, r *Resolver, pid int) ([]VNIC, Snapshot) {
	t.Helper()
	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	return namespacesByInode(snap)[inodeOfPID(t, pid)].VNICs, snap
}

func wantVNICs(t *testing.T, got []VNIC, pairs ...string) {
	t.Helper()
	var have []string
	for _, v := range got {
		have = append(have, v.ContainerIfname+">"+v.HostIfname)
	}
	if fmt.Sprint(have) != fmt.Sprint(pairs) {
		t.Fatalf("got %v, want %v", have, pairs)
	}
}

// Every change made between two calls shows in the second, although the
// first filled the cache; with counters too, whose gets are sent before
// the walk and the notifications.
func TestCacheStaysExact(t *testing.T) {
	for _, counters := range []bool{false, true} {
		t.Run(fmt.Sprintf("counters=%v", counters), func(t *testing.T) { testCacheStaysExact(t, counters) })
	}
}

func testCacheStaysExact(t *testing.T, counters bool) {
	r := cachedResolver(t, Options{Counters: counters})
	a := netnstest.NewNetns(t, "cvka")
	hostA := hostName("cvka")
	a.Veth(hostA, "eth0")
	pidA := a.Spawn()
	b := netnstest.NewNetns(t, "cvkb")
	pidB := b.Spawn()

	v, _ := vnicsOf(t, r, pidA)
	wantVNICs(t, v, "eth0>"+hostA)
	v, snap := vnicsOf(t, r, pidA)
	wantVNICs(t, v, "eth0>"+hostA)
	if snap.Reused == 0 {
		t.Fatalf("second call reused nothing: %+v", snap)
	}
	// Nothing changed in a's namespace: it is answered from the cache,
	// however busy the rest of the host is. (A procfs root holding only
	// pidA keeps other tests' namespaces out of the count; link events
	// elsewhere still make the host links listed again, which
	// TestCacheApply covers.)
	only := cachedResolver(t, Options{ProcfsPath: netnstest.LinkedProcfs(t, pidA), Counters: counters})
	for i := range 3 {
		v, snap = vnicsOf(t, only, pidA)
		wantVNICs(t, v, "eth0>"+hostA)
		if i > 0 && (snap.Queried != 0 || snap.Reused != 1) {
			t.Fatalf("call %d on an unchanged namespace: queried %d, reused %d; want 0 and 1", i+1, snap.Queried, snap.Reused)
		}
	}

	// Create: a second veth in a.
	hostA2 := hostName("cvkc")
	a.Veth(hostA2, "eth1")
	v, _ = vnicsOf(t, r, pidA)
	wantVNICs(t, v, "eth0>"+hostA, "eth1>"+hostA2)

	// Rename inside the container only.
	a.IP("link", "set", "eth1", "down")
	a.IP("link", "set", "eth1", "name", "net1")
	v, _ = vnicsOf(t, r, pidA)
	wantVNICs(t, v, "eth0>"+hostA, "net1>"+hostA2)

	// Rename on the host only.
	renamed := hostName("cvkr")
	netnstest.IP(t, "link", "set", hostA, "down")
	netnstest.IP(t, "link", "set", hostA, "name", renamed)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", renamed).Run() })
	v, _ = vnicsOf(t, r, pidA)
	wantVNICs(t, v, "eth0>"+renamed, "net1>"+hostA2)

	// Move the container end of a pair from a to b.
	a.IP("link", "set", "net1", "netns", b.Name)
	v, _ = vnicsOf(t, r, pidA)
	wantVNICs(t, v, "eth0>"+renamed)
	v, _ = vnicsOf(t, r, pidB)
	wantVNICs(t, v, "net1>"+hostA2)

	// A veth end moved into the host from a third namespace: the kernel
	// tells the host, not the container whose link now has a host peer.
	c := netnstest.NewNetns(t, "cvkc")
	x := netnstest.NewNetns(t, "cvkx")
	moved := hostName("cvkm")
	netnstest.IP(t, "link", "add", "pc", "netns", c.Name, "type", "veth", "peer", "name", moved, "netns", x.Name)
	pidC := c.Spawn()
	v, _ = vnicsOf(t, r, pidC)
	wantVNICs(t, v)
	x.IP("link", "set", moved, "netns", strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", moved).Run() })
	v, _ = vnicsOf(t, r, pidC)
	wantVNICs(t, v, "pc>"+moved)

	// Move the container: a's namespace is deleted and made again with a new
	// veth that reuses the old host name.
	netnstest.IP(t, "link", "del", renamed)
	a2 := netnstest.NewNetns(t, "cvka")
	a2.Veth(renamed, "eth0")
	pidA2 := a2.Spawn()
	v, _ = vnicsOf(t, r, pidA2)
	wantVNICs(t, v, "eth0>"+renamed)
	v, _ = vnicsOf(t, r, pidA)
	wantVNICs(t, v)
}

// Lost notifications (ENOBUFS) empty the cache: the next call is still
// right, and says the cache was rebuilt.
func TestCacheOverflow(t *testing.T) {
	r := cachedResolver(t, Options{EventBuffer: 1}) // the kernel rounds up to its minimum
	a := netnstest.NewNetns(t, "cvko")
	host := hostName("cvko")
	a.Veth(host, "eth0")
	pid := a.Spawn()
	v, _ := vnicsOf(t, r, pid)
	wantVNICs(t, v, "eth0>"+host)

	// Far more notifications than a minimal buffer holds, then a rename.
	batch := ""
	for i := 0; i < 100; i++ {
		batch += "link set eth0 down\nlink set eth0 up\n"
	}
	batch += "link set eth0 down\nlink set eth0 name net7\n"
	cmd := exec.Command("ip", "-n", a.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	v, snap := vnicsOf(t, r, pid)
	if !snap.Overflow {
		t.Fatalf("no overflow reported after %d events into a minimal buffer", 202)
	}
	wantVNICs(t, v, "net7>"+host)
	// And the socket keeps working afterwards: a later change shows. (Whether
	// the next call reuses the cache depends on the rest of the host staying
	// under a minimal buffer's worth of link events, which a busy host does
	// not: TestCacheStaysExact proves the reuse.)
	a.IP("link", "set", "net7", "name", "net8")
	v, _ = vnicsOf(t, r, pid)
	wantVNICs(t, v, "net8>"+host)
}

func TestNoCacheOption(t *testing.T) {
	netnstest.RequireRoot(t)
	r, err := New(Options{ProcfsPath: "/proc", NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := netnstest.NewNetns(t, "cvkn")
	host := hostName("cvkn")
	a.Veth(host, "eth0")
	pid := a.Spawn()
	for i := 0; i < 2; i++ {
		v, snap := vnicsOf(t, r, pid)
		wantVNICs(t, v, "eth0>"+host)
		if snap.Reused != 0 {
			t.Fatalf("NoCache reused %d namespaces", snap.Reused)
		}
	}
	if r.CacheError() == nil {
		t.Fatal("CacheError is nil with NoCache")
	}
}

// An id or inode reused by a new namespace: the dead namespace's entry
// goes, and forgetting it later never takes the new one's mapping along.
func TestCacheReuse(t *testing.T) {
	var c cache
	c.reset()
	a := c.store(100, 0, nil)
	d := c.store(200, 0, nil) // nsid 0 given to a new namespace
	if c.byInode[100] != nil || c.byNSID[0] != d {
		t.Fatalf("after nsid reuse: byInode %v byNSID %v", c.byInode, c.byNSID)
	}
	c.drop(a) // a late RTM_DELNSID or prune for the dead one
	c.prune(map[uint64]*netnsProcs{200: {Inode: 200}})
	if c.byNSID[0] != d || c.byInode[200] != d {
		t.Fatalf("the new namespace lost its mapping: byInode %v byNSID %v", c.byInode, c.byNSID)
	}
	c.apply(Notification{Type: unix.RTM_NEWLINK, From: 0}, fromHost9)
	if !d.stale {
		t.Fatal("events of the new namespace no longer reach its entry")
	}
	e := c.store(200, 3, nil) // same inode, new id: a new namespace again
	if c.byNSID[0] != nil || c.byNSID[3] != e || c.byInode[200] != e {
		t.Fatalf("after inode reuse: byInode %v byNSID %v", c.byInode, c.byNSID)
	}
}

// When the process naming a namespace exits between the walk and its
// query, the oldest other process the walk saw there answers for it.
func TestOpenAnyFoundSkipsVanished(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvv")
	live := ns.Spawn()
	gone := netnstest.Spawn(t, ns.Path())
	killed := exec.Command("kill", "-9", strconv.Itoa(gone))
	if err := killed.Run(); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 5*time.Second, "the killed process to be reaped", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(gone) + "/ns/net")
		return err != nil
	})
	ino := inodeOfPID(t, live)
	found := &netnsProcs{Inode: ino, PID: min(gone, live) - 1, PIDs: []int{live, gone, min(gone, live) - 1}}
	f, err := r.openAnyFound(found)
	if err != nil {
		t.Fatalf("openAnyFound: %v", err)
	}
	f.Close()
	if found.PID != live {
		t.Fatalf("answered through pid %d, want the live %d", found.PID, live)
	}
	found = &netnsProcs{Inode: ino, PID: gone, PIDs: []int{gone}}
	if _, err := r.openAnyFound(found); CauseOf(err) != CauseVanished {
		t.Fatalf("all PIDs gone: %v, want vanished", err)
	}
}
