// Command gofloor does the work of `psnic PID` for a veth and nothing else,
// with the syscall package only: no os, no fmt, no time, no flags, no
// error messages worth the name. It is a yardstick, not a tool. What it
// costs above bench/gonothing is the least any Go program doing psnic's
// job pays on this host, so psnic's start-up target can be read against
// it (bench/run.sh, section commands; docs/psnic.md, "Start-up").
//
//	gofloor PID
//
// It opens /proc/PID/ns/net and makes the same four netlink requests as
// psnic (the id the host gives that namespace; a link dump aimed at it;
// the id the host gives itself; a get of each host end by index), checks
// each pair both ways with its namespace id as psnic does, and prints the
// host ends' names, one to a line. It exits 1, printing a bare reason, on
// anything unexpected (no namespace id, a netlink error, no veth).
package main

import (
	"syscall"
	"unsafe"
)

const (
	rtmNewLink  = 16
	rtmGetLink  = 18
	rtmNewNSID  = 88
	rtmGetNSID  = 90
	nlmsgError  = 2
	nlmsgDone   = 3
	nlmFRequest = 1
	nlmFDump    = 0x300
	nlmFIntr    = 0x10

	hdrLen     = 16 // struct nlmsghdr
	ifinfoLen  = 16 // struct ifinfomsg
	rtgenLen   = 4  // struct rtgenmsg, aligned
	netnsaNSID = 1
	netnsaFD   = 3

	iflaIfname      = 3
	iflaLink        = 5
	iflaLinkinfo    = 18
	iflaInfoKind    = 1
	iflaLinkNetnsid = 37
	iflaTargetNSID  = 46
	noNSID          = -1
)

// link is what a link message says that matters here, copied out of the
// reply buffer, which the next exchange overwrites.
type link struct {
	index, peerIndex, peerNSID int
	veth                       bool
	name                       [16]byte // IFNAMSIZ
	nameLen                    int
}

var (
	buf   [1 << 16]byte // replies
	req   [64]byte      // one request
	links [64]link      // the container's, not on the stack: a deeper stack is a copy and page faults
	seq   uint32
	sock  int
)

func main() {
	pid := arg1()
	fd, err := syscall.Open("/proc/"+pid+"/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	check(err, "open ns/net")
	self, err := syscall.Open("/proc/self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	check(err, "open self ns/net")
	var st, hst syscall.Stat_t
	check(syscall.Fstat(fd, &st), "fstat")
	check(syscall.Fstat(self, &hst), "fstat")
	if st.Ino == hst.Ino {
		die("host network namespace")
	}
	sock, err = syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	check(err, "socket")
	check(syscall.Bind(sock, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}), "bind")

	nsid := nsidOf(fd)
	if nsid == noNSID {
		die("namespace has no id")
	}
	n := dumpLinks(nsid, links[:])
	selfID := nsidOf(self)
	found := false
	for i := range links[:n] {
		c := &links[i]
		if !c.veth || c.peerNSID == noNSID || c.peerNSID != selfID || c.peerIndex <= 0 {
			continue
		}
		var h link
		if !getLink(c.peerIndex, &h) {
			continue
		}
		if !h.veth || h.peerIndex != c.index || h.peerNSID != nsid {
			continue
		}
		h.name[h.nameLen] = '\n'
		_, _ = syscall.Write(1, h.name[:h.nameLen+1])
		found = true
	}
	if !found {
		die("no veth")
	}
}

// arg1 returns the first argument, read from /proc/self/cmdline: without
// os there is no os.Args.
func arg1() string {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	check(err, "open cmdline")
	n, err := syscall.Read(fd, buf[:])
	check(err, "read cmdline")
	_ = syscall.Close(fd)
	b := buf[:n]
	for i, c := range b {
		if c == 0 {
			b = b[i+1:]
			break
		}
	}
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	die("usage: gofloor PID")
	return ""
}

func nsidOf(fd int) int {
	r := request(rtmGetNSID, 0, rtgenLen)
	r = attrU32(r, netnsaFD, uint32(fd))
	nsid := noNSID
	exchange(r, func(typ uint16, m []byte) {
		if typ != rtmNewNSID || len(m) < rtgenLen {
			die("RTM_GETNSID: bad reply")
		}
		attrs(m[rtgenLen:], func(t uint16, v []byte) {
			if t == netnsaNSID && len(v) >= 4 {
				nsid = int(int32(u32(v)))
			}
		})
	})
	return nsid
}

func dumpLinks(nsid int, ls []link) int {
	r := request(rtmGetLink, nlmFDump, ifinfoLen)
	r = attrU32(r, iflaTargetNSID, uint32(nsid))
	n := 0
	exchange(r, func(typ uint16, m []byte) {
		if typ == rtmNewLink {
			if n == len(ls) {
				die("more links than the yardstick holds")
			}
			parseLink(m, &ls[n])
			n++
		}
	})
	return n
}

func getLink(index int, l *link) bool {
	r := request(rtmGetLink, 0, ifinfoLen)
	put32(r[hdrLen+4:], uint32(int32(index)))
	ok := false
	exchange(r, func(typ uint16, m []byte) {
		if typ == rtmNewLink {
			parseLink(m, l)
			ok = true
		}
	})
	return ok
}

func parseLink(m []byte, l *link) {
	if len(m) < ifinfoLen {
		die("short link message")
	}
	*l = link{index: int(int32(u32(m[4:]))), peerNSID: noNSID}
	attrs(m[ifinfoLen:], func(t uint16, v []byte) {
		switch t {
		case iflaIfname:
			l.nameLen = copy(l.name[:len(l.name)-1], cstr(v))
		case iflaLink:
			l.peerIndex = int(int32(u32(v)))
		case iflaLinkNetnsid:
			l.peerNSID = int(int32(u32(v)))
		case iflaLinkinfo:
			attrs(v, func(t uint16, v []byte) {
				if t == iflaInfoKind {
					l.veth = string(cstr(v)) == "veth"
				}
			})
		}
	})
}

// exchange sends r and hands each reply message to f until the answer
// ends: after one message, or at NLMSG_DONE for a dump.
func exchange(r []byte, f func(typ uint16, m []byte)) {
	seq++
	put32(r[0:], uint32(len(r)))
	put32(r[8:], seq)
	dump := u16(r[6:])&nlmFDump == nlmFDump
	check(syscall.Sendto(sock, r, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}), "send")
	for {
		n, _, err := syscall.Recvfrom(sock, buf[:], 0)
		check(err, "recv")
		for b := buf[:n]; len(b) >= hdrLen; {
			l := int(u32(b))
			if l < hdrLen || l > len(b) {
				die("bad netlink message")
			}
			typ, flags, s := u16(b[4:]), u16(b[6:]), u32(b[8:])
			m := b[hdrLen:l]
			b = b[(l+3)&^3:]
			if s != seq {
				continue
			}
			if flags&nlmFIntr != 0 {
				die("dump interrupted")
			}
			switch typ {
			case nlmsgError:
				if len(m) >= 4 && u32(m) != 0 {
					if int32(u32(m)) == -int32(syscall.ENODEV) && !dump {
						return // no such link: f is not called
					}
					die("netlink error")
				}
				return
			case nlmsgDone:
				return
			}
			f(typ, m)
			if !dump {
				return
			}
		}
	}
}

func request(typ, flags uint16, body int) []byte {
	r := req[:hdrLen+body]
	clear(r)
	put16(r[4:], typ)
	put16(r[6:], nlmFRequest|flags)
	return r
}

func attrU32(r []byte, typ uint16, v uint32) []byte {
	n := len(r)
	r = r[:n+8]
	put16(r[n:], 8)
	put16(r[n+2:], typ)
	put32(r[n+4:], v)
	return r
}

func attrs(b []byte, f func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(u16(b))
		if l < 4 || l > len(b) {
			return
		}
		f(u16(b[2:])&0x3fff, b[4:l])
		b = b[min((l+3)&^3, len(b)):]
	}
}

func cstr(v []byte) []byte {
	for i, c := range v {
		if c == 0 {
			return v[:i]
		}
	}
	return v
}

// Netlink is in the host's byte order.
func u16(b []byte) uint16      { _ = b[1]; return *(*uint16)(unsafe.Pointer(&b[0])) }
func u32(b []byte) uint32      { _ = b[3]; return *(*uint32)(unsafe.Pointer(&b[0])) }
func put16(b []byte, v uint16) { _ = b[1]; *(*uint16)(unsafe.Pointer(&b[0])) = v }
func put32(b []byte, v uint32) { _ = b[3]; *(*uint32)(unsafe.Pointer(&b[0])) = v }

func check(err error, what string) {
	if err != nil {
		die(what + ": " + err.Error())
	}
}

func die(msg string) {
	_, _ = syscall.Write(2, []byte("gofloor: "+msg+"\n"))
	syscall.Exit(1)
}
