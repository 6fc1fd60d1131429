package vnic

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// dumpBudget bounds how long a dump the kernel keeps marking interrupted
// (NLM_F_DUMP_INTR: the namespace's link table changed while it was being
// read) is repeated. A busy node churns host links all day: when the budget
// runs out, the caller falls back to asking link by link.
var dumpBudget = 2 * time.Second

var requestTimeout = unix.Timeval{Sec: 10}

// rtnl is one NETLINK_ROUTE socket in the host namespace, reused for every
// request (opening a socket per request costs more than most requests).
// It is safe for concurrent use: the nl package serialises requests on the
// socket and matches replies by sequence number.
type rtnl struct {
	sockets map[int]*nl.SocketHandle
}

func openRTNL() (*rtnl, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	// A kernel that never answers must not hang a scrape forever.
	// Extended acks stay off: nl v1.3.1 slices past the end of a capped
	// error reply carrying them and panics (seen on EPERM without
	// CAP_NET_ADMIN).
	_ = s.SetSendTimeout(&requestTimeout)
	_ = s.SetReceiveTimeout(&requestTimeout)
	return &rtnl{sockets: map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}}, nil
}

func (r *rtnl) Close() {
	r.sockets[unix.NETLINK_ROUTE].Socket.Close()
}

// execute runs req, turning a panic inside the netlink library into an
// error: a malformed or unexpected reply must cost one failed query, never
// the process.
func execute(req *nl.NetlinkRequest, resType uint16, f func([]byte) bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("netlink library failed on the kernel's reply: %v", p)
		}
	}()
	return req.ExecuteIter(unix.NETLINK_ROUTE, resType, f)
}

func (r *rtnl) request(typ, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = r.sockets
	return req
}

// nsidOf returns the id the host namespace gives the namespace open at fd,
// or noNSID when it has none yet (RTM_GETNSID with NETNSA_FD).
func (r *rtnl) nsidOf(fd int) (int, error) {
	req := r.request(unix.RTM_GETNSID, 0)
	req.AddData(nl.NewRtGenMsg())
	req.AddData(nl.NewRtAttr(unix.NETNSA_FD, nl.Uint32Attr(uint32(fd))))
	var msgs [][]byte
	err := execute(req, unix.RTM_NEWNSID, func(m []byte) bool {
		msgs = append(msgs, m)
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("RTM_GETNSID: %w", err)
	}
	for _, m := range msgs {
		hdr := (&nl.RtGenMsg{}).Len()
		if len(m) < hdr {
			continue
		}
		nsid, found := 0, false
		err := forEachAttr(m[hdr:], func(typ uint16, v []byte) error {
			if typ == unix.NETNSA_NSID && len(v) >= 4 {
				nsid, found = int(int32Attr(v)), true
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("RTM_GETNSID reply: %w", err)
		}
		if found {
			return nsid, nil
		}
	}
	return 0, errors.New("RTM_GETNSID: reply carries no NETNSA_NSID")
}

// assignNSID asks the kernel to give the namespace open at fd an id in the
// host namespace (RTM_NEWNSID with NETNSA_NSID -1, as `ip netns set NAME auto`
// does). The kernel does this by itself as soon as a link crosses between the
// two namespaces; a namespace that only holds a macvlan, or only lo, may have
// none, and a link query aimed at it (IFLA_TARGET_NETNSID) needs one.
// Losing a race with another assigner (EEXIST) is fine.
func (r *rtnl) assignNSID(fd int) error {
	req := r.request(unix.RTM_NEWNSID, unix.NLM_F_ACK)
	req.AddData(nl.NewRtGenMsg())
	req.AddData(nl.NewRtAttr(unix.NETNSA_FD, nl.Uint32Attr(uint32(fd))))
	req.AddData(nl.NewRtAttr(unix.NETNSA_NSID, nl.Uint32Attr(^uint32(0)))) // -1: the kernel picks
	if err := execute(req, 0, func([]byte) bool { return true }); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("RTM_NEWNSID: %w", err)
	}
	return nil
}

// links dumps the links of the namespace with id nsid as the host numbers it,
// or of the host namespace itself when nsid is noNSID. Peer namespace ids in
// the reply are, in both cases, as the host numbers them.
func (r *rtnl) links(nsid int) ([]link, error) {
	deadline := time.Now().Add(dumpBudget)
	for {
		ls, err := r.dumpLinks(nsid)
		if err == nil {
			return ls, checkTarget(ls, nsid)
		}
		if !errors.Is(err, nl.ErrDumpInterrupted) || time.Now().After(deadline) {
			return nil, err
		}
	}
}

// errTargetIgnored means the kernel answered a dump aimed at another
// namespace with links that do not say they are from it: before 4.20 (and
// 4.15-4.19, where the attribute had another name and a narrower use) a
// kernel may answer with the host's own links.
var errTargetIgnored = errors.New("the kernel ignored IFLA_TARGET_NETNSID and may have answered with the host's own links (Linux 4.20 or later is required)")

// checkTarget verifies that every link of a dump aimed at nsid carries
// nsid back.
func checkTarget(ls []link, nsid int) error {
	if nsid == noNSID {
		return nil
	}
	for _, l := range ls {
		if l.TargetNSID != nsid {
			return fmt.Errorf("link dump aimed at namespace id %d: ifindex %d: %w", nsid, l.Index, errTargetIgnored)
		}
	}
	return nil
}

func (r *rtnl) dumpLinks(nsid int) ([]link, error) {
	req := r.request(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	if nsid != noNSID {
		req.AddData(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))))
	}
	var (
		ls       []link
		parseErr error
	)
	err := execute(req, unix.RTM_NEWLINK, func(m []byte) bool {
		l, err := parseLink(m)
		if err != nil {
			parseErr = err
			return false
		}
		ls = append(ls, l)
		return true
	})
	if err != nil {
		if errors.Is(err, nl.ErrDumpInterrupted) {
			return nil, err
		}
		return nil, fmt.Errorf("RTM_GETLINK dump: %w", err)
	}
	return ls, parseErr
}

// linkByIndex returns the host link with ifindex index; ok is false when
// there is none.
func (r *rtnl) linkByIndex(index int) (l link, ok bool, err error) {
	req := r.request(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	var parseErr error
	err = execute(req, unix.RTM_NEWLINK, func(m []byte) bool {
		l, parseErr = parseLink(m)
		ok = parseErr == nil
		return false
	})
	if errors.Is(err, unix.ENODEV) {
		return link{}, false, nil
	}
	if err != nil {
		return link{}, false, fmt.Errorf("RTM_GETLINK ifindex %d: %w", index, err)
	}
	return l, ok, parseErr
}
