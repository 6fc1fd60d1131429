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
