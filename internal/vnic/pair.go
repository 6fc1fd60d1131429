package vnic

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
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
	// The state of both ends, from the same link messages as the
	// counters; for a macvlan-like link HostState is the parent's.
	ContainerState LinkState `json:"-"`
	HostState      LinkState `json:"-"`
}

// pair returns the container links of namespace nsid whose other end is a
// host link. selfNSID is the id the host gives itself: a container link's
// PeerNSID equals it exactly when its peer or parent is in the host.
//
// Indexes alone prove nothing: they are per namespace, so a veth whose peer
// sits in another container can carry the index of an unrelated host link.
// A veth is therefore paired only when both ends name each other by index
// and namespace id. A stacked link (macvlan and the like) has no back
// reference from its parent; only kinds whose IFLA_LINK names a lower device
// (see stacked) may report one, and only a parent that exists in the
// host and can carry such a link.
func pair(container []link, nsid, selfNSID int, host hostLookup) ([]VNIC, error) {
	var vnics []VNIC
	var h link
	for i := range container {
		c := &container[i] // by pointer: a copy of each link would deepen every lookup's stack
		if c.PeerNSID == noNSID || c.PeerNSID != selfNSID || c.PeerIndex <= 0 {
			continue
		}
		ok, err := host(c.PeerIndex, &h)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // host end gone since the container was listed
		}
		switch {
		case c.Kind == "veth":
			if h.Kind != "veth" || h.PeerIndex != c.Index || h.PeerNSID != nsid {
				continue
			}
		case !stacked(c.Kind) || !canBeLower(&h):
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
			ContainerState:   c.State,
			HostState:        h.State,
		})
	}
	sort.Slice(vnics, func(i, j int) bool { return vnics[i].ContainerIfindex < vnics[j].ContainerIfindex })
	return vnics, nil
}

// Kinds are the link kinds a VNIC can have: "veth", then the stacked ones
// (see stacked).
var Kinds = []string{"veth", "macvlan", "macvtap", "ipvlan", "ipvtap", "vlan"}

// stacked reports whether links of kind name, by their IFLA_LINK and
// IFLA_LINK_NETNSID, the lower device they sit on. Other kinds report
// IFLA_LINK for other reasons (a vxlan moved into a namespace reports its
// own old index with the host's id, for instance): they have no host vNIC.
// (A slice of constants is laid out by the linker; a package-level map
// would be built at every start of psnic.)
func stacked(kind string) bool {
	return kind != "veth" && slices.Contains(Kinds, kind)
}

// canBeLower reports whether a host link may be the lower device of a
// stacked link: every stacked kind needs an Ethernet device, and none sits
// on a loopback.
func canBeLower(h *link) bool {
	return h.Type == unix.ARPHRD_ETHER && h.Flags&unix.IFF_LOOPBACK == 0
}

// EscapeName returns an interface name as valid UTF-8, for label values and
// JSON. A name that is valid UTF-8 is returned exactly as the kernel has it,
// backslashes and all, so it joins with what ip and node_exporter show.
// Only a name that is not valid UTF-8 is escaped: each byte that is not
// part of a valid UTF-8 sequence becomes ':' and two lowercase hex digits
// ("e\xff" becomes "e:ff"). The kernel refuses ':' in interface names
// (dev_valid_name), so an escaped name never equals a real one, and
// UnescapeName reverses it.
func EscapeName(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			fmt.Fprintf(&b, ":%02x", s[i])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// UnescapeName reverses EscapeName: each ':' and two hex digits is the byte
// they spell. It fails on text EscapeName cannot have produced from an
// interface name.
func UnescapeName(s string) (string, error) {
	if !strings.Contains(s, ":") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isLowerHexDigit(s[i+1]) || !isLowerHexDigit(s[i+2]) {
			return "", fmt.Errorf("name %q: bad escape at byte %d", s, i)
		}
		v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
		b.WriteByte(byte(v))
		i += 2
	}
	if name := b.String(); EscapeName(name) == s {
		return name, nil
	}
	// Valid UTF-8 was escaped: EscapeName only escapes invalid bytes.
	return "", fmt.Errorf("name %q: escapes a byte that is valid UTF-8 there", s)
}

func isLowerHexDigit(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
