package rtnl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Stats are an interface's traffic counters as the kernel keeps them for
// it (struct rtnl_link_stats64, the same numbers as
// /sys/class/net/IF/statistics), as seen from that interface: Rx is what
// it received.
type Stats struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
}

// LinkState is what an interface's link message says of its state, as
// `ip link` shows it and node_exporter exports it from sysfs
// (node_network_mtu_bytes, node_network_carrier, node_network_up).
type LinkState struct {
	MTU uint32
	// OperState is IFLA_OPERSTATE, RFC 2863's operational state: OperUp
	// (6) is "up".
	OperState uint8
	// Carrier is IFLA_CARRIER: the link has a carrier (a veth: its peer is
	// up). The kernel keeps it whatever the interface's administrative
	// state, where sysfs refuses to read it of an interface that is down.
	Carrier bool
}

// OperUp is IF_OPER_UP, the operational state "up".
const OperUp = 6

// statsFields is how many leading u64 fields of rtnl_link_stats64 Stats
// holds, in the kernel's order: rx_packets, tx_packets, rx_bytes,
// tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped.
const statsFields = 8

// ParseStats64 decodes an IFLA_STATS64 attribute. Kernels only ever
// append fields to the struct, so a longer value is fine; a shorter one is
// not counters at all and gives nil.
func ParseStats64(v []byte) *Stats {
	if len(v) < statsFields*8 {
		return nil
	}
	var f [statsFields]uint64
	for i := range f {
		f[i] = ne.Uint64(v[i*8:])
	}
	return &Stats{
		RxPackets: f[0], TxPackets: f[1],
		RxBytes: f[2], TxBytes: f[3],
		RxErrors: f[4], TxErrors: f[5],
		RxDropped: f[6], TxDropped: f[7],
	}
}

// sizeofIfStatsMsg is struct if_stats_msg: family, two pads, ifindex,
// filter_mask.
const sizeofIfStatsMsg = 12

// parseStatsMsg decodes one RTM_NEWSTATS payload: the ifindex, and its
// IFLA_STATS_LINK_64 counters (nil when absent).
func parseStatsMsg(b []byte) (int, *Stats, error) {
	if len(b) < sizeofIfStatsMsg {
		return 0, nil, errors.New("short RTM_NEWSTATS message")
	}
	index := int(int32(ne.Uint32(b[4:])))
	var s *Stats
	err := Attrs(b[sizeofIfStatsMsg:], func(typ uint16, v []byte) error {
		if typ == unix.IFLA_STATS_LINK_64 {
			s = ParseStats64(v)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("RTM_NEWSTATS for ifindex %d: %w", index, err)
	}
	return index, s, nil
}
