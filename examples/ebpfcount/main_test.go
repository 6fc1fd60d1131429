package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

// etherType is IEEE's local experimental EtherType: no stack acts on it.
const etherType = 0x88b5

// frameLen is the length of the test frames, Ethernet header included, as
// the program sees it in both directions.
const frameLen = 114

// A container's traffic is counted on its veth, both ways; when it moves to
// another veth the first one's counts come out at detach, and its total
// goes on.
func TestCountsFollowAMovingContainer(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cve" + netnstest.Suffix()[:4]
	ns := netnstest.NewNetns(t, "cvea")
	ns.Spawn()

	pr, pw := io.Pipe()
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, pw, "/proc", vnicwatch.Filter{Kinds: []string{"veth"}, HostIfnames: []string{prefix + "*"}}, 0)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	expect := func(pattern string) []string {
		t.Helper()
		re := regexp.MustCompile(pattern)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("ebpfcount ended before %q", pattern)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					t.Log(l)
					return m
				}
				t.Fatalf("got %q, want %q", l, pattern)
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q within 10 s", pattern)
			}
		}
	}
	counts := `ingress=(\d+)/(\d+) egress=(\d+)/(\d+)`
	check := func(m []string, frames int) {
		t.Helper()
		for dir, i := range []int{1, 3} {
			pkts, _ := strconv.Atoi(m[i])
			bytes, _ := strconv.Atoi(m[i+1])
			// The frames sent, and a few the kernel sends itself on a new
			// link (IPv6 neighbour discovery), not more.
			if pkts < frames || pkts > frames+50 || bytes < frames*frameLen {
				t.Errorf("direction %d: %d packets, %d bytes; want %d frames of %d bytes (and little else)", dir, pkts, bytes, frames, frameLen)
			}
		}
	}

	v1, v2 := prefix+"1", prefix+"2"
	ns.Veth(v1, "eth0")
	expect(`^attached ` + v1 + ` ifindex=\d+ netns=\d+ container_ifname=eth0$`)
	send(t, ns.Path(), "eth0", 7)
	send(t, "", v1, 7)

	// The container moves to another veth.
	ns.Veth(v2, "eth1")
	expect(`^attached ` + v2 + ` `)
	netnstest.IP(t, "link", "del", v1)
	check(expect(`^detached `+v1+` `+counts+`$`), 7)
	expect(`^container netns:\d+ ` + counts + ` vnics=2$`)
	send(t, ns.Path(), "eth1", 5)
	send(t, "", v2, 5)

	cancel()
	check(expect(`^detached `+v2+` `+counts+`$`), 5)
	check(expect(`^container netns:\d+ `+counts+` vnics=2$`), 12)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
}

// send transmits n broadcast frames of frameLen bytes on ifname, in the
// namespace at nsPath (the host's when empty), from a packet socket.
func send(t *testing.T, nsPath, ifname string, n int) {
	t.Helper()
	errc := make(chan error, 1)
	// A thread of its own: it enters the namespace, and is thrown away
	// unless it could come back.
	go func() {
		runtime.LockOSThread()
		if nsPath != "" {
			back, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				errc <- err
				return
			}
			defer back.Close()
			target, err := os.Open(nsPath)
			if err != nil {
				errc <- err
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				errc <- err
				return
			}
			defer func() {
				if unix.Setns(int(back.Fd()), unix.CLONE_NEWNET) == nil {
					runtime.UnlockOSThread()
				}
			}()
		} else {
			defer runtime.UnlockOSThread()
		}
		errc <- sendFrames(ifname, n)
	}()
	if err := <-errc; err != nil {
		t.Fatalf("sending on %s: %v", ifname, err)
	}
}

func sendFrames(ifname string, n int) error {
	proto := int(htons(etherType))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	index, err := ifindexOf(ifname)
	if err != nil {
		return err
	}
	frame := make([]byte, frameLen)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, etherType >> 8, etherType & 0xff})
	to := &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for i := 0; i < n; i++ {
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			return err
		}
	}
	return nil
}

// ifindexOf reads the index from sysfs... which shows the mounting
// namespace's links, so ask the kernel through an ioctl on a socket of the
// current namespace instead.
func ifindexOf(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("SIOCGIFINDEX %s: %w", ifname, err)
	}
	return int(ifr.Uint32()), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
