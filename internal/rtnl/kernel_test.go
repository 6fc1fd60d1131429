package rtnl

import (
	"context"
	"errors"
	"math"
	"os"
	osexec "os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

func openConn(t *testing.T) *Conn {
	t.Helper()
	netnstest.RequireRoot(t)
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// assignedNSID opens ns (closed when t ends), has the kernel give it an id
// in the socket's namespace, and returns the file and that id.
func assignedNSID(t *testing.T, c *Conn, ns *netnstest.Netns) (*os.File, int) {
	t.Helper()
	f, err := os.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := c.AssignNSID(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	nsid, err := c.NSIDOf(int(f.Fd()))
	if err != nil || nsid == NoNSID {
		t.Fatalf("NSIDOf: %d, %v", nsid, err)
	}
	return f, nsid
}

// Every request the package makes, against the kernel: a namespace with a
// veth to the host, seen from the host by dump, aimed dump, get, id and
// counters.
func TestConnAgainstKernel(t *testing.T) {
	c := openConn(t)
	ns := netnstest.NewNetns(t, "cvrt")
	host := "cvrt" + netnstest.Suffix()
	ns.Veth(host, "eth0")
	hostIndex := netnstest.HostIndex(t, host)

	f, nsid := assignedNSID(t, c, ns)
	// Twice: the second request on the socket must not read the first's reply.
	if again, err := c.NSIDOf(int(f.Fd())); err != nil || again != nsid {
		t.Fatalf("NSIDOf again: %d, %v; want %d", again, err, nsid)
	}

	links, err := c.Links(nsid)
	if err != nil {
		t.Fatal(err)
	}
	var eth0 *Link
	for i, l := range links {
		if l.TargetNSID != nsid {
			t.Fatalf("aimed dump: %+v does not carry the target id %d", l, nsid)
		}
		if l.Name == "eth0" {
			eth0 = &links[i]
		}
	}
	if eth0 == nil || eth0.Kind != "veth" || eth0.PeerIndex != hostIndex || eth0.Stats == nil {
		t.Fatalf("aimed dump: eth0 is %+v, want a veth with counters whose peer is ifindex %d", eth0, hostIndex)
	}

	hostLinks, err := c.Links(NoNSID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range hostLinks {
		if l.Index == hostIndex {
			found = l.Name == host && l.PeerIndex == eth0.Index && l.PeerNSID == nsid
		}
	}
	if !found {
		t.Fatalf("host dump: no %s(%d) pointing at eth0(%d) in namespace %d", host, hostIndex, eth0.Index, nsid)
	}

	var got Link
	ok, err := c.LinkIn(nsid, eth0.Index, &got)
	if err != nil || !ok || got.Name != "eth0" || got.TargetNSID != nsid || got.PeerIndex != hostIndex || got.Stats == nil {
		t.Fatalf("LinkIn(%d, %d) = %+v %v %v; want eth0 with counters, from namespace %d", nsid, eth0.Index, got, ok, err, nsid)
	}
	// An index the namespace does not have (the host end's is the host's).
	if ok, err := c.LinkIn(nsid, eth0.Index+1000, &got); ok || err != nil || got.Name != "" {
		t.Fatalf("LinkIn of an index the namespace lacks = %+v %v %v; want none", got, ok, err)
	}

	// Batched, across more than one write: eth0 again and again, with an
	// index the namespace lacks and an id nothing has in between.
	var refs []LinkRef
	for i := 0; i < 2*linksInBatch+3; i++ {
		switch i % 5 {
		case 1:
			refs = append(refs, LinkRef{NSID: nsid, Index: eth0.Index + 1000})
		case 3:
			refs = append(refs, LinkRef{NSID: 1 << 30, Index: eth0.Index})
		default:
			refs = append(refs, LinkRef{NSID: nsid, Index: eth0.Index})
		}
	}
	out, exists := make([]Link, len(refs)), make([]bool, len(refs))
	if err := c.LinksIn(refs, out, exists); err != nil {
		t.Fatal(err)
	}
	for i, ref := range refs {
		want := ref == LinkRef{NSID: nsid, Index: eth0.Index}
		if exists[i] != want || want && (out[i].Name != "eth0" || out[i].PeerIndex != hostIndex || out[i].Stats == nil) || !want && out[i].Name != "" {
			t.Fatalf("LinksIn %d %+v: found %v, %+v; want found %v", i, ref, exists[i], out[i], want)
		}
	}

	var l Link
	ok, err = c.LinkByIndex(hostIndex, &l)
	if err != nil || !ok || l.Name != host || l.PeerNSID != nsid {
		t.Fatalf("LinkByIndex(%d) = %+v %v %v", hostIndex, l, ok, err)
	}
	netnstest.IP(t, "link", "del", host)
	if ok, err := c.LinkByIndex(hostIndex, &l); ok || err != nil || l.Name != "" {
		t.Fatalf("LinkByIndex of a deleted link = %+v %v %v; want none", l, ok, err)
	}

	stats, err := c.HostStats()
	if err != nil || stats[1] == nil {
		t.Fatalf("HostStats: lo missing from %d links, %v", len(stats), err)
	}
}

// The kernel refuses what it must refuse, and the error says so.
func TestConnErrors(t *testing.T) {
	c := openConn(t)
	tmp, err := os.CreateTemp(t.TempDir(), "notns")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	if _, err := c.NSIDOf(int(tmp.Fd())); err == nil {
		t.Fatal("NSIDOf a regular file: no error")
	}
	if err := c.AssignNSID(int(tmp.Fd())); !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EBADF) {
		t.Fatalf("AssignNSID of a regular file: %v, want EINVAL", err)
	}
	// After the refusals, the socket still answers the next request.
	if _, err := c.Links(NoNSID); err != nil {
		t.Fatal(err)
	}
}

// A Wait with nothing queued returns when its context ends, and a later
// Wait on the same socket still hears a notification.
func TestWaitContext(t *testing.T) {
	netnstest.RequireRoot(t)
	n, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Other tests' links may wake it: drain those and wait again.
		for {
			err := n.Wait(ctx)
			if err != nil {
				done <- err
				return
			}
			_ = n.Drain(func(Notification) {})
		}
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait still blocked 20 s after its context ended")
	}
	if err := n.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on an ended context = %v, want context.Canceled", err)
	}
	host := "cvrw" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", host, "type", "veth", "peer", "name", host+"p")
	t.Cleanup(func() { _ = exec("ip", "link", "del", host) })
	if err := n.Wait(context.Background()); err != nil {
		t.Fatalf("Wait after an interrupted one: %v", err)
	}
}

// A link made after Listen is heard, with its name, from the namespace it
// was made in.
func TestNotifications(t *testing.T) {
	netnstest.RequireRoot(t)
	n, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	host := "cvrn" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", host, "type", "veth", "peer", "name", host+"p")
	t.Cleanup(func() { _ = exec("ip", "link", "del", host) })
	for {
		if err := n.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		heard := false
		err := n.Drain(func(nf Notification) {
			heard = heard || nf.Type == unix.RTM_NEWLINK && nf.Link.Name == host && nf.Link.Kind == "veth"
		})
		if err != nil {
			t.Fatal(err)
		}
		if heard {
			return
		}
	}
}

func exec(name string, args ...string) error { return osexec.Command(name, args...).Run() }

// LinksIn skips answers to requests given up on, across the wrap of the
// sequence numbers; and when answers overflow the receive buffer it fails
// and leaves the socket usable: the next request is answered, not left to
// wait out its timeout.
func TestLinksInRecovers(t *testing.T) {
	c := openConn(t)
	ns := netnstest.NewNetns(t, "cvrl")
	ns.Veth("cvrl"+netnstest.Suffix(), "eth0")
	f, nsid := assignedNSID(t, c, ns)
	eth0 := ns.Index("eth0")
	refs := make([]LinkRef, 2*linksInBatch+3)
	for i := range refs {
		refs[i] = LinkRef{NSID: nsid, Index: eth0}
	}
	out, found := make([]Link, len(refs)), make([]bool, len(refs))

	// A get whose answer nobody read, just before the sequence wraps.
	c.seq = math.MaxUint32 - 3
	c.seq++
	stale := getLink(nil, nsid, eth0)
	stale.seal(c.seq)
	if _, err := unix.Write(c.fd, stale); err != nil {
		t.Fatal(err)
	}
	if err := c.LinksIn(refs, out, found); err != nil {
		t.Fatal(err)
	}
	for i := range refs {
		if !found[i] || out[i].Name != "eth0" {
			t.Fatalf("across the wrap, answer %d: found %v, %+v", i, found[i], out[i])
		}
	}

	// A receive buffer that holds one answer at most.
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.LinksIn(refs, out, found); !errors.Is(err, unix.ENOBUFS) {
		t.Fatalf("LinksIn with answers overflowing the buffer: %v, want ENOBUFS", err)
	}
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20); err != nil {
		t.Fatal(err)
	}
	requestTimeout := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &requestTimeout); err != nil {
		t.Fatal(err)
	}
	if again, err := c.NSIDOf(int(f.Fd())); err != nil || again != nsid {
		t.Fatalf("NSIDOf after the overflow: %d, %v; want %d", again, err, nsid)
	}
}
