package vnic

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linkMessage builds an RTM_NEWLINK payload as the kernel sends it.
func linkMessage(index int, name, kind string, peerIndex, peerNSID int) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)).Serialize()...)
	if peerIndex != 0 {
		b = append(b, nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(peerIndex))).Serialize()...)
	}
	if peerNSID != noNSID {
		b = append(b, nl.NewRtAttr(unix.IFLA_LINK_NETNSID, nl.Uint32Attr(uint32(peerNSID))).Serialize()...)
	}
	if kind != "" {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(unix.IFLA_INFO_KIND, []byte(kind))
		b = append(b, info.Serialize()...)
	}
	return b
}

func TestParseLink(t *testing.T) {
	for _, tc := range []link{
		{Index: 1, Name: "lo", PeerNSID: noNSID},
		{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: 3},
		{Index: 15, Name: "a.b-c_d@e", Kind: "macvlan", PeerIndex: 14, PeerNSID: 0},
		{Index: 70000, Name: "fifteen-bytes15", Kind: "bridge", PeerNSID: noNSID},
	} {
		got, err := parseLink(linkMessage(tc.Index, tc.Name, tc.Kind, tc.PeerIndex, tc.PeerNSID))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if !reflect.DeepEqual(got, tc) {
			t.Errorf("got %+v, want %+v", got, tc)
		}
	}
}

func TestParseLinkRejects(t *testing.T) {
	ok := linkMessage(2, "eth0", "veth", 13, 3)
	for name, b := range map[string][]byte{
		"empty":             nil,
		"short header":      ok[:unix.SizeofIfInfomsg-1],
		"no name":           linkMessage(2, "", "veth", 13, 3),
		"truncated attr":    append(append([]byte{}, ok[:unix.SizeofIfInfomsg]...), 0xff, 0x00, 0x03, 0x00),
		"bad linkinfo nest": append(append([]byte{}, ok...), nl.NewRtAttr(unix.IFLA_LINKINFO, []byte{0xff, 0xff, 1, 0}).Serialize()...),
	} {
		if l, err := parseLink(b); err == nil {
			t.Errorf("%s: parsed as %+v, want an error", name, l)
		}
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(linkMessage(2, "eth0", "veth", 13, 3))
	f.Add(linkMessage(1, "lo", "", 0, noNSID))
	f.Add(linkMessage(15, "mv0", "macvlan", 14, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLink(b)
		if err == nil && l.Name == "" {
			t.Fatalf("accepted a link without a name: %+v", l)
		}
	})
}

func TestParseNetnsLink(t *testing.T) {
	for in, want := range map[string]uint64{
		"net:[4026531840]":           4026531840,
		"net:[1]":                    1,
		"net:[18446744073709551615]": 18446744073709551615,
	} {
		got, err := parseNetnsLink(in)
		if err != nil || got != want {
			t.Errorf("parseNetnsLink(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "net:[]", "net:[0]", "mnt:[4026531840]", "net:[4026531840", "net:[-1]",
		"net:[18446744073709551616]", "net:[ 1]", "/proc/1/ns/net", "net:[4026531840]x"} {
		if got, err := parseNetnsLink(in); err == nil {
			t.Errorf("parseNetnsLink(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParseNetnsLink(f *testing.F) {
	f.Add("net:[4026531840]")
	f.Add("net:[]")
	f.Add("pid:[4026531836]")
	f.Fuzz(func(t *testing.T, s string) {
		ino, err := parseNetnsLink(s)
		if err == nil && (ino == 0 || s != "net:["+strconv.FormatUint(ino, 10)+"]") {
			t.Fatalf("parseNetnsLink(%q) = %d: not the canonical form", s, ino)
		}
	})
}
