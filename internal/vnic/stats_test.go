package vnic

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

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
		if got := parseStats64(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestParseLinkStats(t *testing.T) {
	want := Stats{RxPackets: 10, TxPackets: 20, RxBytes: 1000, TxBytes: 2000, TxDropped: 1}
	b := linkMessage(2, "eth0", "veth", 13, 3)
	// IFLA_STATS (32-bit) comes first in the kernel's reply: it must not
	// be read as IFLA_STATS64.
	b = append(b, nl.NewRtAttr(unix.IFLA_STATS, make([]byte, 24*4)).Serialize()...)
	b = append(b, nl.NewRtAttr(unix.IFLA_STATS64, stats64(want, 16)).Serialize()...)
	l, err := parseLink(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.Stats == nil || *l.Stats != want {
		t.Errorf("got %+v, want %+v", l.Stats, want)
	}
}

func TestLinkDumpRequest(t *testing.T) {
	b := linkDumpRequest(nil, 7, 42)
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
	if !reflect.DeepEqual(b, want) {
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

func TestParseDumpChunk(t *testing.T) {
	eth0, lo := linkMessage(2, "eth0", "veth", 13, 3), linkMessage(1, "lo", "", 0, noNSID)
	errno := func(e unix.Errno) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(-int32(e))) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for name, tc := range map[string]struct {
		in         []byte
		names      []string
		done, intr bool
		wantErr    bool
	}{
		"two links then done": {cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo), nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, eth0), nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 5, make([]byte, 4))), []string{"lo", "eth0"}, true, false, false},
		"more to come":        {nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo), []string{"lo"}, false, false, false},
		"interrupted":         {cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 5, lo), nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 5, make([]byte, 4))), []string{"lo"}, true, true, false},
		"interrupted at done": {nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 5, make([]byte, 4)), nil, true, true, false},
		"old reply skipped":   {cat(nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 4, eth0), nlmsg(unix.NLMSG_DONE, 0, 4, nil), nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo)), []string{"lo"}, false, false, false},
		"kernel refuses":      {nlmsg(unix.NLMSG_ERROR, 0, 5, errno(unix.EINVAL)), nil, false, false, true},
		"truncated":           {nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo)[:30], nil, false, false, true},
		"bad link":            {nlmsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, 5, lo[:10]), nil, false, false, true},
	} {
		var names []string
		done, intr, err := parseDumpChunk(tc.in, 5, unix.RTM_NEWLINK, func(m []byte) error {
			l, err := parseLink(m)
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

func TestParseStatsMsg(t *testing.T) {
	want := Stats{RxPackets: 3, TxPackets: 4, RxBytes: 300, TxBytes: 400, RxDropped: 1}
	header := func(index int32) []byte {
		b := make([]byte, sizeofIfStatsMsg)
		binary.NativeEndian.PutUint32(b[4:], uint32(index))
		return b
	}
	with := append(header(17), nl.NewRtAttr(unix.IFLA_STATS_LINK_64, stats64(want, 16)).Serialize()...)
	index, s, err := parseStatsMsg(with)
	if err != nil || index != 17 || s == nil || *s != want {
		t.Errorf("got %d %+v %v, want 17 %+v", index, s, err, want)
	}
	// Other attributes (a filter asked for more) are skipped; without the
	// 64-bit counters there are none.
	other := append(header(18), nl.NewRtAttr(unix.IFLA_STATS_LINK_XSTATS, []byte{1, 2, 3, 4}).Serialize()...)
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
	req := statsDumpRequest(nil, 9)
	if len(req) != 28 || binary.NativeEndian.Uint16(req[4:]) != unix.RTM_GETSTATS ||
		binary.NativeEndian.Uint32(req[unix.SizeofNlMsghdr+8:]) != 1<<(unix.IFLA_STATS_LINK_64-1) {
		t.Errorf("request %v", req)
	}
}
