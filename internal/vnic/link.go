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
	Kind  string // IFLA_INFO_KIND: "veth", "macvlan", "bridge", ... or "" (lo, physical)
	// PeerIndex is IFLA_LINK: the ifindex of a veth's peer or of a macvlan's
	// parent, counted in the namespace PeerNSID names (0 when absent).
	PeerIndex int
	// PeerNSID is IFLA_LINK_NETNSID: the id, as the requesting socket's
	// namespace numbers it, of the namespace holding the peer or parent;
	// noNSID when that is the link's own namespace.
	PeerNSID int
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
	l := link{Index: int(msg.Index), PeerNSID: noNSID}
	attrs, err := nl.ParseRouteAttr(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return link{}, fmt.Errorf("netlink: RTM_NEWLINK for ifindex %d: %w", l.Index, err)
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			l.Name = cString(a.Value)
		case unix.IFLA_LINK:
			if len(a.Value) >= 4 {
				l.PeerIndex = int(int32(nl.NativeEndian().Uint32(a.Value)))
			}
		case unix.IFLA_LINK_NETNSID:
			if len(a.Value) >= 4 {
				l.PeerNSID = int(int32(nl.NativeEndian().Uint32(a.Value)))
			}
		case unix.IFLA_LINKINFO:
			info, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				return link{}, fmt.Errorf("netlink: IFLA_LINKINFO of ifindex %d: %w", l.Index, err)
			}
			for _, i := range info {
				if i.Attr.Type == unix.IFLA_INFO_KIND {
					l.Kind = cString(i.Value)
				}
			}
		}
	}
	if l.Name == "" {
		return link{}, fmt.Errorf("netlink: RTM_NEWLINK for ifindex %d has no name", l.Index)
	}
	return l, nil
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
