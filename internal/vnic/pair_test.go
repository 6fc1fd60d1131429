package vnic

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

func hostTable(ls ...link) hostLookup {
	return func(i int, out *link) (bool, error) {
		for _, l := range ls {
			if l.Index == i {
				*out = l
				return true, nil
			}
		}
		*out = link{}
		return false, nil
	}
}

// The host numbers the container's namespace 4 and itself 9.
const containerNSID, hostSelf = 4, 9

func TestPair(t *testing.T) {
	host := hostTable(
		link{Index: 13, Name: "veth13", Kind: "veth", PeerIndex: 2, PeerNSID: containerNSID},
		link{Index: 14, Name: "br0", Kind: "bridge", Type: unix.ARPHRD_ETHER, PeerNSID: noNSID},
		link{Index: 15, Name: "ifb1", Kind: "ifb", Type: unix.ARPHRD_ETHER, PeerNSID: noNSID},
		link{Index: 16, Name: "lo", Type: unix.ARPHRD_LOOPBACK, Flags: unix.IFF_LOOPBACK, PeerNSID: noNSID},
		link{Index: 17, Name: "tun0", Kind: "tun", Type: unix.ARPHRD_NONE, PeerNSID: noNSID},
		link{Index: 20, Name: "vethother", Kind: "veth", PeerIndex: 3, PeerNSID: 5}, // peer in nsid 5
		link{Index: 21, Name: "vethsameidx", Kind: "veth", PeerIndex: 6, PeerNSID: 5},
		link{Index: 30, Name: "notveth", Kind: "bridge", PeerIndex: 7, PeerNSID: noNSID},
	)
	container := []link{
		{Index: 1, Name: "lo", PeerNSID: noNSID},
		{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: hostSelf},
		// Peer in another container (nsid 5) whose index 21 exists on the host,
		// and that host veth's peer index even equals ours: still not ours.
		{Index: 6, Name: "tocontainer", Kind: "veth", PeerIndex: 21, PeerNSID: 5},
		// Claims a host peer, but the host link points back elsewhere.
		{Index: 3, Name: "liar", Kind: "veth", PeerIndex: 20, PeerNSID: hostSelf},
		// Claims a host peer that is not a veth.
		{Index: 7, Name: "odd", Kind: "veth", PeerIndex: 30, PeerNSID: hostSelf},
		// Host end already gone.
		{Index: 8, Name: "gone", Kind: "veth", PeerIndex: 99, PeerNSID: hostSelf},
		{Index: 5, Name: "mv0", Kind: "macvlan", PeerIndex: 14, PeerNSID: hostSelf},
		// A vxlan moved in from the host reports its old index with the
		// host's id: that names no lower device (seen on 6.18).
		{Index: 10, Name: "vx0", Kind: "vxlan", PeerIndex: 15, PeerNSID: hostSelf},
		// Kinds that name no lower device, whatever IFLA_LINK says.
		{Index: 11, Name: "br1", Kind: "bridge", PeerIndex: 14, PeerNSID: hostSelf},
		{Index: 12, Name: "nokind", PeerIndex: 14, PeerNSID: hostSelf},
		// A stacked kind whose claimed parent cannot be a lower device.
		{Index: 13, Name: "mvlo", Kind: "macvlan", PeerIndex: 16, PeerNSID: hostSelf},
		{Index: 14, Name: "ipvtun", Kind: "ipvlan", PeerIndex: 17, PeerNSID: hostSelf},
		{Index: 15, Name: "vlan15", Kind: "vlan", PeerIndex: 14, PeerNSID: hostSelf},
		// Parent inside the container itself.
		{Index: 9, Name: "vlan9", Kind: "vlan", PeerIndex: 2, PeerNSID: noNSID},
	}
	got, err := pair(container, containerNSID, hostSelf, host)
	if err != nil {
		t.Fatal(err)
	}
	want := []VNIC{
		{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth13", HostIfindex: 13, Kind: "veth"},
		{ContainerIfname: "mv0", ContainerIfindex: 5, HostIfname: "br0", HostIfindex: 14, Kind: "macvlan"},
		{ContainerIfname: "vlan15", ContainerIfindex: 15, HostIfname: "br0", HostIfindex: 14, Kind: "vlan"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestPairUnknownSelfID(t *testing.T) {
	// Before the host has an id for itself no container link can point at it.
	got, err := pair([]link{{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: 0}}, 0, noNSID,
		hostTable(link{Index: 13, Name: "h", Kind: "veth", PeerIndex: 2, PeerNSID: 0}))
	if err != nil || got != nil {
		t.Fatalf("got %+v, %v; want nothing", got, err)
	}
}

func TestPairLookupError(t *testing.T) {
	boom := errors.New("boom")
	_, err := pair([]link{{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: hostSelf}}, containerNSID, hostSelf,
		func(int, *link) (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
}

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"eth0":    "eth0",
		"é.-_9\"": "é.-_9\"",
		// Valid UTF-8 comes out as the kernel has it, backslash included
		// (issue 21: `cbbs\x` came out as `cbbs\\x`).
		`cbbs\x`:         `cbbs\x`,
		`a\b`:            `a\b`,
		"e\xff":          "e:ff",
		"\xc3\x28ab\x80": ":c3(ab:80",
		// A literal backslash-x name and the raw byte.
		`adv\xffz`: `adv\xffz`,
		"adv\xffz": "adv:ffz",
		"\uFFFDok": "\uFFFDok", // a valid U+FFFD is a character, not an invalid byte
		"\\\xfe\\": `\:fe\`,
	} {
		got := EscapeName(in)
		if got != want {
			t.Errorf("EscapeName(%q) = %q, want %q", in, got, want)
		}
		back, err := UnescapeName(got)
		if err != nil || back != in {
			t.Errorf("UnescapeName(%q) = %q, %v; want %q", got, back, err, in)
		}
	}
	// Not the output of EscapeName: a lone or short escape, upper case,
	// and an escape of bytes that form valid UTF-8 (é).
	for _, bad := range []string{"a:", "a:f", "a:zz", "a:FF", "a:c3:a9"} {
		if got, err := UnescapeName(bad); err == nil {
			t.Errorf("UnescapeName(%q) = %q, want an error", bad, got)
		}
	}
}

// Two different names never escape to the same text: the escape is
// reversible, its output is valid UTF-8, and only invalid names change.
func FuzzEscapeName(f *testing.F) {
	for _, s := range []string{"eth0", `adv\xffz`, "adv\xffz", "\\\\", "é\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, ":") {
			t.Skip("the kernel refuses ':' in interface names")
		}
		e := EscapeName(s)
		if !utf8.ValidString(e) {
			t.Fatalf("EscapeName(%q) = %q is not UTF-8", s, e)
		}
		// Valid names are kept; escaped ones carry a ':', which no real
		// name has, so they never look like another interface.
		if utf8.ValidString(s) != (e == s) || utf8.ValidString(s) == strings.Contains(e, ":") {
			t.Fatalf("EscapeName(%q) = %q", s, e)
		}
		back, err := UnescapeName(e)
		if err != nil || back != s {
			t.Fatalf("UnescapeName(EscapeName(%q)) = %q, %v", s, back, err)
		}
	})
}
