package vnic

import "golang.org/x/sys/unix"

// refresh dumps again the links of a cached namespace, aimed at the id
// already known, so that their counters are fresh; the fd, RTM_GETNSID
// and pairing proofs of a first query are not repeated. It reports false
// when the kernel refused (the namespace may be gone, its id free): the
// caller then asks as for a namespace it never saw.
func (r *Resolver) refresh(c *cachedNetns) bool {
	links, err := r.nl.Links(c.nsid)
	if err != nil {
		return false
	}
	c.links, c.stale = links, false
	return true
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
