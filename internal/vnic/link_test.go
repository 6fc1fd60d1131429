package vnic

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linkMessage builds an RTM_NEWLINK payload as the kernel sends it.
func linkMessage(index int, name, kind string, peerIndex, peerNSID int) []byte {
	return linkMessageOf(link{Index: index, Name: name, Kind: kind, PeerIndex: peerIndex, PeerNSID: peerNSID, TargetNSID: noNSID})
}

// linkMessageOf builds the RTM_NEWLINK payload the kernel sends for l.
func linkMessageOf(l link) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(l.Index)
	msg.Type = l.Type
	msg.Flags = l.Flags
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(l.Name)).Serialize()...)
	if l.PeerIndex != 0 {
		b = append(b, nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(l.PeerIndex))).Serialize()...)
	}
	if l.PeerNSID != noNSID {
		b = append(b, nl.NewRtAttr(unix.IFLA_LINK_NETNSID, nl.Uint32Attr(uint32(l.PeerNSID))).Serialize()...)
	}
	if l.TargetNSID != noNSID {
		b = append(b, nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(l.TargetNSID))).Serialize()...)
	}
	if l.State != (LinkState{}) {
		carrier := byte(0)
		if l.State.Carrier {
			carrier = 1
		}
		b = append(b, nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(l.State.MTU)).Serialize()...)
		b = append(b, nl.NewRtAttr(unix.IFLA_OPERSTATE, []byte{l.State.OperState}).Serialize()...)
		b = append(b, nl.NewRtAttr(unix.IFLA_CARRIER, []byte{carrier}).Serialize()...)
	}
	if l.Kind != "" {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(unix.IFLA_INFO_KIND, []byte(l.Kind))
		b = append(b, info.Serialize()...)
	}
	return b
}

func TestParseLink(t *testing.T) {
	for _, tc := range []link{
		{Index: 1, Name: "lo", Type: unix.ARPHRD_LOOPBACK, Flags: unix.IFF_LOOPBACK | unix.IFF_UP, PeerNSID: noNSID, TargetNSID: noNSID},
		{Index: 2, Name: "eth0", Type: unix.ARPHRD_ETHER, Kind: "veth", PeerIndex: 13, PeerNSID: 3, TargetNSID: 4},
		{Index: 15, Name: "a.b-c_d@e", Kind: "macvlan", PeerIndex: 14, PeerNSID: 0, TargetNSID: 0},
		{Index: 70000, Name: "fifteen-bytes15", Kind: "bridge", PeerNSID: noNSID, TargetNSID: noNSID},
		{Index: 3, Name: "veth1", Kind: "veth", PeerIndex: 2, PeerNSID: 1, TargetNSID: noNSID,
			State: LinkState{MTU: 65535, OperState: OperUp, Carrier: true}},
		{Index: 4, Name: "veth2", Kind: "veth", PeerIndex: 2, PeerNSID: 1, TargetNSID: noNSID,
			State: LinkState{MTU: 1500, OperState: 2}}, // down, no carrier
	} {
		got, err := parseLink(linkMessageOf(tc))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if !reflect.DeepEqual(got, tc) {
			t.Errorf("got %+v, want %+v", got, tc)
		}
	}
}

// A kernel that ignores IFLA_TARGET_NETNSID answers with its own links,
// which carry no target id back (or, crafted, another one).
func TestCheckTarget(t *testing.T) {
	aimed := []link{{Index: 1, Name: "lo", TargetNSID: 4}, {Index: 2, Name: "eth0", TargetNSID: 4}}
	if err := checkTarget(aimed, 4); err != nil {
		t.Fatalf("honoured target: %v", err)
	}
	if err := checkTarget(nil, 4); err != nil {
		t.Fatalf("empty reply: %v", err)
	}
	if err := checkTarget([]link{{Index: 1, Name: "lo", TargetNSID: noNSID}}, noNSID); err != nil {
		t.Fatalf("host dump: %v", err)
	}
	for name, ls := range map[string][]link{
		"no target attribute": {{Index: 1, Name: "lo", TargetNSID: 4}, {Index: 9, Name: "eth9", TargetNSID: noNSID}},
		"another target":      {{Index: 1, Name: "lo", TargetNSID: 5}},
	} {
		// Through the parser, as the kernel's reply would arrive.
		var parsed []link
		for _, l := range ls {
			p, err := parseLink(linkMessageOf(l))
			if err != nil {
				t.Fatal(err)
			}
			parsed = append(parsed, p)
		}
		err := checkTarget(parsed, 4)
		if !errors.Is(err, errTargetIgnored) {
			t.Fatalf("%s: got %v, want errTargetIgnored", name, err)
		}
		msg := (&Error{PID: 42, Cause: CauseNetlink, Err: err}).Error()
		if !strings.Contains(msg, "pid 42") || !strings.Contains(msg, "4.20") || strings.Contains(msg, "\n") {
			t.Fatalf("%s: message %q must name the PID and the kernel requirement on one line", name, msg)
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
