package vnic

import "github.com/container-vnic/container_vnic_exporter/internal/rtnl"

// noNSID marks an absent IFLA_LINK_NETNSID: the link's peer or parent, if
// any, lives in the same namespace as the link itself.
const noNSID = rtnl.NoNSID

// link is a link as rtnetlink reports it (rtnl.ParseLink).
type link = rtnl.Link

// hostLookup reads the host link with ifindex index into *l (as
// rtnl.Conn.LinkByIndex); ok is false when there is none.
type hostLookup = func(index int, l *link) (ok bool, err error)
