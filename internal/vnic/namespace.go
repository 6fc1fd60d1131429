package vnic

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// What a change stream needs besides ResolveAll: answers about one
// namespace or one process, each costing the same whatever the number of
// namespaces on the host.

// NoNSID is the namespace id of a notification the kernel attached none to
// (see Notification.From).
const NoNSID = noNSID

// ResolveNamespace resolves the namespace with this inode through one of
// its processes, pid: its id as the host numbers it (assigning one if it
// has none) and its host-paired interfaces, of which there may be none.
// Host links are asked for one by one, so the cost does not grow with the
// host. The namespace stays open during the queries, so its id cannot be
// freed and given to another one meanwhile. Errors are *Error; CauseVanished
// means pid is gone or no longer in that namespace.
func (r *Resolver) ResolveNamespace(pid int, inode uint64) (nsid int, vnics []VNIC, err error) {
	f, err := r.openFound(inode, pid)
	if err != nil {
		return noNSID, nil, err
	}
	defer f.Close()
	nsid, links, err := r.netnsLinks(pid, f)
	if err != nil {
		return noNSID, nil, err
	}
	vnics, err = r.pairLinks(pid, nsid, links, r.nl.LinkByIndex)
	if CauseOf(err) == CauseNoVNIC {
		return nsid, nil, nil
	}
	return nsid, vnics, err
}

// NetnsOf returns the inode of pid's network namespace: one readlink.
// Errors are *Error (CauseNoProcess when pid has gone).
func (r *Resolver) NetnsOf(pid int) (uint64, error) {
	var buf [64]byte
	n, err := unix.Readlink(r.procRoot+"/"+strconv.Itoa(pid)+"/ns/net", buf[:])
	if err != nil {
		cause := classify(err)
		if cause == CauseVanished {
			cause = CauseNoProcess
		}
		return 0, newError(pid, cause, err)
	}
	ino, err := parseNetnsLink(string(buf[:n]))
	if err != nil {
		return 0, &Error{PID: pid, Cause: CauseProcfs, Err: err}
	}
	return ino, nil
}

// NSIDs returns the ids of the namespaces the last ResolveAll resolved, by
// inode.
func (r *Resolver) NSIDs() map[uint64]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uint64]int, len(r.cache.byInode))
	for ino, e := range r.cache.byInode {
		out[ino] = e.nsid
	}
	return out
}

// IsHost reports whether a notification's From names the host namespace:
// the kernel attaches the id the host gives itself, or none before it has
// one.
func (r *Resolver) IsHost(from int) bool { return r.isHostNSID(from) }

// Oldest returns the process that names a namespace among pids, as
// ResolveAll chooses it when a namespace's holder has left: the earliest
// start time, the lowest PID among equals (one read of /proc/PID/stat each).
func (r *Resolver) Oldest(pids []int) int {
	h := holders{procRoot: r.procRoot}
	return oldest(pids, h.startTime)
}
