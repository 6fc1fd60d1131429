package vnic

import (
	"errors"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// prefetch is the batch of aimed gets that refreshes, for fresh counters
// and state, the links of every namespace cached, and not known changed,
// when a ResolveAll starts, followed by the host's counters (one
// RTM_GETSTATS dump). It runs beside the /proc walk, which asks the
// kernel nothing through netlink: at 1,000 namespaces the two took 27–31
// ms one after the other and 18–22 ms side by side on this project's
// two-CPU test machine, and the host's counters took another 1.6 ms after
// the walk when they waited for it.
type prefetch struct {
	entries []prefetched
	refs    []rtnl.LinkRef
	got     []link
	ok      []bool
	err     error
	// The host's counters by ifindex, or why there are none.
	hostStats map[int]*rtnl.Stats
	hostErr   error
	done      chan struct{}
}

// prefetched is one cached namespace of a prefetch: its entry, the links
// it held when the gets were sent, and where its answers start in got.
type prefetched struct {
	c     *cachedNetns
	links []link
	first int
}

// startRefresh sends, on a goroutine of its own, one RTM_GETLINK get aimed
// at its namespace's id for each link of the cached, unchanged namespaces
// that reaches into another namespace (the only ones that pair), all in
// one batch (rtnl.LinksIn); the fd, RTM_GETNSID and pairing proofs of a
// first query are not repeated. A dump aimed at each namespace would also
// send its lo and a closing NLMSG_DONE, one exchange per namespace, which
// made fresh counters cost 1.3 to 1.7 times as much at 1,000 namespaces
// (BenchmarkRefresh). The caller must wait for it (refreshAll or wait)
// before it returns.
func (r *Resolver) startRefresh() *prefetch {
	p := &prefetch{done: make(chan struct{})}
	for _, c := range r.cache.byInode {
		if c.stale {
			continue
		}
		p.entries = append(p.entries, prefetched{c: c, links: c.links, first: len(p.refs)})
		for _, l := range c.links {
			if crosses(l) {
				p.refs = append(p.refs, rtnl.LinkRef{NSID: c.nsid, Index: l.Index})
			}
		}
	}
	p.got, p.ok = make([]link, len(p.refs)), make([]bool, len(p.refs))
	// Without cached host links the call dumps them, counters and all.
	hostCached := r.cache.host != nil
	go func() {
		defer close(p.done)
		p.err = r.nl.LinksIn(p.refs, p.got, p.ok)
		if hostCached {
			p.hostStats, p.hostErr = r.nl.HostStats()
		} else {
			p.hostErr = errNoHostStats
		}
	}()
	return p
}

// errNoHostStats: a prefetch that did not ask for the host's counters,
// since the host links were not cached when it started.
var errNoHostStats = errors.New("host counters not asked for")

// wait waits for the gets to be answered and the host's counters read.
func (p *prefetch) wait() { <-p.done }

// refreshAll takes the answers of p for the namespaces the walk found
// that are still cached and that no notification since has changed, and
// returns their inodes. A namespace with a link gone or no longer the one
// cached (its notification is on the way) is left out, as is every one
// when the exchange failed: the caller then asks for it as before.
func (r *Resolver) refreshAll(p *prefetch, found map[uint64]*netnsProcs) map[uint64]bool {
	if p == nil {
		return nil
	}
	p.wait()
	if p.err != nil {
		return nil
	}
	fresh := make(map[uint64]bool, len(p.entries))
	for _, e := range p.entries {
		c := e.c
		if r.cache.byInode[c.inode] != c || c.stale || found[c.inode] == nil {
			continue
		}
		links, same, next := slices.Clone(e.links), true, e.first
		for i := range links {
			if !crosses(links[i]) {
				continue
			}
			old, l := &links[i], &p.got[next]
			same = same && p.ok[next] && l.Kind == old.Kind && l.PeerIndex == old.PeerIndex && l.PeerNSID == old.PeerNSID
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
// only their counters are old. The counters are p's, or asked for now
// without p. If they cannot be read, host ends are asked for one by one,
// counters included.
func (r *Resolver) withHostStats(cached hostLookup, p *prefetch) hostLookup {
	var stats map[int]*rtnl.Stats
	var err error
	if p != nil {
		p.wait()
		stats, err = p.hostStats, p.hostErr
	}
	if p == nil || errors.Is(err, errNoHostStats) {
		stats, err = r.nl.HostStats()
	}
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
