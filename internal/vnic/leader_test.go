package vnic

import (
	"os"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// A process whose main thread has exited while others run on has no
// ns/net of its own and is a zombie by its state, yet it lives on in its
// threads' namespace: ResolvePID finds it there (and says through which
// thread), ResolveAll names it by the thread.
func TestLeaderExited(t *testing.T) {
	r := newResolver(t)
	ns := netnstest.NewNetns(t, "cvlx")
	host := hostName("cvlx")
	ns.Veth(host, "eth0")
	pid := netnstest.SpawnLeaderExited(t, ns.Path())
	if _, err := os.Readlink("/proc/" + itoa(pid) + "/ns/net"); err == nil {
		t.Fatal("the process still has an ns/net of its own: the test shows nothing")
	}
	want := VNIC{ContainerIfname: "eth0", ContainerIfindex: ns.Index("eth0"),
		HostIfname: host, HostIfindex: netnstest.HostIndex(t, host), Kind: "veth"}

	got, err := r.ResolvePID(pid)
	if err != nil {
		t.Fatalf("ResolvePID: %v", err)
	}
	if v := pairing(got.VNICs); len(v) != 1 || v[0] != want {
		t.Fatalf("ResolvePID: %+v, want %+v", got.VNICs, want)
	}
	ino := got.Inode
	if got.PID != pid || !netnstest.ThreadOf(got.Thread, pid) {
		t.Fatalf("ResolvePID: PID %d, Thread %d; want %d and a thread of it", got.PID, got.Thread, pid)
	}
	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range snap.Namespaces {
		if n.Inode == ino {
			// Named by the thread: nsenter -t and psnic accept it.
			if v := pairing(n.VNICs); !netnstest.ThreadOf(n.PID, pid) || len(v) != 1 || v[0] != want {
				t.Fatalf("ResolveAll: %+v, want a thread of %d and %+v", n, pid, want)
			}
			return
		}
	}
	t.Fatalf("ResolveAll: namespace %d missing (%d namespaces, skipped %v)", ino, len(snap.Namespaces), snap.Walk.Skipped)
}
