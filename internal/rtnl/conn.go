// Package rtnl is the project's one rtnetlink layer (NETLINK_ROUTE, spoken
// over raw sockets): link dumps of the host or of another namespace aimed
// at its id (IFLA_TARGET_NETNSID), aimed gets, namespace ids, counters, and
// link and namespace-id notifications; with one message walker (Messages),
// one receive-and-drain loop (Drain, also used for the process events
// connector), one error for an interrupted dump and one retry policy for it.
//
// It speaks the few messages it needs itself, into one reused buffer per
// socket: measured against github.com/vishvananda/netlink and
// github.com/mdlayher/netlink at 1,000 namespaces (docs/how-it-works.md,
// "Dependencies"), both of which allocate per message and per receive.
package rtnl

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DumpBudget bounds how long a dump the kernel keeps marking interrupted
// (NLM_F_DUMP_INTR: the table changed while it was being read) is
// repeated. A busy node churns host links all day: when the budget runs
// out, the dump fails with ErrDumpInterrupted and the caller falls back
// (the resolver asks link by link).
var DumpBudget = 2 * time.Second

// ErrDumpInterrupted is a dump the kernel marked NLM_F_DUMP_INTR for the
// whole DumpBudget.
var ErrDumpInterrupted = errors.New("netlink dump interrupted (NLM_F_DUMP_INTR): the table kept changing while it was read")

// requestTimeout bounds every receive: a kernel that never answers must
// not hang a scrape forever.
var requestTimeout = unix.Timeval{Sec: 10}

// Conn is one NETLINK_ROUTE request socket in the caller's namespace,
// reused for every request (opening a socket per request costs more than
// most requests), with one receive buffer. It is safe for concurrent use:
// requests take turns.
type Conn struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
	req request
}

// Open opens a request socket.
func Open() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &requestTimeout); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding rtnetlink socket: %w", err)
	}
	// A dump reply datagram is at most 32 KiB (the kernel's cap on one
	// dump skb); 64 KiB leaves room.
	return &Conn{fd: fd, buf: make([]byte, 64<<10)}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// exchange sends the request build encodes into c.req and reads the reply,
// calling f with the payload of each message of type want (0: an
// acknowledgement only). A dump ends at NLMSG_DONE, any other request at
// its first message of type want or at its acknowledgement. It returns
// errInterrupted after a complete dump the kernel marked NLM_F_DUMP_INTR.
// Messages of other sequence numbers (a reply to an earlier request that
// timed out or failed half way) are skipped.
func (c *Conn) exchange(build func(request) request, want uint16, f func([]byte) error) error {
	c.seq++
	c.req = build(c.req)
	c.req.seal(c.seq)
	dump := c.req.flags()&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	// write and read, not sendto and recvfrom: an unconnected netlink
	// socket sends to the kernel, and they allocate no socket address on
	// every call.
	if _, err := unix.Write(c.fd, c.req); err != nil {
		return err
	}
	interrupted, done := false, false
	for !done {
		n, err := unix.Read(c.fd, c.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		var intr bool
		done, intr, err = readReply(c.buf[:n], c.seq, want, dump, f)
		if err != nil {
			return err
		}
		interrupted = interrupted || intr
	}
	if interrupted {
		return errInterrupted
	}
	return nil
}

// readReply walks one datagram of the reply to request seq, calling f
// with each payload of type want. It reports whether the reply is complete
// (NLMSG_DONE or the acknowledgement; for a request that is not a dump, its
// first message of type want) and whether the kernel flagged a message
// NLM_F_DUMP_INTR (the table changed while it was read). Messages of other
// sequence numbers are skipped.
func readReply(b []byte, seq uint32, want uint16, dump bool, f func([]byte) error) (done, interrupted bool, err error) {
	// A loop over nextMessage, not Messages and a callback: this walk is
	// the deepest stack `psnic PID` has, which must stay within the
	// goroutine's first (see parseLink).
	for len(b) > 0 && !done {
		var m Message
		if m, b, err = nextMessage(b); err != nil || m.Data == nil {
			return done, interrupted, err
		}
		if m.Seq != seq {
			continue
		}
		interrupted = interrupted || m.Flags&unix.NLM_F_DUMP_INTR != 0
		switch m.Type {
		case unix.NLMSG_DONE, unix.NLMSG_ERROR:
			done = true
			if len(m.Data) < 4 {
				if m.Type == unix.NLMSG_DONE {
					return done, interrupted, nil
				}
				return done, interrupted, errors.New("netlink: short error message")
			}
			if errno := -int32(ne.Uint32(m.Data)); errno > 0 {
				return done, interrupted, fmt.Errorf("netlink: %w", unix.Errno(errno))
			}
		case want:
			done = !dump
			if err := f(m.Data); err != nil {
				return done, interrupted, err
			}
		}
	}
	return done, interrupted, nil
}

var errInterrupted = errors.New("interrupted")

// dump runs a dump, calling start before each attempt (to drop what an
// interrupted one gathered), and repeats it while the kernel marks it
// interrupted, for at most DumpBudget: the one retry policy.
func (c *Conn) dump(start func(), build func(request) request, want uint16, f func([]byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline := time.Now().Add(DumpBudget)
	for {
		start()
		err := c.exchange(build, want, f)
		if !errors.Is(err, errInterrupted) {
			return err
		}
		if time.Now().After(deadline) {
			return ErrDumpInterrupted
		}
	}
}

// do runs a request that is not a dump.
func (c *Conn) do(build func(request) request, want uint16, f func([]byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exchange(build, want, f)
}

// Links dumps the links of the namespace with id nsid as this socket's
// namespace numbers it, or of the socket's own namespace when nsid is
// NoNSID. Peer namespace ids in the reply are, in both cases, as the
// socket's namespace numbers them. A dump aimed elsewhere that the kernel
// answered with links not carrying nsid back is ErrTargetIgnored.
func (c *Conn) Links(nsid int) ([]Link, error) {
	var ls []Link
	err := c.dump(func() { ls = ls[:0] }, func(b request) request {
		r := newRequest(b, unix.RTM_GETLINK, unix.NLM_F_DUMP, unix.SizeofIfInfomsg)
		if nsid != NoNSID {
			r = r.u32(unix.IFLA_TARGET_NETNSID, uint32(nsid))
		}
		return r
	}, unix.RTM_NEWLINK, func(m []byte) error {
		ls = append(ls, Link{})
		if err := parseLink(m, &ls[len(ls)-1]); err != nil {
			ls = ls[:len(ls)-1]
			return err
		}
		return nil
	})
	if errors.Is(err, ErrDumpInterrupted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("RTM_GETLINK dump: %w", err)
	}
	return ls, CheckTarget(ls, nsid)
}

// LinkByIndex reads the link with ifindex index of the socket's own
// namespace into *l; ok is false when there is none (and *l is then the
// zero Link). The link is written in place, not returned: it is asked for
// at the deepest point of a resolution (see parseLink).
func (c *Conn) LinkByIndex(index int, l *Link) (ok bool, err error) {
	return c.LinkIn(NoNSID, index, l)
}

// LinkIn is LinkByIndex in the namespace with id nsid as this socket's
// namespace numbers it (IFLA_TARGET_NETNSID), or in the socket's own
// namespace when nsid is NoNSID: one message, where a dump of that
// namespace also sends its lo and a closing NLMSG_DONE. A reply that does
// not carry nsid back is ErrTargetIgnored.
func (c *Conn) LinkIn(nsid, index int, l *Link) (ok bool, err error) {
	err = c.do(func(b request) request {
		return getLink(b, nsid, index)
	}, unix.RTM_NEWLINK, func(m []byte) error {
		err := parseLink(m, l)
		ok = err == nil
		return err
	})
	if err == nil && ok && l.TargetNSID != nsid {
		err = fmt.Errorf("link ifindex %d aimed at namespace id %d: %w", index, nsid, ErrTargetIgnored)
	}
	if err != nil || !ok {
		*l = Link{}
	}
	if errors.Is(err, unix.ENODEV) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("RTM_GETLINK ifindex %d: %w", index, err)
	}
	return ok, nil
}

// getLink starts, into b's storage, an RTM_GETLINK get of the link with
// ifindex index in the namespace with id nsid, or in the socket's own
// namespace when nsid is NoNSID.
func getLink(b request, nsid, index int) request {
	r := newRequest(b, unix.RTM_GETLINK, 0, unix.SizeofIfInfomsg)
	ne.PutUint32(r.body()[4:], uint32(int32(index)))
	if nsid != NoNSID {
		r = r.u32(unix.IFLA_TARGET_NETNSID, uint32(nsid))
	}
	return r
}

// LinkRef names one link of another namespace: the id the socket's
// namespace gives that namespace, and the link's ifindex in it.
type LinkRef struct{ NSID, Index int }

// linksInBatch is how many gets LinksIn writes at once. Their answers wait
// in the socket's receive buffer until read, and the kernel drops what
// does not fit: sixteen link messages of 1.5 KB, in buffers of up to 4 KB
// each, fill about a third of the default 208 KiB.
const linksInBatch = 16

// LinksIn asks for many links of other namespaces at once: found[i]
// reports whether the kernel answered refs[i] with that link, and out[i]
// is the link (the zero Link when not). The gets are written linksInBatch
// to a write and their answers matched by sequence number: one write where
// LinkIn makes one per link, which at 1,000 namespaces takes a tenth off
// (and a dump aimed at each namespace costs 1.7 times as much;
// BenchmarkRefresh in internal/vnic). A link the kernel refused (ENODEV;
// EINVAL, an id no longer assigned; any other error), or whose answer
// does not carry its target id back, is not found: the caller asks its
// namespace whole, which reports why. An error means the exchange itself
// failed (found is then incomplete).
func (c *Conn) LinksIn(refs []LinkRef, out []Link, found []bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for from := 0; from < len(refs); from += linksInBatch {
		to := min(from+linksInBatch, len(refs))
		if err := c.linksIn(refs[from:to], out[from:to], found[from:to]); err != nil {
			c.discard()
			return fmt.Errorf("RTM_GETLINK: %w", err)
		}
	}
	return nil
}

// linksIn is one batch of LinksIn.
func (c *Conn) linksIn(refs []LinkRef, out []Link, found []bool) error {
	first := c.seq + 1
	c.req = c.req[:0]
	var one request
	for _, ref := range refs {
		c.seq++
		one = getLink(one, ref.NSID, ref.Index)
		one.seal(c.seq)
		c.req = append(c.req, one...)
	}
	for i := range out {
		out[i], found[i] = Link{}, false
	}
	if _, err := unix.Write(c.fd, c.req); err != nil {
		return err
	}
	for pending := len(refs); pending > 0; {
		n, err := unix.Read(c.fd, c.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		err = Messages(c.buf[:n], func(m Message) error {
			// In uint32, so that it survives the wrap; an answer to an
			// earlier request (one given up on) lands far above.
			d := m.Seq - first
			if d >= uint32(len(refs)) || m.Type != unix.NLMSG_ERROR && m.Type != unix.RTM_NEWLINK {
				return nil
			}
			i := int(d)
			pending--
			if m.Type == unix.RTM_NEWLINK && parseLink(m.Data, &out[i]) == nil && out[i].TargetNSID == refs[i].NSID {
				found[i] = true
			} else {
				out[i] = Link{} // refused: ENODEV, EINVAL or another error
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// discard drops whatever answers the socket holds, without waiting. An
// exchange given up half way leaves some queued; and once an answer did
// not fit the receive buffer (ENOBUFS), the kernel drops every further
// one without a word until a read empties the queue, so the next request
// would wait out its timeout.
func (c *Conn) discard() {
	for {
		_, _, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_DONTWAIT)
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ENOBUFS) {
			return // EAGAIN: empty
		}
	}
}

// NSIDOf returns the id the socket's namespace gives the namespace open at
// fd, or NoNSID when it has none yet (RTM_GETNSID with NETNSA_FD).
func (c *Conn) NSIDOf(fd int) (int, error) {
	nsid, found := 0, false
	err := c.do(func(b request) request {
		return newRequest(b, unix.RTM_GETNSID, 0, sizeofRtgenmsg).u32(unix.NETNSA_FD, uint32(fd))
	}, unix.RTM_NEWNSID, func(m []byte) error {
		if len(m) < sizeofRtgenmsg {
			return errors.New("short RTM_NEWNSID message")
		}
		return Attrs(m[sizeofRtgenmsg:], func(typ uint16, v []byte) error {
			if typ == unix.NETNSA_NSID && len(v) >= 4 {
				nsid, found = int(int32Attr(v)), true
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("RTM_GETNSID: %w", err)
	}
	if !found {
		return 0, errors.New("RTM_GETNSID: reply carries no NETNSA_NSID")
	}
	return nsid, nil
}

// AssignNSID asks the kernel to give the namespace open at fd an id in the
// socket's namespace (RTM_NEWNSID with NETNSA_NSID -1, as `ip netns set
// NAME auto` does). The kernel does this by itself as soon as a link
// crosses between the two namespaces; a namespace that only holds a
// macvlan, or only lo, may have none, and a link query aimed at it
// (IFLA_TARGET_NETNSID) needs one. Losing a race with another assigner
// (EEXIST) is fine.
func (c *Conn) AssignNSID(fd int) error {
	err := c.do(func(b request) request {
		return newRequest(b, unix.RTM_NEWNSID, unix.NLM_F_ACK, sizeofRtgenmsg).
			u32(unix.NETNSA_FD, uint32(fd)).
			u32(unix.NETNSA_NSID, ^uint32(0)) // -1: the kernel picks
	}, 0, nil)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("RTM_NEWNSID: %w", err)
	}
	return nil
}

// HostStats returns the counters of every link of the socket's own
// namespace by ifindex: one RTM_GETSTATS dump, a tenth of the cost of the
// link dump (BenchmarkHostCounters in internal/vnic), so cached host links
// can have fresh counters. (RTM_GETSTATS cannot be aimed at another
// namespace: the kernel refuses IFLA_TARGET_NETNSID.)
func (c *Conn) HostStats() (map[int]*Stats, error) {
	var stats map[int]*Stats
	err := c.dump(func() { stats = map[int]*Stats{} }, func(b request) request {
		r := newRequest(b, unix.RTM_GETSTATS, unix.NLM_F_DUMP, sizeofIfStatsMsg)
		ne.PutUint32(r.body()[8:], 1<<(unix.IFLA_STATS_LINK_64-1))
		return r
	}, unix.RTM_NEWSTATS, func(m []byte) error {
		index, s, err := parseStatsMsg(m)
		if err == nil && s != nil {
			stats[index] = s
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("RTM_GETSTATS dump: %w", err)
	}
	return stats, nil
}
