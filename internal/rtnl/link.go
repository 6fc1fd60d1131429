package rtnl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// NoNSID marks an absent namespace id: an IFLA_LINK_NETNSID the kernel did
// not send (the peer or parent, if any, lives in the link's own namespace),
// or a notification the kernel attached no source id to.
const NoNSID = unix.NETNSA_NSID_NOT_ASSIGNED

// Link is the part of an RTM_NEWLINK message the resolver and the change
// stream need.
type Link struct {
	Index int
	Name  string
	Type  uint16 // ifi_type: ARPHRD_ETHER, ARPHRD_LOOPBACK, ...
	Flags uint32 // ifi_flags: IFF_UP, IFF_LOOPBACK, ...
	Kind  string // IFLA_INFO_KIND: "veth", "macvlan", "bridge", ... or "" (lo, physical)
	// PeerIndex is IFLA_LINK: the ifindex of a veth's peer or of a macvlan's
	// parent, counted in the namespace PeerNSID names (0 when absent).
	PeerIndex int
	// PeerNSID is IFLA_LINK_NETNSID: the id, as the requesting socket's
	// namespace numbers it, of the namespace holding the peer or parent;
	// NoNSID when that is the link's own namespace.
	PeerNSID int
	// TargetNSID is IFLA_TARGET_NETNSID: a kernel that honours a query aimed
	// at another namespace echoes the id in every reply; NoNSID otherwise.
	TargetNSID int
	// Stats are the link's counters (IFLA_STATS64); nil when the reply
	// carries none.
	Stats *Stats
	// State is the link's MTU, operational state and carrier, from the
	// same message.
	State LinkState
}

var errShortMessage = errors.New("netlink: short RTM_NEWLINK message")

// ParseLink decodes one RTM_NEWLINK payload (ifinfomsg + attributes). It
// reads the few attributes Link holds instead of deserialising the whole
// link (addresses, VF info, ...): the resolver runs it for every link of
// every namespace on every scrape.
func ParseLink(b []byte) (Link, error) {
	var l Link
	err := parseLink(b, &l)
	return l, err
}

// parseLink is ParseLink into *l, which dumps parse into their slice in
// place: a Link returned by value through every frame of a reply's walk
// would make the stack deeper than a goroutine's first one, and growing it
// costs `psnic PID` a copy and fresh pages at every start.
func parseLink(b []byte, l *Link) error {
	if len(b) < unix.SizeofIfInfomsg {
		return errShortMessage
	}
	// struct ifinfomsg: family, pad, type (u16), index (s32), flags, change.
	*l = Link{Index: int(int32(ne.Uint32(b[4:]))), Type: ne.Uint16(b[2:]), Flags: ne.Uint32(b[8:]),
		PeerNSID: NoNSID, TargetNSID: NoNSID}
	err := Attrs(b[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) error {
		switch typ {
		case unix.IFLA_IFNAME:
			l.Name = cString(v)
		case unix.IFLA_LINK:
			l.PeerIndex = int(int32Attr(v))
		case unix.IFLA_LINK_NETNSID:
			l.PeerNSID = int(int32Attr(v))
		case unix.IFLA_TARGET_NETNSID:
			l.TargetNSID = int(int32Attr(v))
		case unix.IFLA_STATS64:
			l.Stats = ParseStats64(v)
		case unix.IFLA_MTU:
			l.State.MTU = uint32(int32Attr(v))
		case unix.IFLA_OPERSTATE:
			l.State.OperState = uint8Attr(v)
		case unix.IFLA_CARRIER:
			l.State.Carrier = uint8Attr(v) != 0
		case unix.IFLA_LINKINFO:
			return Attrs(v, func(typ uint16, v []byte) error {
				if typ == unix.IFLA_INFO_KIND {
					l.Kind = cString(v)
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && l.Name == "" {
		err = errNoName
	}
	if err != nil {
		index := l.Index
		*l = Link{}
		return linkError(index, err)
	}
	return nil
}

var errNoName = errors.New("has no name")

// linkError is parseLink's error, formatted out of its frame (fmt's
// arguments would deepen the stack of every parse).
//
//go:noinline
func linkError(index int, err error) error {
	return fmt.Errorf("netlink: RTM_NEWLINK for ifindex %d: %w", index, err)
}

// ErrTargetIgnored means the kernel answered a dump aimed at another
// namespace with links that do not say they are from it: before 4.20 (and
// 4.15-4.19, where the attribute had another name and a narrower use) a
// kernel may answer with the host's own links.
var ErrTargetIgnored = errors.New("the kernel ignored IFLA_TARGET_NETNSID and may have answered with the host's own links (Linux 4.20 or later is required)")

// CheckTarget verifies that every link of a dump aimed at nsid carries
// nsid back.
func CheckTarget(ls []Link, nsid int) error {
	if nsid == NoNSID {
		return nil
	}
	for _, l := range ls {
		if l.TargetNSID != nsid {
			return fmt.Errorf("link dump aimed at namespace id %d: ifindex %d: %w", nsid, l.Index, ErrTargetIgnored)
		}
	}
	return nil
}
