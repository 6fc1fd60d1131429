package vnic

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// noNSID marks an absent IFLA_LINK_NETNSID: the link's peer or parent, if
// any, lives in the same namespace as the link itself.
const noNSID = unix.NETNSA_NSID_NOT_ASSIGNED

// link is the part of an RTM_NEWLINK message the resolver needs.
type link struct {
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
	// noNSID when that is the link's own namespace.
	PeerNSID int
	// TargetNSID is IFLA_TARGET_NETNSID: a kernel that honours a query aimed
	// at another namespace echoes the id in every reply; noNSID otherwise.
	TargetNSID int
	// Stats are the link's counters (IFLA_STATS64); nil when the reply
	// carries none.
	Stats *Stats
	// State is the link's MTU, operational state and carrier, from the
	// same message.
	State LinkState
}

var errShortMessage = errors.New("netlink: short RTM_NEWLINK message")

// parseLink decodes one RTM_NEWLINK payload (ifinfomsg + attributes). It
// reads four attributes instead of deserialising the whole link (statistics,
// addresses, ...) as netlink.LinkDeserialize does: the resolver runs it for
// every link of every namespace on every scrape.
func parseLink(b []byte) (link, error) {
	if len(b) < unix.SizeofIfInfomsg {
		return link{}, errShortMessage
	}
	msg := nl.DeserializeIfInfomsg(b)
	l := link{Index: int(msg.Index), Type: msg.Type, Flags: msg.Flags, PeerNSID: noNSID, TargetNSID: noNSID}
	err := forEachAttr(b[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) error {
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
			l.Stats = parseStats64(v)
		case unix.IFLA_MTU:
			l.State.MTU = uint32(int32Attr(v))
		case unix.IFLA_OPERSTATE:
			l.State.OperState = uint8Attr(v)
		case unix.IFLA_CARRIER:
			l.State.Carrier = uint8Attr(v) != 0
		case unix.IFLA_LINKINFO:
			return forEachAttr(v, func(typ uint16, v []byte) error {
				if typ == unix.IFLA_INFO_KIND {
					l.Kind = cString(v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return link{}, fmt.Errorf("netlink: RTM_NEWLINK for ifindex %d: %w", l.Index, err)
	}
	if l.Name == "" {
		return link{}, fmt.Errorf("netlink: RTM_NEWLINK for ifindex %d has no name", l.Index)
	}
	return l, nil
}

var errBadAttr = errors.New("malformed attribute")

// nlaTypeMask clears the NLA_F_NESTED and NLA_F_NET_BYTEORDER flag bits.
const nlaTypeMask = 0x3fff

// forEachAttr calls f with the type and value of each rtattr in b.
// nl.ParseRouteAttr would do, but it panics on a length that overruns the
// buffer (found by FuzzParseLink); this walker checks every bound.
func forEachAttr(b []byte, f func(typ uint16, value []byte) error) error {
	for len(b) >= unix.SizeofRtAttr {
		n := int(nl.NativeEndian().Uint16(b[0:2]))
		typ := nl.NativeEndian().Uint16(b[2:4]) & nlaTypeMask
		if n < unix.SizeofRtAttr || n > len(b) {
			return errBadAttr
		}
		if err := f(typ, b[unix.SizeofRtAttr:n]); err != nil {
			return err
		}
		n = (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if n > len(b) {
			break
		}
		b = b[n:]
	}
	return nil
}

// int32Attr decodes a 4-byte attribute; a shorter one reads as 0.
func int32Attr(v []byte) int32 {
	if len(v) < 4 {
		return 0
	}
	return int32(nl.NativeEndian().Uint32(v))
}

// uint8Attr decodes a 1-byte attribute; an empty one reads as 0.
func uint8Attr(v []byte) uint8 {
	if len(v) < 1 {
		return 0
	}
	return v[0]
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
