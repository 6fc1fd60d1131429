package vnic

import (
	"os/exec"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// quietNetns is a namespace without IPv6, whose links therefore send
// nothing on their own (no router solicitations, no DAD, no MLD): their
// counters move only with the traffic a test makes.
func quietNetns(t *testing.T, prefix string) *netnstest.Netns {
	t.Helper()
	ns := netnstest.NewNetns(t, prefix)
	run(t, "ip", "netns", "exec", ns.Name, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return ns
}

// quietVeth is netnstest's Veth with IPv6 off on the host end before it
// comes up.
func quietVeth(t *testing.T, ns *netnstest.Netns, host, peer string) {
	t.Helper()
	netnstest.IP(t, "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	run(t, "sysctl", "-qw", "net.ipv6.conf."+host+".disable_ipv6=1")
	netnstest.IP(t, "link", "set", host, "up")
	ns.IP("link", "set", peer, "up")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// quietPair is two quiet namespaces, a and b, each with an eth0 paired
// with a host veth and one process, seen through a procfs that holds only
// those two processes, and a cached resolver with counters over it.
type quietPair struct {
	a, b         *netnstest.Netns
	hostA, hostB string
	inoA, inoB   uint64
	procfs       string
	r            *Resolver
}

// newQuietPair makes a quietPair whose names start with prefix.
func newQuietPair(t *testing.T, prefix string) quietPair {
	t.Helper()
	netnstest.RequireRoot(t)
	p := quietPair{a: quietNetns(t, prefix+"a"), b: quietNetns(t, prefix+"b"),
		hostA: hostName(prefix + "a"), hostB: hostName(prefix + "b")}
	quietVeth(t, p.a, p.hostA, "eth0")
	quietVeth(t, p.b, p.hostB, "eth0")
	pidA, pidB := p.a.Spawn(), p.b.Spawn()
	p.procfs = netnstest.LinkedProcfs(t, pidA, pidB)
	p.inoA, p.inoB = inodeOfPID(t, pidA), inodeOfPID(t, pidB)
	p.r = cachedResolver(t, Options{ProcfsPath: p.procfs, Counters: true})
	return p
}

// The cached counter path (aimed gets at known ids, host counters from
// RTM_GETSTATS over cached host links) gives the same vNICs, indexes and
// counters as a fresh full dump, after traffic and after links are added,
// moved between namespaces, renamed on either side and removed. The
// namespaces' links send nothing by themselves, so the counters are exact.
func TestCachedCountersEqualFreshDump(t *testing.T) {
	q := newQuietPair(t, "cvq")
	a, b, hostA, hostB, inoA, inoB, procfs, cached := q.a, q.b, q.hostA, q.hostB, q.inoA, q.inoB, q.procfs, q.r
	hostA2 := hostName("cvqc")

	// compare resolves with the cached resolver and with a new, uncached
	// one, and wants the same answer for both namespaces.
	compare := func(step string) Snapshot {
		t.Helper()
		snap, err := cached.ResolveAll()
		if err != nil {
			t.Fatalf("%s: cached: %v", step, err)
		}
		fresh, err := New(Options{ProcfsPath: procfs, Counters: true, NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		want, err := fresh.ResolveAll()
		if err != nil {
			t.Fatalf("%s: fresh: %v", step, err)
		}
		got, exp := namespacesByInode(snap), namespacesByInode(want)
		for _, ino := range []uint64{inoA, inoB} {
			if !reflect.DeepEqual(got[ino], exp[ino]) {
				t.Fatalf("%s: namespace %d: cached path gives %s, a fresh dump %s", step, ino, describe(got[ino]), describe(exp[ino]))
			}
		}
		return snap
	}
	vnicOf := func(snap Snapshot, ino uint64, ifname string) VNIC {
		t.Helper()
		for _, v := range namespacesByInode(snap)[ino].VNICs {
			if v.ContainerIfname == ifname {
				return v
			}
		}
		t.Fatalf("no %s in namespace %d: %s", ifname, ino, describe(namespacesByInode(snap)[ino]))
		return VNIC{}
	}

	compare("first call")
	// Traffic: three UDP datagrams out of a's eth0 to a neighbour that
	// does not exist (a static entry: no ARP, nothing trails after them).
	a.IP("addr", "add", "169.254.77.1/30", "dev", "eth0")
	a.IP("neigh", "add", "169.254.77.2", "lladdr", "02:00:00:00:00:01", "dev", "eth0", "nud", "permanent")
	run(t, "ip", "netns", "exec", a.Name, "bash", "-c", "for i in 1 2 3; do echo x >/dev/udp/169.254.77.2/9; done")
	snap := compare("after traffic")
	if snap.Refreshed == 0 {
		t.Fatalf("after traffic: no namespace took the cached path (refreshed 0): %+v", snap)
	}
	// Unchanged, both namespaces are refreshed by the batch of gets, not
	// by the dump each falls back to.
	found, _, err := walk(procfs, cached.hostIno, cached.canPtrace)
	if err != nil {
		t.Fatal(err)
	}
	if fresh := cached.refreshAll(cached.startRefresh(), found); !fresh[inoA] || !fresh[inoB] {
		t.Fatalf("after traffic: the batched gets refreshed %v, want %d and %d", fresh, inoA, inoB)
	}
	if v := vnicOf(snap, inoA, "eth0"); v.ContainerStats == nil || v.ContainerStats.TxPackets < 3 || v.HostStats == nil || v.HostStats.RxPackets < 3 {
		t.Fatalf("after three datagrams: eth0 counters %+v, host end %+v", v.ContainerStats, v.HostStats)
	}

	quietVeth(t, a, hostA2, "eth1")
	compare("after adding eth1 to a")

	a.IP("link", "set", "eth1", "netns", b.Name)
	b.IP("link", "set", "eth1", "up")
	snap = compare("after moving eth1 from a to b")
	vnicOf(snap, inoB, "eth1")

	b.IP("link", "set", "eth1", "down")
	b.IP("link", "set", "eth1", "name", "net1")
	b.IP("link", "set", "net1", "up")
	renamed := hostName("cvqr")
	netnstest.IP(t, "link", "set", hostA, "down")
	netnstest.IP(t, "link", "set", hostA, "name", renamed)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", renamed).Run() })
	netnstest.IP(t, "link", "set", renamed, "up")
	snap = compare("after renaming eth1 in b and a's host end")
	if v := vnicOf(snap, inoA, "eth0"); v.HostIfname != renamed {
		t.Fatalf("a's eth0 pairs with %s, want %s", v.HostIfname, renamed)
	}
	vnicOf(snap, inoB, "net1")

	netnstest.IP(t, "link", "del", hostB)
	snap = compare("after removing b's eth0")
	for _, v := range namespacesByInode(snap)[inoB].VNICs {
		if v.ContainerIfname == "eth0" {
			t.Fatalf("b's eth0 still listed after its removal: %+v", v)
		}
	}
}

// describe prints a namespace's vNICs with their counters.
func describe(ns Netns) string {
	s := ""
	for _, v := range ns.VNICs {
		s += v.ContainerIfname + "(" + itoa(v.ContainerIfindex) + ")>" + v.HostIfname + "(" + itoa(v.HostIfindex) + ")"
		if v.ContainerStats != nil && v.HostStats != nil {
			s += " tx " + itoa(int(v.ContainerStats.TxPackets)) + "/" + itoa(int(v.ContainerStats.TxBytes)) +
				" rx " + itoa(int(v.ContainerStats.RxPackets)) + "/" + itoa(int(v.ContainerStats.RxBytes)) +
				" host rx " + itoa(int(v.HostStats.RxPackets)) + " tx " + itoa(int(v.HostStats.TxPackets))
		}
		s += "; "
	}
	return "[" + s + "]"
}

// The gets sent before the walk count only for namespaces no notification
// changed meanwhile: a link added to b after b's answers arrived leaves b
// out of the batch (it is dumped whole), and the next call lists the link.
func TestRefreshSkipsChangedMeanwhile(t *testing.T) {
	q := newQuietPair(t, "cvp")
	b, hostB, inoA, inoB, procfs, r := q.b, q.hostB, q.inoA, q.inoB, q.procfs, q.r
	hostB2 := hostName("cvpc")
	if _, err := r.ResolveAll(); err != nil {
		t.Fatal(err)
	}
	entryB := r.cache.byInode[inoB]
	if entryB == nil || entryB.stale {
		t.Fatalf("b not cached, or stale: %+v", entryB)
	}

	p := r.startRefresh()
	p.wait() // b's eth0 answered, before the change
	quietVeth(t, b, hostB2, "eth1")
	netnstest.Eventually(t, 10*time.Second, "b's link notification", func() bool {
		if err := r.drainInto(nil); err != nil {
			t.Fatal(err)
		}
		return entryB.stale
	})
	found, _, err := walk(procfs, r.hostIno, r.canPtrace)
	if err != nil {
		t.Fatal(err)
	}
	fresh := r.refreshAll(p, found)
	if !fresh[inoA] || fresh[inoB] {
		t.Fatalf("refreshed %v: want a (%d) and not b (%d)", fresh, inoA, inoB)
	}

	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range namespacesByInode(snap)[inoB].VNICs {
		names = append(names, v.ContainerIfname+">"+v.HostIfname)
	}
	if want := []string{"eth0>" + hostB, "eth1>" + hostB2}; !slices.Equal(names, want) {
		t.Fatalf("b after the change: %v, want %v", names, want)
	}
}
