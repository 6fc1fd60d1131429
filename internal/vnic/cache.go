package vnic

import "golang.org/x/sys/unix"

// cache holds what ResolveAll learnt of container namespaces (their id and
// links) and of the host links, for as long as notifications say it is
// still true.
//
// When a veth's container end moves to another namespace, the kernel
// changes the host end's peer namespace id without telling the host (seen
// on 6.18); only the namespaces the end left and joined hear of it. So any
// link event, wherever it happens, invalidates the host links. Every
// namespace a host veth points into has an id (listing the host links
// assigns one), so its events reach the notification socket. Cached
// namespaces are also checked against the host links (see consistent).
//
// A stacked link (macvlan...) names its host parent by index, and nothing
// tells its namespace when that parent moves away and another link takes
// the index: a namespace holding one is asked again whenever the host links
// are.
type cache struct {
	host      map[int]link   // host links by ifindex; nil when stale
	hostPeers map[int][]link // host veths by their peer's namespace id
	byInode   map[uint64]*cachedNetns
	byNSID    map[int]*cachedNetns
}

type cachedNetns struct {
	inode uint64
	nsid  int
	links []link
	stale bool
	// stacked is true when a link names a lower device in another namespace.
	stacked bool
}

func (c *cache) reset() {
	c.host, c.hostPeers = nil, nil
	c.byInode = map[uint64]*cachedNetns{}
	c.byNSID = map[int]*cachedNetns{}
}

func (c *cache) setHost(links []link) {
	c.host = make(map[int]link, len(links))
	c.hostPeers = map[int][]link{}
	for _, e := range c.byInode {
		if e.stacked {
			e.stale = true
		}
	}
	for _, l := range links {
		c.host[l.Index] = l
		if l.Kind == "veth" && l.PeerNSID != noNSID {
			c.hostPeers[l.PeerNSID] = append(c.hostPeers[l.PeerNSID], l)
		}
	}
}

// store records what was learnt of the namespace with this inode and id,
// replacing whatever held either: two live namespaces cannot share an
// inode or an id, so an entry holding one of them is of a dead namespace.
func (c *cache) store(inode uint64, nsid int, links []link) *cachedNetns {
	if old := c.byInode[inode]; old != nil {
		c.drop(old)
	}
	if old := c.byNSID[nsid]; old != nil {
		c.drop(old)
	}
	e := &cachedNetns{inode: inode, nsid: nsid, links: links}
	for _, l := range links {
		if stacked(l.Kind) && l.PeerNSID != noNSID {
			e.stacked = true
		}
	}
	c.byInode[inode] = e
	c.byNSID[nsid] = e
	return e
}

// drop forgets e, and only e: its inode or id may already belong to a
// newer entry.
func (c *cache) drop(e *cachedNetns) {
	if c.byInode[e.inode] == e {
		delete(c.byInode, e.inode)
	}
	if c.byNSID[e.nsid] == e {
		delete(c.byNSID, e.nsid)
	}
}

// apply updates the cache for one notification. fromHost tells whether a
// namespace id (an event's From) is the host's own.
func (c *cache) apply(ev Notification, fromHost func(nsid int) bool) {
	switch ev.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		c.host, c.hostPeers = nil, nil
		if e := c.byNSID[ev.From]; e != nil {
			e.stale = true
		}
	case unix.RTM_DELNSID:
		// The namespace is being destroyed; its inode may be reused. Only
		// the host's own ids are cached: with NETLINK_LISTEN_ALL_NSID a
		// namespace deleting its id for another one is heard too, and that
		// id means nothing in the host's numbering.
		if !fromHost(ev.From) {
			return
		}
		if e := c.byNSID[ev.NSID]; e != nil {
			c.drop(e)
		}
	}
}

// prune forgets namespaces the last walk did not find.
func (c *cache) prune(found map[uint64]*netnsProcs) {
	for ino, e := range c.byInode {
		if found[ino] == nil {
			c.drop(e)
		}
	}
}

// consistent reports whether a cached namespace agrees with a fresh dump of
// the host links, indexed by the namespace id their peer is in: every host
// veth that names the namespace as its peer's must be named back by a
// cached link. It catches a veth end moved into the host from elsewhere,
// which changes the container end's peer without an event in the container.
func consistent(e *cachedNetns, hostPeers map[int][]link, self int) bool {
	for _, h := range hostPeers[e.nsid] {
		found := false
		for _, l := range e.links {
			if l.Index == h.PeerIndex {
				found = l.Kind == "veth" && l.PeerIndex == h.Index && l.PeerNSID == self
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
