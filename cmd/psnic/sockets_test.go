package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// netlinkSocket is one netlink socket of a process, from /proc/net/netlink.
type netlinkSocket struct {
	Protocol int    // NETLINK_ROUTE 0, NETLINK_CONNECTOR 11
	Groups   uint32 // the first 32 multicast groups it joined
}

// netlinkSockets returns pid's netlink sockets by inode: its fds that are
// "socket:[INODE]", matched with /proc/net/netlink (of the test's network
// namespace, which is the watch's).
func netlinkSockets(t *testing.T, pid int) map[uint64]netlinkSocket {
	t.Helper()
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	held := map[uint64]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil {
			continue // closed since the glob
		}
		if s, ok := strings.CutPrefix(target, "socket:["); ok {
			ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
			if err != nil {
				t.Fatalf("%s -> %q", fd, target)
			}
			held[ino] = true
		}
	}
	f, err := os.Open("/proc/net/netlink")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[uint64]netlinkSocket{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			t.Fatalf("/proc/net/netlink line %q", sc.Text())
		}
		ino, err1 := strconv.ParseUint(fields[9], 10, 64)
		proto, err2 := strconv.Atoi(fields[1])
		groups, err3 := strconv.ParseUint(fields[3], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("/proc/net/netlink line %q", sc.Text())
		}
		if held[ino] {
			out[ino] = netlinkSocket{Protocol: proto, Groups: uint32(groups)}
		}
	}
	return out
}

// A running watch holds one NETLINK_ROUTE notification socket (link and
// namespace-id groups), shared by the change stream and the resolver's
// cache; one NETLINK_ROUTE request socket, kept for every dump, id and get
// (no short-lived ones: the set is the same after changes and resyncs);
// and one process events connector socket.
func TestWatchNetlinkSockets(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvn" + netnstest.Suffix()[:4]
	w := startWatch(t, prefix, "--resync-interval", "200ms")
	const (
		route     = 0  // NETLINK_ROUTE
		connector = 11 // NETLINK_CONNECTOR
		// RTNLGRP_LINK (1) and RTNLGRP_NSID (28): group g is bit g-1.
		linkAndNSID = 1<<(unix.RTNLGRP_LINK-1) | 1<<(unix.RTNLGRP_NSID-1)
	)
	check := func(when string) map[uint64]netlinkSocket {
		t.Helper()
		socks := netlinkSockets(t, w.cmd.Process.Pid)
		var notify, request, procs int
		for ino, s := range socks {
			switch {
			case s.Protocol == route && s.Groups == linkAndNSID:
				notify++
			case s.Protocol == route && s.Groups == 0:
				request++
			case s.Protocol == connector:
				procs++
			default:
				t.Errorf("%s: unexpected netlink socket %d: %+v", when, ino, s)
			}
		}
		if notify != 1 || request != 1 || procs != 1 {
			t.Fatalf("%s: %d NETLINK_ROUTE notification, %d NETLINK_ROUTE request and %d connector sockets (%v); want one of each",
				when, notify, request, procs, socks)
		}
		return socks
	}
	first := check("after the snapshot")

	// A change (an aimed query) and resyncs (full walks and dumps) later,
	// the very same sockets.
	ns := netnstest.NewNetns(t, "cvna")
	pid := ns.Spawn()
	ns.Veth(prefix+"a", "eth0")
	w.expect(t, "added", "eth0", prefix+"a", pid)
	netnstest.IP(t, "link", "del", prefix+"a")
	w.expect(t, "removed", "eth0", prefix+"a", pid)
	if later := check("after a change and resyncs"); !reflect.DeepEqual(later, first) {
		t.Fatalf("sockets changed: %v, then %v", first, later)
	}
}
