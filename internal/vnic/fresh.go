package vnic

import "golang.org/x/sys/unix"

// refresh dumps again the links of a cached namespace, aimed at the id
// already known, so that their counters are fresh; the fd, RTM_GETNSID
// and pairing proofs of a first query are not repeated. It reports false
// when the kernel refused (the namespace may be gone, its id free): the
// caller then asks as for a namespace it never saw. A dump prefetch made
// during the walk is used instead, if no link changed since.
func (r *Resolver) refresh(c *cachedNetns, pre *prefetched, snap *Snapshot) bool {
	got, ok := pre.take(c)
	if !ok {
		got.links, got.err = r.nl.Links(c.nsid)
	}
	if got.err != nil {
		return false
	}
	if ok {
		snap.Prefetched++
	}
	c.links, c.stale = got.links, false
	return true
}

// prefetched holds the aimed dumps of cached namespaces that prefetch
// made while the walk ran.
type prefetched struct {
	done  chan struct{}
	index map[*cachedNetns]int // into got
	got   []refreshed
	// changed is true when the notifications applied after the walk told
	// of a link event: the dumps may predate it, and none is used.
	changed bool
}

type refreshed struct {
	links []link
	err   error
}

// prefetch starts, with counters and a cache, the aimed dumps of every
// cached namespace on their own socket, so that the kernel's link dumps
// run while the walk reads /proc (on another CPU): they are the same
// dumps refresh makes one after the other, and more sockets than one do
// not help, since the kernel serialises link dumps (rtnl_dumpit takes
// the RTNL mutex, on 6.18). The dumps read only an entry's id, which
// never changes; what they return is put in the cache by refresh, in the
// sequential order, and only for an entry still there after the
// notifications are applied (a deleted id drops it) and when they told of
// no link event anywhere: then nothing the sequential dumps could see
// had changed since (the notification socket hears every namespace with
// an id, and every cached one has one).
func (r *Resolver) prefetch() *prefetched {
	if r.aim == nil || r.watcher == nil || len(r.cache.byInode) == 0 {
		return nil
	}
	p := &prefetched{done: make(chan struct{}), index: make(map[*cachedNetns]int, len(r.cache.byInode))}
	nsids := make([]int, 0, len(r.cache.byInode))
	for _, c := range r.cache.byInode {
		p.index[c] = len(nsids)
		nsids = append(nsids, c.nsid)
	}
	p.got = make([]refreshed, len(nsids))
	go func() {
		defer close(p.done)
		for i, nsid := range nsids {
			p.got[i].links, p.got[i].err = r.aim.Links(nsid)
		}
	}()
	return p
}

// wait returns once every prefetched dump is made.
func (p *prefetched) wait() {
	if p != nil {
		<-p.done
	}
}

// observe notes whether a notification tells of a link event.
func (p *prefetched) observe(ev Notification) {
	if p != nil && (ev.Type == unix.RTM_NEWLINK || ev.Type == unix.RTM_DELLINK) {
		p.changed = true
	}
}

// take returns the prefetched dump of c, if there is one still good.
func (p *prefetched) take(c *cachedNetns) (refreshed, bool) {
	if p == nil || p.changed {
		return refreshed{}, false
	}
	i, ok := p.index[c]
	if !ok {
		return refreshed{}, false
	}
	return p.got[i], true
}

// dropReassigned removes from snap the namespaces refreshed through a
// cached id (aimed: inode to id) whose id the kernel deleted since the
// walk. Without an open fd nothing pinned them: the namespace may have
// died after the walk and its id gone to another namespace, whose links
// the dump then returned. They count as vanished, which they are.
func (r *Resolver) dropReassigned(snap *Snapshot, aimed map[uint64]int) {
	if len(aimed) == 0 || r.watcher == nil {
		return
	}
	deleted := map[int]bool{}
	err := r.drainInto(func(ev Notification) {
		if ev.Type == unix.RTM_DELNSID && r.isHostNSID(ev.From) {
			deleted[ev.NSID] = true
		}
	})
	if err != nil {
		// Lost notifications: the next call starts afresh. What this one
		// dumped stays, like everything else it found.
		snap.Overflow = true
	}
	if len(deleted) == 0 {
		return
	}
	kept := snap.Namespaces[:0]
	for _, ns := range snap.Namespaces {
		if nsid, ok := aimed[ns.Inode]; ok && deleted[nsid] {
			snap.Vanished++
			continue
		}
		kept = append(kept, ns)
	}
	snap.Namespaces = kept
}

// counterPolicy clears the counters of vnics unless the resolver reads
// them fresh: the kernel sends them with every link (RTEXT_FILTER_SKIP_STATS
// drops only VF counters: tried on 6.18), but cached links hold old values.
func (r *Resolver) counterPolicy(vnics []VNIC) {
	if r.counters {
		return
	}
	for i := range vnics {
		vnics[i].ContainerStats, vnics[i].HostStats = nil, nil
	}
}

// withHostStats returns a host link lookup whose links carry fresh
// counters: the cached host links are still true (no link event since),
// only their counters are old. If the counters cannot be read, host ends
// are asked for one by one, counters included.
func (r *Resolver) withHostStats(cached func(int) (link, bool, error)) func(int) (link, bool, error) {
	stats, err := r.nl.HostStats()
	if err != nil {
		return r.nl.LinkByIndex
	}
	return func(index int) (link, bool, error) {
		l, ok, err := cached(index)
		if ok {
			l.Stats = stats[index] // nil if the link went since: no counters
		}
		return l, ok, err
	}
}
