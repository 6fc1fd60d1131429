package vnic

import (
	"slices"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// refreshAll reads again, for fresh counters and state, the links of the
// cached namespaces the walk found that notifications left unchanged,
// aimed at the ids already known; the fd, RTM_GETNSID and pairing proofs of
// a first query are not repeated. Only links that reach into another
// namespace (the only ones that pair) are asked for, all in one batch of
// gets (rtnl.LinksIn): a dump aimed at each namespace would also send its
// lo and a closing NLMSG_DONE, one exchange per namespace, which made fresh
// counters cost 1.3 to 1.7 times as much at 1,000 namespaces
// (BenchmarkRefresh). It returns the inodes of the namespaces refreshed; a
// namespace with a link gone or no longer the one cached (its notification
// is on the way) is not, and the caller asks for it whole.
func (r *Resolver) refreshAll(found map[uint64]*netnsProcs) map[uint64]bool {
	var refs []rtnl.LinkRef
	var entries []*cachedNetns
	for ino := range found {
		c := r.cache.byInode[ino]
		if c == nil || c.stale {
			continue
		}
		entries = append(entries, c)
		for _, l := range c.links {
			if crosses(l) {
				refs = append(refs, rtnl.LinkRef{NSID: c.nsid, Index: l.Index})
			}
		}
	}
	got, ok := make([]link, len(refs)), make([]bool, len(refs))
	if err := r.nl.LinksIn(refs, got, ok); err != nil {
		return nil // each namespace is then asked for on its own
	}
	fresh := make(map[uint64]bool, len(entries))
	next := 0
	for _, c := range entries {
		links, same := slices.Clone(c.links), true
		for i := range links {
			if !crosses(links[i]) {
				continue
			}
			old, l := &links[i], &got[next]
			same = same && ok[next] && l.Kind == old.Kind && l.PeerIndex == old.PeerIndex && l.PeerNSID == old.PeerNSID
			links[i] = *l
			next++
		}
		if same {
			c.links = links
			fresh[c.inode] = true
		}
	}
	return fresh
}

// crosses reports whether a link's peer or parent is in another namespace.
func crosses(l link) bool { return l.PeerNSID != noNSID && l.PeerIndex > 0 }

// refresh dumps again the links of a cached namespace, aimed at the id
// already known, so that their counters are fresh: for one that changed
// since, or that refreshAll could not refresh. It reports false when the
// kernel refused (the namespace may be gone, its id free): the caller then
// asks as for a namespace it never saw.
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
func (r *Resolver) withHostStats(cached hostLookup) hostLookup {
	stats, err := r.nl.HostStats()
	if err != nil {
		return r.nl.LinkByIndex
	}
	return func(index int, l *link) (bool, error) {
		ok, err := cached(index, l)
		if ok {
			l.Stats = stats[index] // nil if the link went since: no counters
		}
		return ok, err
	}
}
