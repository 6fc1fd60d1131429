package vnicwatch

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// Filter narrows a stream to the vNICs a consumer may act on. Each list
// that is not empty must match (any of its entries); an empty one matches
// everything.
type Filter struct {
	// Kinds are link kinds of the container end: "veth", or for stacked
	// links (whose host end is a shared parent) "macvlan", "ipvlan", ...
	Kinds []string
	// HostIfnames and ContainerIfnames are shell patterns (path.Match).
	HostIfnames      []string
	ContainerIfnames []string
	// Runtimes are the runtimes of cgroupid ("docker", "containerd",
	// "cri-o", "podman"); "" matches processes of no known runtime.
	Runtimes []string
}

// Check returns an error naming the first malformed pattern, or the first
// kind or runtime that no row can have (a typo would match nothing,
// silently). Match takes a malformed pattern to match nothing.
func (f Filter) Check() error {
	for _, p := range append(slices.Clone(f.HostIfnames), f.ContainerIfnames...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("interface name pattern %q: %w", p, err)
		}
	}
	for _, k := range f.Kinds {
		if !slices.Contains(vnic.Kinds, k) {
			return fmt.Errorf("kind %q: not one a vNIC can have (%s)", k, strings.Join(vnic.Kinds, ", "))
		}
	}
	for _, rt := range f.Runtimes {
		if rt != "" && !slices.Contains(cgroupid.Runtimes, rt) {
			return fmt.Errorf("runtime %q: not one a row can have (%s, or \"\" for none known)", rt, strings.Join(cgroupid.Runtimes, ", "))
		}
	}
	return nil
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Row) bool {
	return (len(f.Kinds) == 0 || slices.Contains(f.Kinds, r.Kind)) &&
		matchAny(f.HostIfnames, r.HostIfname) &&
		matchAny(f.ContainerIfnames, r.ContainerIfname) &&
		(len(f.Runtimes) == 0 || slices.Contains(f.Runtimes, r.Runtime))
}

func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Apply filters one change. A vNIC that starts to match (renamed into a
// pattern, say) is added for the consumer, one that stops matching is
// removed: what a consumer attached to, it hears about detaching from.
func (f Filter) Apply(c Change) (Change, bool) {
	if c.Event != Changed || c.Old == nil {
		return c, f.Match(c.Row)
	}
	was, is := f.Match(*c.Old), f.Match(c.Row)
	switch {
	case was && is:
		return c, true
	case is:
		return Change{Event: Added, Row: c.Row}, true
	case was:
		return Change{Event: Removed, Row: *c.Old}, true
	}
	return Change{}, false
}
