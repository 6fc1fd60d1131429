package rtnl

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// attr encodes one rtattr, padded.
func attr(typ uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%unix.RTA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v int) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

// linkMessage builds an RTM_NEWLINK payload as the kernel sends it.
func linkMessage(index int, name, kind string, peerIndex, peerNSID int) []byte {
	return linkMessageOf(Link{Index: index, Name: name, Kind: kind, PeerIndex: peerIndex, PeerNSID: peerNSID, TargetNSID: NoNSID})
}

// linkMessageOf builds the RTM_NEWLINK payload the kernel sends for l.
func linkMessageOf(l Link) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint16(b[2:], l.Type)
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(l.Index)))
	binary.NativeEndian.PutUint32(b[8:], l.Flags)
	b = append(b, attr(unix.IFLA_IFNAME, append([]byte(l.Name), 0))...)
	if l.PeerIndex != 0 {
		b = append(b, attr(unix.IFLA_LINK, u32(l.PeerIndex))...)
	}
	if l.PeerNSID != NoNSID {
		b = append(b, attr(unix.IFLA_LINK_NETNSID, u32(l.PeerNSID))...)
	}
	if l.TargetNSID != NoNSID {
		b = append(b, attr(unix.IFLA_TARGET_NETNSID, u32(l.TargetNSID))...)
	}
	if l.State != (LinkState{}) {
		carrier := byte(0)
		if l.State.Carrier {
			carrier = 1
		}
		b = append(b, attr(unix.IFLA_MTU, u32(int(l.State.MTU)))...)
		b = append(b, attr(unix.IFLA_OPERSTATE, []byte{l.State.OperState})...)
		b = append(b, attr(unix.IFLA_CARRIER, []byte{carrier})...)
	}
	if l.Kind != "" {
		b = append(b, attr(unix.IFLA_LINKINFO, attr(unix.IFLA_INFO_KIND, []byte(l.Kind)))...)
	}
	return b
}

func TestParseLink(t *testing.T) {
	for _, tc := range []Link{
		{Index: 1, Name: "lo", Type: unix.ARPHRD_LOOPBACK, Flags: unix.IFF_LOOPBACK | unix.IFF_UP, PeerNSID: NoNSID, TargetNSID: NoNSID},
		{Index: 2, Name: "eth0", Type: unix.ARPHRD_ETHER, Kind: "veth", PeerIndex: 13, PeerNSID: 3, TargetNSID: 4},
		{Index: 15, Name: "a.b-c_d@e", Kind: "macvlan", PeerIndex: 14, PeerNSID: 0, TargetNSID: 0},
		{Index: 70000, Name: "fifteen-bytes15", Kind: "bridge", PeerNSID: NoNSID, TargetNSID: NoNSID},
		{Index: 3, Name: "veth1", Kind: "veth", PeerIndex: 2, PeerNSID: 1, TargetNSID: NoNSID,
			State: LinkState{MTU: 65535, OperState: OperUp, Carrier: true}},
		{Index: 4, Name: "veth2", Kind: "veth", PeerIndex: 2, PeerNSID: 1, TargetNSID: NoNSID,
			State: LinkState{MTU: 1500, OperState: 2}}, // down, no carrier
	} {
		got, err := ParseLink(linkMessageOf(tc))
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
	aimed := []Link{{Index: 1, Name: "lo", TargetNSID: 4}, {Index: 2, Name: "eth0", TargetNSID: 4}}
	if err := CheckTarget(aimed, 4); err != nil {
		t.Fatalf("honoured target: %v", err)
	}
	if err := CheckTarget(nil, 4); err != nil {
		t.Fatalf("empty reply: %v", err)
	}
	if err := CheckTarget([]Link{{Index: 1, Name: "lo", TargetNSID: NoNSID}}, NoNSID); err != nil {
		t.Fatalf("host dump: %v", err)
	}
	for name, ls := range map[string][]Link{
		"no target attribute": {{Index: 1, Name: "lo", TargetNSID: 4}, {Index: 9, Name: "eth9", TargetNSID: NoNSID}},
		"another target":      {{Index: 1, Name: "lo", TargetNSID: 5}},
	} {
		// Through the parser, as the kernel's reply would arrive.
		var parsed []Link
		for _, l := range ls {
			p, err := ParseLink(linkMessageOf(l))
			if err != nil {
				t.Fatal(err)
			}
			parsed = append(parsed, p)
		}
		if err := CheckTarget(parsed, 4); !errors.Is(err, ErrTargetIgnored) {
			t.Fatalf("%s: got %v, want ErrTargetIgnored", name, err)
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
		"bad linkinfo nest": append(append([]byte{}, ok...), attr(unix.IFLA_LINKINFO, []byte{0xff, 0xff, 1, 0})...),
	} {
		if l, err := ParseLink(b); err == nil {
			t.Errorf("%s: parsed as %+v, want an error", name, l)
		}
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(linkMessage(2, "eth0", "veth", 13, 3))
	f.Add(linkMessage(1, "lo", "", 0, NoNSID))
	f.Add(linkMessage(15, "mv0", "macvlan", 14, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLink(b)
		if err == nil && l.Name == "" {
			t.Fatalf("accepted a link without a name: %+v", l)
		}
	})
}

// stats64 encodes counters as the kernel's rtnl_link_stats64, with extra
// trailing fields as newer kernels append them.
func stats64(s Stats, extra int) []byte {
	b := make([]byte, 0, (statsFields+extra)*8)
	for _, v := range []uint64{s.RxPackets, s.TxPackets, s.RxBytes, s.TxBytes, s.RxErrors, s.TxErrors, s.RxDropped, s.TxDropped} {
		b = binary.NativeEndian.AppendUint64(b, v)
	}
	for i := 0; i < extra; i++ {
		b = binary.NativeEndian.AppendUint64(b, 0xdead)
	}
	return b
}

func TestParseStats64(t *testing.T) {
	all := Stats{RxPackets: 1, TxPackets: 2, RxBytes: 3, TxBytes: 4, RxErrors: 5, TxErrors: 6, RxDropped: 7, TxDropped: 8}
	huge := Stats{RxBytes: 1<<64 - 1, TxBytes: 1 << 40}
	for name, tc := range map[string]struct {
		in   []byte
		want *Stats
	}{
		"every field in its place": {stats64(all, 0), &all},
		"24 fields as on 6.18":     {stats64(all, 16), &all},
		"64-bit values":            {stats64(huge, 3), &huge},
		"short: not counters":      {stats64(all, 0)[:63], nil},
		"empty":                    {nil, nil},
	} {
		if got := ParseStats64(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestParseLinkStats(t *testing.T) {
	want := Stats{RxPackets: 10, TxPackets: 20, RxBytes: 1000, TxBytes: 2000, TxDropped: 1}
	b := linkMessage(2, "eth0", "veth", 13, 3)
	// IFLA_STATS (32-bit) comes first in the kernel's reply: it must not
	// be read as IFLA_STATS64.
	b = append(b, attr(unix.IFLA_STATS, make([]byte, 24*4))...)
	b = append(b, attr(unix.IFLA_STATS64, stats64(want, 16))...)
	l, err := ParseLink(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.Stats == nil || *l.Stats != want {
		t.Errorf("got %+v, want %+v", l.Stats, want)
	}
}

func TestParseStatsMsg(t *testing.T) {
	want := Stats{RxPackets: 3, TxPackets: 4, RxBytes: 300, TxBytes: 400, RxDropped: 1}
	header := func(index int32) []byte {
		b := make([]byte, sizeofIfStatsMsg)
		binary.NativeEndian.PutUint32(b[4:], uint32(index))
		return b
	}
	with := append(header(17), attr(unix.IFLA_STATS_LINK_64, stats64(want, 16))...)
	index, s, err := parseStatsMsg(with)
	if err != nil || index != 17 || s == nil || *s != want {
		t.Errorf("got %d %+v %v, want 17 %+v", index, s, err, want)
	}
	// Other attributes (a filter asked for more) are skipped; without the
	// 64-bit counters there are none.
	other := append(header(18), attr(unix.IFLA_STATS_LINK_XSTATS, []byte{1, 2, 3, 4})...)
	if index, s, err := parseStatsMsg(other); err != nil || index != 18 || s != nil {
		t.Errorf("got %d %+v %v, want 18 and no counters", index, s, err)
	}
	for name, bad := range map[string][]byte{
		"short":     header(1)[:8],
		"bad attrs": append(header(1), 0xff, 0xff, 1, 0),
	} {
		if _, _, err := parseStatsMsg(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLinkDumpRequest(t *testing.T) {
	b := newRequest(nil, unix.RTM_GETLINK, unix.NLM_F_DUMP, unix.SizeofIfInfomsg).u32(unix.IFLA_TARGET_NETNSID, 42)
	b.seal(7)
	want := []byte{
		40, 0, 0, 0, // length
		unix.RTM_GETLINK, 0, unix.NLM_F_REQUEST | unix.NLM_F_DUMP&0xff, unix.NLM_F_DUMP >> 8, // type, flags
		7, 0, 0, 0, 0, 0, 0, 0, // seq, pid
		unix.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg
		8, 0, unix.IFLA_TARGET_NETNSID, 0, 42, 0, 0, 0, // IFLA_TARGET_NETNSID
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the expected bytes are little-endian")
	}
	if !reflect.DeepEqual([]byte(b), want) {
		t.Errorf("got  %v\nwant %v", b, want)
	}
}

// nlmsg encodes one netlink message.
func nlmsg(typ, flags uint16, seq uint32, payload []byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(payload)+3)
	binary.NativeEndian.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(payload)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b = append(b, payload...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestReadReply(t *testing.T) {
	eth0, lo := linkMessage(2, "eth0", "veth", 13, 3), linkMessage(1, "lo", "", 0, NoNSID)
	errno := func(e unix.Errno) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(-int32(e))) }
	for name, tc := range map[string]struct {
		in         []byte
		dump       bool
		names      []string
		done, intr bool
		wantErr    bool
	}{
		"two links then done":     {cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo), nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, eth0), nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 5, make([]byte, 4))), true, []string{"lo", "eth0"}, true, false, false},
		"more to come":            {nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo), true, []string{"lo"}, false, false, false},
		"interrupted":             {cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 5, lo), nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 5, make([]byte, 4))), true, []string{"lo"}, true, true, false},
		"interrupted at done":     {nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 5, make([]byte, 4)), true, nil, true, true, false},
		"old reply skipped":       {cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 4, eth0), nlmsg(unix.NLMSG_DONE, 0, 4, nil), nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo)), true, []string{"lo"}, false, false, false},
		"kernel refuses":          {nlmsg(unix.NLMSG_ERROR, 0, 5, errno(unix.EINVAL)), true, nil, true, false, true},
		"acknowledged":            {nlmsg(unix.NLMSG_ERROR, 0, 5, errno(0)), false, nil, true, false, false},
		"truncated":               {nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo)[:30], true, nil, false, false, true},
		"bad link":                {nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo[:10]), true, nil, false, false, true},
		"a get ends at its reply": {cat(nlmsg(unix.RTM_NEWLINK, 0, 5, eth0), nlmsg(unix.RTM_NEWLINK, 0, 5, lo)), false, []string{"eth0"}, true, false, false},
	} {
		var names []string
		done, intr, err := readReply(tc.in, 5, unix.RTM_NEWLINK, tc.dump, func(m []byte) error {
			l, err := ParseLink(m)
			if err == nil {
				names = append(names, l.Name)
			}
			return err
		})
		if (err != nil) != tc.wantErr || done != tc.done || intr != tc.intr || !reflect.DeepEqual(names, tc.names) {
			t.Errorf("%s: done %v intr %v names %v err %v; want done %v intr %v names %v error %v",
				name, done, intr, names, err, tc.done, tc.intr, tc.names, tc.wantErr)
		}
	}
}

func TestParseNotification(t *testing.T) {
	nf, known, err := parseNotification(unix.RTM_NEWLINK, linkMessage(2, "eth0", "veth", 13, 3), 4)
	if !known || err != nil || nf.From != 4 || nf.Type != unix.RTM_NEWLINK || nf.Link.Name != "eth0" || nf.Link.PeerNSID != 3 {
		t.Fatalf("link event: %+v %v %v", nf, known, err)
	}
	// A link event that cannot be read may have hidden a change: an error,
	// which the drain reports as an overflow.
	if _, _, err := parseNotification(unix.RTM_DELLINK, []byte{1, 2}, 4); err == nil {
		t.Fatal("unreadable link event accepted")
	}
	if _, known, err := parseNotification(unix.RTM_NEWADDR, nil, 4); known || err != nil {
		t.Fatal("address event accepted")
	}
	for _, data := range [][]byte{{0}, {0, 0, 0, 0}, {0, 0, 0, 0, 0xff, 0xff, 1, 0}} {
		if _, _, err := parseNotification(unix.RTM_DELNSID, data, 4); err == nil {
			t.Fatalf("unreadable nsid event %v accepted", data)
		}
	}
	nf, known, err = parseNotification(unix.RTM_DELNSID, []byte{0, 0, 0, 0, 8, 0, 1, 0, 5, 0, 0, 0}, 9)
	if !known || err != nil || nf.NSID != 5 || nf.From != 9 {
		t.Fatalf("nsid event: %+v %v %v", nf, known, err)
	}
	// A control message header claiming more than there is.
	if _, err := sourceNSID([]byte{255, 0, 0, 0, 0, 0, 0, 0, 0x0e, 1, 0, 0, 8, 0, 0, 0}); err == nil {
		t.Fatal("truncated control message accepted")
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add(uint16(unix.RTM_NEWLINK), linkMessage(2, "eth0", "veth", 13, 3))
	f.Add(uint16(unix.RTM_DELNSID), []byte{0, 0, 0, 0, 8, 0, 1, 0, 5, 0, 0, 0})
	f.Add(uint16(unix.RTM_NEWNSID), []byte{0, 0, 0, 0, 8, 0, 1, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, typ uint16, data []byte) {
		nf, known, err := parseNotification(typ, data, 7)
		if known && err != nil {
			t.Fatalf("both an event and an error: %+v %v", nf, err)
		}
		if !known {
			return
		}
		if nf.From != 7 || nf.Type != typ {
			t.Fatalf("event %+v lost its source or type", nf)
		}
		if (typ == unix.RTM_NEWNSID || typ == unix.RTM_DELNSID) && nf.NSID == NoNSID {
			t.Fatalf("nsid event accepted without an id: %+v", nf)
		}
	})
}

func TestMessages(t *testing.T) {
	two := cat(nlmsg(1, 0, 1, []byte{1, 2, 3}), nlmsg(2, 0, 2, nil))
	var types []uint16
	if err := Messages(two, func(m Message) error { types = append(types, m.Type); return nil }); err != nil || !reflect.DeepEqual(types, []uint16{1, 2}) {
		t.Fatalf("got %v %v", types, err)
	}
	overrun := nlmsg(1, 0, 1, []byte{1, 2, 3, 4})
	binary.NativeEndian.PutUint32(overrun, 64)
	if err := Messages(overrun, func(Message) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Fatalf("overrun: %v", err)
	}
	stop := errors.New("stop")
	if err := Messages(two, func(Message) error { return stop }); err != stop {
		t.Fatalf("f's error: %v", err)
	}
}
