package vnic

import "golang.org/x/sys/unix"

// cache holds what ResolveAll learnt of container namespaces (their id and
// links) for as long as notifications say it is still true.
//
// Host links are not cached: when a veth's container end moves to another
// namespace, the kernel changes the host end's peer namespace id without
// telling the host (seen on 6.18), so no event stream keeps them exact.
// ResolveAll dumps them on every call instead, and checks each cached
// namespace against that dump (see consistent).
type cache struct {
	byInode map[uint64]*cachedNetns
	byNSID  map[int]*cachedNetns
}

type cachedNetns struct {
	inode uint64
	nsid  int
	links []link
	stale bool
}

func (c *cache) reset() {
	c.byInode = map[uint64]*cachedNetns{}
	c.byNSID = map[int]*cachedNetns{}
}

func (c *cache) store(inode uint64, nsid int, links []link) *cachedNetns {
	if old := c.byInode[inode]; old != nil {
		delete(c.byNSID, old.nsid)
	}
	e := &cachedNetns{inode: inode, nsid: nsid, links: links}
	c.byInode[inode] = e
	c.byNSID[nsid] = e
	return e
}

func (c *cache) drop(e *cachedNetns) {
	delete(c.byInode, e.inode)
	delete(c.byNSID, e.nsid)
}

// apply updates the cache for one notification.
func (c *cache) apply(ev event) {
	switch ev.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		if e := c.byNSID[ev.From]; e != nil && ev.From != noNSID {
			e.stale = true
		}
	case unix.RTM_DELNSID:
		// The namespace is being destroyed; its inode may be reused.
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
