package collector

import (
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// The traffic counters and link state of both ends of every vNIC, named
// after node_exporter's node_network_* so that a user finds them where
// expected:
//
//	container_vnic_receive_bytes_total{...}        the container's interface, as it counts
//	container_vnic_host_receive_bytes_total{...}   the host-side veth peer, as it counts
//	container_vnic_parent_receive_bytes_total{...} the host parent of a macvlan-like link
//	container_vnic_up, _carrier, _mtu_bytes         and the same for host_ and parent_
//
// Three families instead of an end label: the host end's receive is the
// container's transmit, and a parent's counters are not a container's at
// all, so no sum over an end label would mean anything; separate names
// make such a sum impossible to write by accident.
//
// A series is one interface for its whole life: besides the names, the
// labels carry both ifindexes, so that a namespace whose inode is reused,
// or an interface deleted and made again under the same name, starts new
// series instead of sending one backwards.

// An end of a vNIC, each exported under its own family names.
const (
	containerEnd = iota
	hostEnd
	parentEnd
	numEnds
)

// Ends are the names --collector.counters.ends takes, in end order.
var Ends = []string{"container", "host", "parent"}

// Kinds are the names --collector.counters.kinds takes.
var Kinds = []string{"bytes", "packets", "errors", "drops", "state"}

var endPrefix = [numEnds]string{"", "host_", "parent_"}

// endHelp starts every HELP of an end's families, so that no two ends
// share one (Prometheus and Grafana show the HELP, not the name's prefix),
// and endDetail ends it.
var (
	endHelp = [numEnds]string{
		"Container end (the container's own interface, veth or macvlan-like)",
		"Host end (the host-side veth peer of a container's interface)",
		"Parent (a host interface container macvlan/ipvlan/vlan links sit on)",
	}
	endDetail = [numEnds]string{
		"as the container counts: its own view, and the one to use under eBPF host routing.",
		"as the host counts: its receive is the container's transmit, and it is blind to traffic eBPF redirects straight into the container (bpf_redirect_peer).",
		"shared by everything on it, never one container's.",
	}
)

type vnicField struct {
	kind, name, what string
	typ              dto.MetricType
	value            func(*vnic.Stats, vnic.LinkState) float64
}

// familyName is the family of f at end e: counters get _total.
func (f vnicField) familyName(e int) string {
	name := namespace + "_" + endPrefix[e] + f.name
	if f.typ == dto.MetricType_COUNTER {
		name += "_total"
	}
	return name
}

func (f vnicField) help(e int) string {
	return fmt.Sprintf("%s: %s, %s", endHelp[e], f.what, endDetail[e])
}

func counter(kind, name, what string, v func(*vnic.Stats) uint64) vnicField {
	return vnicField{kind, name, what, dto.MetricType_COUNTER,
		func(s *vnic.Stats, _ vnic.LinkState) float64 { return float64(v(s)) }}
}

func gauge(name, what string, v func(vnic.LinkState) float64) vnicField {
	return vnicField{"state", name, what, dto.MetricType_GAUGE, func(_ *vnic.Stats, s vnic.LinkState) float64 { return v(s) }}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// vnicFields are the families of each end. The eight counters come first,
// in the order the tests read sysfs' statistics files.
var vnicFields = []vnicField{
	counter("bytes", "receive_bytes", "bytes received", func(s *vnic.Stats) uint64 { return s.RxBytes }),
	counter("bytes", "transmit_bytes", "bytes transmitted", func(s *vnic.Stats) uint64 { return s.TxBytes }),
	counter("packets", "receive_packets", "packets received", func(s *vnic.Stats) uint64 { return s.RxPackets }),
	counter("packets", "transmit_packets", "packets transmitted", func(s *vnic.Stats) uint64 { return s.TxPackets }),
	counter("errors", "receive_errs", "receive errors", func(s *vnic.Stats) uint64 { return s.RxErrors }),
	counter("errors", "transmit_errs", "transmit errors", func(s *vnic.Stats) uint64 { return s.TxErrors }),
	counter("drops", "receive_drop", "packets dropped on receive", func(s *vnic.Stats) uint64 { return s.RxDropped }),
	counter("drops", "transmit_drop", "packets dropped on transmit", func(s *vnic.Stats) uint64 { return s.TxDropped }),
	gauge("up", "1 if its operational state is up (node_network_up)", func(s vnic.LinkState) float64 {
		return boolValue(s.OperState == vnic.OperUp)
	}),
	gauge("carrier", "1 if it has a carrier, for a veth: its peer is up (node_network_carrier)", func(s vnic.LinkState) float64 {
		return boolValue(s.Carrier)
	}),
	gauge("mtu_bytes", "its MTU in bytes (node_network_mtu_bytes)", func(s vnic.LinkState) float64 { return float64(s.MTU) }),
}

// counterFields are the eight counters of vnicFields.
var counterFields = vnicFields[:8]

var (
	vnicLabels   = []string{"netns", "container_ifname", "container_ifindex", "host_ifname", "host_ifindex"}
	parentLabels = []string{"host_ifname", "host_ifindex"}
)

// parseChoice turns a comma-separated list of names out of valid into a
// set; what names what the list chooses, for the error.
func parseChoice(list string, valid []string, what string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		known := false
		for _, v := range valid {
			known = known || v == name
		}
		if !known {
			return nil, fmt.Errorf("unknown %s %q: choose among %s", what, name, strings.Join(valid, ","))
		}
		set[name] = true
	}
	return set, nil
}
