package vnic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// dumper runs the link dumps aimed at known namespace ids that fresh
// counters cost on every scrape, one per namespace: the bulk of a scrape
// with counters. It owns a blocking NETLINK_ROUTE socket and one receive
// buffer, and speaks the few messages it needs itself: through the nl
// package, whose socket is non-blocking and whose every receive allocates
// 64 KiB, each dump cost three times what the kernel takes (measured with
// BenchmarkMachine at 1,000 namespaces). Not safe for concurrent use: the
// resolver holds its lock.
type dumper struct {
	fd  int
	seq uint32
	buf []byte
	req []byte
}

func openDumper() (*dumper, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	// A kernel that never answers must not hang a scrape forever.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &requestTimeout); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding rtnetlink socket: %w", err)
	}
	return &dumper{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (d *dumper) Close() error { return unix.Close(d.fd) }

// linkDumpRequest encodes RTM_GETLINK|NLM_F_DUMP aimed at nsid: nlmsghdr,
// ifinfomsg, IFLA_TARGET_NETNSID.
func linkDumpRequest(b []byte, seq uint32, nsid int) []byte {
	const size = unix.SizeofNlMsghdr + unix.SizeofIfInfomsg + unix.SizeofRtAttr + 4
	b = append(b[:0], make([]byte, size)...)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], size)
	ne.PutUint16(b[4:], unix.RTM_GETLINK)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], seq)
	b[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	attr := b[unix.SizeofNlMsghdr+unix.SizeofIfInfomsg:]
	ne.PutUint16(attr[0:], unix.SizeofRtAttr+4)
	ne.PutUint16(attr[2:], unix.IFLA_TARGET_NETNSID)
	ne.PutUint32(attr[4:], uint32(nsid))
	return b
}

// links dumps the links of namespace nsid, retrying an interrupted dump
// for as long as rtnl.links does.
func (d *dumper) links(nsid int) ([]link, error) {
	deadline := time.Now().Add(dumpBudget)
	for {
		ls, err := d.dump(nsid)
		if err == nil {
			return ls, checkTarget(ls, nsid)
		}
		if !errors.Is(err, errDumpInterrupted) || time.Now().After(deadline) {
			return nil, err
		}
	}
}

var errDumpInterrupted = errors.New("link dump interrupted (NLM_F_DUMP_INTR)")

func (d *dumper) dump(nsid int) ([]link, error) {
	d.seq++
	d.req = linkDumpRequest(d.req, d.seq, nsid)
	var ls []link
	err := d.run(unix.RTM_NEWLINK, func(m []byte) error {
		l, err := parseLink(m)
		if err == nil {
			ls = append(ls, l)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("RTM_GETLINK dump: %w", err)
	}
	return ls, nil
}

// hostStats returns the counters of every link of the socket's own
// namespace, the host, by ifindex: one RTM_GETSTATS dump, a tenth of the
// cost of the link dump (BenchmarkHostCounters), so the host links can
// stay cached while their counters are fresh. (RTM_GETSTATS cannot be
// aimed at another namespace: the kernel refuses IFLA_TARGET_NETNSID.)
func (d *dumper) hostStats() (map[int]*Stats, error) {
	deadline := time.Now().Add(dumpBudget)
	for {
		d.seq++
		d.req = statsDumpRequest(d.req, d.seq)
		stats := map[int]*Stats{}
		err := d.run(unix.RTM_NEWSTATS, func(m []byte) error {
			index, s, err := parseStatsMsg(m)
			if err == nil && s != nil {
				stats[index] = s
			}
			return err
		})
		if err == nil {
			return stats, nil
		}
		if !errors.Is(err, errDumpInterrupted) || time.Now().After(deadline) {
			return nil, fmt.Errorf("RTM_GETSTATS dump: %w", err)
		}
	}
}

// run sends d.req and reads the dump it asks for, calling f with each
// message of type want.
func (d *dumper) run(want uint16, f func([]byte) error) error {
	if err := unix.Sendto(d.fd, d.req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	interrupted := false
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		done, intr, err := parseDumpChunk(d.buf[:n], d.seq, want, f)
		if err != nil {
			return err
		}
		interrupted = interrupted || intr
		if done {
			if interrupted {
				return errDumpInterrupted
			}
			return nil
		}
	}
}

// sizeofIfStatsMsg is struct if_stats_msg: family, two pads, ifindex,
// filter_mask.
const sizeofIfStatsMsg = 12

// statsDumpRequest encodes RTM_GETSTATS|NLM_F_DUMP for IFLA_STATS_LINK_64
// only.
func statsDumpRequest(b []byte, seq uint32) []byte {
	const size = unix.SizeofNlMsghdr + sizeofIfStatsMsg
	b = append(b[:0], make([]byte, size)...)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], size)
	ne.PutUint16(b[4:], unix.RTM_GETSTATS)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[unix.SizeofNlMsghdr+8:], 1<<(unix.IFLA_STATS_LINK_64-1))
	return b
}

// parseStatsMsg decodes one RTM_NEWSTATS payload: the ifindex, and its
// IFLA_STATS_LINK_64 counters (nil when absent).
func parseStatsMsg(b []byte) (int, *Stats, error) {
	if len(b) < sizeofIfStatsMsg {
		return 0, nil, errors.New("short RTM_NEWSTATS message")
	}
	index := int(int32(binary.NativeEndian.Uint32(b[4:])))
	var s *Stats
	err := forEachAttr(b[sizeofIfStatsMsg:], func(typ uint16, v []byte) error {
		if typ == unix.IFLA_STATS_LINK_64 {
			s = parseStats64(v)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("RTM_NEWSTATS for ifindex %d: %w", index, err)
	}
	return index, s, nil
}

// parseDumpChunk walks the netlink messages of one read of a dump reply
// with sequence number seq, calling f with each payload of type typ. It
// reports whether the dump is done (NLMSG_DONE) and whether the kernel
// flagged any message NLM_F_DUMP_INTR (the table changed while it was
// read). Messages of other sequence numbers (a reply to an earlier request
// that timed out) are skipped.
func parseDumpChunk(b []byte, seq uint32, want uint16, f func(payload []byte) error) (done, interrupted bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		size := int(ne.Uint32(b[0:]))
		typ, flags, mseq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
		if size < unix.SizeofNlMsghdr || size > len(b) {
			return false, interrupted, errors.New("netlink dump: malformed message")
		}
		payload := b[unix.SizeofNlMsghdr:size]
		if mseq == seq {
			interrupted = interrupted || flags&unix.NLM_F_DUMP_INTR != 0
			switch typ {
			case unix.NLMSG_DONE:
				return true, interrupted, nil
			case unix.NLMSG_ERROR:
				if len(payload) < 4 {
					return false, interrupted, errors.New("netlink dump: short error message")
				}
				if errno := -int32(ne.Uint32(payload)); errno != 0 {
					return false, interrupted, fmt.Errorf("netlink dump: %w", unix.Errno(errno))
				}
				return true, interrupted, nil
			case want:
				if err := f(payload); err != nil {
					return false, interrupted, err
				}
			}
		}
		size = (size + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if size > len(b) {
			break
		}
		b = b[size:]
	}
	return false, interrupted, nil
}
