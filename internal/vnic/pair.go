package vnic

import (
	"fmt"
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
// (see stackedKinds) may report one, and only a parent that exists in the
// host and can carry such a link.
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
		switch {
		case c.Kind == "veth":
			if h.Kind != "veth" || h.PeerIndex != c.Index || h.PeerNSID != nsid {
				continue
			}
		case !stackedKinds[c.Kind] || !canBeLower(h):
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

// stackedKinds are the link kinds whose IFLA_LINK and IFLA_LINK_NETNSID
// name the lower device they sit on. Other kinds report IFLA_LINK for other
// reasons (a vxlan moved into a namespace reports its own old index with the
// host's id, for instance): they have no host vNIC.
var stackedKinds = map[string]bool{
	"macvlan": true, "macvtap": true, "ipvlan": true, "ipvtap": true, "vlan": true,
}

// canBeLower reports whether a host link may be the lower device of a
// stacked link: every stacked kind needs an Ethernet device, and none sits
// on a loopback.
func canBeLower(h link) bool {
	return h.Type == unix.ARPHRD_ETHER && h.Flags&unix.IFF_LOOPBACK == 0
}

// EscapeName returns an interface name as valid UTF-8, for label values and
// JSON. Names are bytes (any but '/', ':' and whitespace). The escape is
// reversible (UnescapeName), so two interfaces never share a text: a
// backslash becomes \\, each byte of an invalid UTF-8 sequence \xNN, and
// everything else is kept as is.
func EscapeName(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// UnescapeName reverses EscapeName. It fails on text EscapeName cannot
// have produced.
func UnescapeName(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", fmt.Errorf("name %q: bad escape at byte %d", s, i)
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			return "", fmt.Errorf("name %q: bad escape at byte %d", s, i)
		}
	}
	return b.String(), nil
}
