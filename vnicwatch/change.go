// Package vnicwatch is the change stream of container vNICs behind
// `psnic watch`, usable by any Go program that wants the events without a
// subprocess: every vNIC once at start ("present"), then "added",
// "changed" and "removed" as they happen.
//
// A program Opens a Stream, Runs it with a function that gets each Change,
// and Closes it; a Filter narrows what it acts on. It needs root (see
// Open).
//
// Work is proportional to the change, not to the host: a link or
// namespace-id notification re-resolves only the namespace it names; a
// process event reads only that process's ns/net link, and acts only when
// it brings a namespace the stream has not attached, or takes away a
// namespace's last or label-holding (oldest) process. The full walk of
// procfs runs only at start, after lost events, and every resync interval.
package vnicwatch

import (
	"sort"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// VNIC is one container interface and its host end (the peer of a veth,
// or the parent of a stacked link such as a macvlan, Kind telling which):
//
//	ContainerIfname, ContainerIfindex  the interface in the container's namespace
//	HostIfname, HostIfindex            its host end, in the host's namespace: what
//	                                   an attacher attaches to
//	Kind                               the container end's link kind ("veth",
//	                                   "macvlan", ...: Filter.Kinds)
//
// Either end's name and the host end's index may change under one Key
// (a Changed line). In a stream's rows the counters (ContainerStats,
// HostStats) are nil and the link states zero.
type VNIC = vnic.VNIC

// Identity is the container a process belongs to, from its cgroup:
// ContainerID (64 hex digits), PodUID (a Kubernetes pod's) and Runtime
// ("docker", "containerd", "cri-o", "podman"), each empty where the cgroup
// layout does not tell.
type Identity = cgroupid.Identity

// Event names a line of the stream.
type Event string

// The events of a stream, one per line.
const (
	Present Event = "present" // at start, for each vNIC
	Added   Event = "added"
	Changed Event = "changed" // renamed on either side, peer moved, oldest process changed
	Removed Event = "removed"
)

// Row is one container vNIC: a container interface and its host end, the
// oldest process of its namespace (kept while it stays there), and that process's container (empty where
// its cgroup layout is unknown).
type Row struct {
	PID   int    `json:"pid"`   // the namespace's oldest process
	Netns uint64 `json:"netns"` // the namespace's inode number
	VNIC
	ContainerID string `json:"container_id"`
	PodUID      string `json:"pod_uid"`
	Runtime     string `json:"runtime"`
}

// NewRow joins a vNIC of namespace netns with its process's identity.
// The link state (MTU, operstate, carrier) is left out: a row changes when
// the pairing or identity does, not when a link's carrier flips.
func NewRow(netns uint64, pid int, v VNIC, id Identity) Row {
	v.ContainerState, v.HostState = vnic.LinkState{}, vnic.LinkState{}
	return Row{PID: pid, Netns: netns, VNIC: v, ContainerID: id.ContainerID, PodUID: id.PodUID, Runtime: id.Runtime}
}

// Escaped returns r with its interface names valid UTF-8, for JSON, which
// would otherwise turn each invalid byte into U+FFFD.
func (r Row) Escaped() Row {
	r.ContainerIfname, r.HostIfname = vnic.EscapeName(r.ContainerIfname), vnic.EscapeName(r.HostIfname)
	return r
}

// Change is one line of the stream. For Changed, Old holds the previous
// values.
type Change struct {
	Event Event `json:"event"`
	Row
	Old *Row `json:"old,omitempty"`
}

// Key identifies a vNIC across changes: its namespace and container index.
type Key struct {
	Netns uint64 // Row.Netns
	Index int    // Row.ContainerIfindex
}

func keyOf(r Row) Key { return Key{r.Netns, r.ContainerIfindex} }

// Diff lists what changed from before to after: removals, then changes,
// then additions, each in namespace and index order.
func Diff(before, after map[Key]Row) []Change {
	var removed, changed, added []Change
	for _, k := range SortedKeys(before) {
		o := before[k]
		n, ok := after[k]
		switch {
		case !ok:
			removed = append(removed, Change{Event: Removed, Row: o})
		case n != o:
			prev := o
			changed = append(changed, Change{Event: Changed, Row: n, Old: &prev})
		}
	}
	for _, k := range SortedKeys(after) {
		if _, ok := before[k]; !ok {
			added = append(added, Change{Event: Added, Row: after[k]})
		}
	}
	return append(append(removed, changed...), added...)
}

// SortedKeys returns m's keys in namespace and index order.
func SortedKeys(m map[Key]Row) []Key {
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Netns != keys[j].Netns {
			return keys[i].Netns < keys[j].Netns
		}
		return keys[i].Index < keys[j].Index
	})
	return keys
}
