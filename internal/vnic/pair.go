package vnic

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// VNIC is one container-side interface whose peer (veth) or parent
// (macvlan and the like) is a host interface.
type VNIC struct {
	ContainerIfname  string `json:"container_ifname"`
	ContainerIfindex int    `json:"container_ifindex"`
	HostIfname       string `json:"host_ifname"`
	HostIfindex      int    `json:"host_ifindex"`
	Kind             string `json:"kind"`
	// The counters of both ends, when the resolver reads them
	// (Options.Counters); for a macvlan-like link HostStats are the
	// parent's, shared with everything else on it.
	ContainerStats *Stats `json:"-"`
	HostStats      *Stats `json:"-"`
}

// pair returns the container links of namespace nsid whose other end is a
// host link. selfNSID is the id the host gives itself: a container link's
// PeerNSID equals it exactly when its peer or parent is in the host.
//
// Indexes alone prove nothing: they are per namespace, so a veth whose peer
// sits in another container can carry the index of an unrelated host link.
// A veth is therefore paired only when both ends name each other by index
// and namespace id. A macvlan-like link has no back reference from its
// parent; the namespace id of the parent (the host) is the proof.
func pair(container []link, nsid, selfNSID int, host func(index int) (link, bool, error)) ([]VNIC, error) {
	var vnics []VNIC
	for _, c := range container {
		if c.PeerNSID == noNSID || c.PeerNSID != selfNSID || c.PeerIndex <= 0 {
			continue
		}
		h, ok, err := host(c.PeerIndex)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // host end gone since the container was listed
		}
		if c.Kind == "veth" && (h.Kind != "veth" || h.PeerIndex != c.Index || h.PeerNSID != nsid) {
			continue
		}
		vnics = append(vnics, VNIC{
			ContainerIfname:  c.Name,
			ContainerIfindex: c.Index,
			HostIfname:       h.Name,
			HostIfindex:      h.Index,
			Kind:             c.Kind,
			ContainerStats:   c.Stats,
			HostStats:        h.Stats,
		})
	}
	sort.Slice(vnics, func(i, j int) bool { return vnics[i].ContainerIfindex < vnics[j].ContainerIfindex })
	return vnics, nil
}

// EscapeName returns an interface name as valid UTF-8, for label values and
// JSON. Names are bytes (any but '/', ':' and whitespace); valid UTF-8 is
// kept as is, and each byte of an invalid sequence becomes \xNN.
func EscapeName(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}
