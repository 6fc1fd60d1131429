package collector

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// The traffic counters of both ends of every vNIC, named after
// node_exporter's node_network_* so that a user finds them where expected:
//
//	container_vnic_receive_bytes_total{...}       the container's interface, as it counts
//	container_vnic_host_receive_bytes_total{...}  the host-side veth peer, as it counts
//	container_vnic_parent_receive_bytes_total{...} the host parent of a macvlan-like link
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
type counterField struct {
	name, what string
	value      func(*vnic.Stats) uint64
}

var counterFields = []counterField{
	{"receive_bytes", "Bytes received", func(s *vnic.Stats) uint64 { return s.RxBytes }},
	{"transmit_bytes", "Bytes transmitted", func(s *vnic.Stats) uint64 { return s.TxBytes }},
	{"receive_packets", "Packets received", func(s *vnic.Stats) uint64 { return s.RxPackets }},
	{"transmit_packets", "Packets transmitted", func(s *vnic.Stats) uint64 { return s.TxPackets }},
	{"receive_errs", "Receive errors", func(s *vnic.Stats) uint64 { return s.RxErrors }},
	{"transmit_errs", "Transmit errors", func(s *vnic.Stats) uint64 { return s.TxErrors }},
	{"receive_drop", "Packets dropped on receive", func(s *vnic.Stats) uint64 { return s.RxDropped }},
	{"transmit_drop", "Packets dropped on transmit", func(s *vnic.Stats) uint64 { return s.TxDropped }},
}

var (
	vnicCounterLabels   = []string{"netns", "container_ifname", "container_ifindex", "host_ifname", "host_ifindex"}
	parentCounterLabels = []string{"host_ifname", "host_ifindex"}
	identityLabels      = []string{"container_id", "pod_uid", "runtime"}
	// With --collector.kubernetes: the pod's names, from the CRI.
	kubeLabels = []string{"container_id", "pod_uid", "runtime", "namespace", "pod"}

	containerEnd = "by a container's own interface (veth or macvlan-like), as it counts them: the container's view, and the one to use under eBPF host routing."
	hostEnd      = "by the host-side veth peer of a container's interface, as it counts them (its receive is the container's transmit); blind to traffic eBPF redirects straight into the container (bpf_redirect_peer)."
	parentEnd    = "by a host interface that container macvlan/ipvlan/vlan links sit on: shared by everything on it, never one container's."

	plainCounters    = newVNICDescs(nil)
	identityCounters = newVNICDescs(identityLabels)
	kubeCounters     = newVNICDescs(kubeLabels)
	parentCounters   = counterDescs("parent_", parentEnd, parentCounterLabels)
)

// vnicDescs are the counter descs of both ends of a vNIC, for one set of
// identity labels (after vnicCounterLabels).
type vnicDescs struct {
	labels     []string // vnicCounterLabels, then the identity labels
	cont, host []*prometheus.Desc
}

func newVNICDescs(idLabels []string) *vnicDescs {
	labels := append(append([]string{}, vnicCounterLabels...), idLabels...)
	return &vnicDescs{labels: labels, cont: counterDescs("", containerEnd, labels), host: counterDescs("host_", hostEnd, labels)}
}

// counterDescs returns one desc per counterField, in that order.
func counterDescs(prefix, end string, labels []string) []*prometheus.Desc {
	descs := make([]*prometheus.Desc, len(counterFields))
	for i, f := range counterFields {
		descs[i] = prometheus.NewDesc(namespace+"_"+prefix+f.name+"_total", f.what+" "+end, labels, nil)
	}
	return descs
}

// counterDescsFor lists the counter descs a collector emits.
func counterDescsFor(d *vnicDescs) []*prometheus.Desc {
	all := append([]*prometheus.Desc{}, parentCounters...)
	return append(append(all, d.cont...), d.host...)
}

// vnicCounters returns the counters of both ends of v, in namespace ino;
// idValues are the values of d's identity labels. A macvlan-like link's
// host end is its parent: see parentMetrics.
func vnicCounters(ino string, v vnic.VNIC, d *vnicDescs, idValues []string) []prometheus.Metric {
	labels := labelPairs(d.labels, append([]string{ino, labelValue(v.ContainerIfname), strconv.Itoa(v.ContainerIfindex),
		labelValue(v.HostIfname), strconv.Itoa(v.HostIfindex)}, idValues...))
	out := statsMetrics(d.cont, v.ContainerStats, labels)
	if v.Kind == "veth" {
		out = append(out, statsMetrics(d.host, v.HostStats, labels)...)
	}
	return out
}

// parentMetrics returns the counters of each host parent of the
// macvlan-like links in s, once per parent however many links sit on it.
func parentMetrics(s vnic.Snapshot) []prometheus.Metric {
	parents := map[int]vnic.VNIC{}
	for _, ns := range s.Namespaces {
		for _, v := range ns.VNICs {
			if v.Kind != "veth" && v.HostStats != nil {
				parents[v.HostIfindex] = v
			}
		}
	}
	indexes := make([]int, 0, len(parents))
	for i := range parents {
		indexes = append(indexes, i)
	}
	sort.Ints(indexes)
	var out []prometheus.Metric
	for _, i := range indexes {
		v := parents[i]
		out = append(out, statsMetrics(parentCounters, v.HostStats, labelPairs(parentCounterLabels, []string{labelValue(v.HostIfname), strconv.Itoa(i)}))...)
	}
	return out
}

// statsMetrics returns the eight counters of s, all with the same labels.
func statsMetrics(descs []*prometheus.Desc, s *vnic.Stats, labels []*dto.LabelPair) []prometheus.Metric {
	if s == nil {
		return nil
	}
	ms := make([]counterMetric, len(counterFields))
	out := make([]prometheus.Metric, len(counterFields))
	for i, f := range counterFields {
		ms[i] = counterMetric{desc: descs[i], labels: labels, value: float64(f.value(s))}
		out[i] = &ms[i]
	}
	return out
}

// counterMetric is a counter whose label pairs it shares with the other
// counters of the same interface. prometheus.NewConstMetric would build
// and sort them for each of the sixteen: with a thousand vNICs that was a
// third of a scrape's conversion (BenchmarkEncode).
type counterMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair // sorted by name; shared, never modified
	value  float64
}

func (m *counterMetric) Desc() *prometheus.Desc { return m.desc }

func (m *counterMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	out.Counter = &dto.Counter{Value: &m.value}
	return nil
}

// labelPairs pairs label names with values, sorted by name as the
// exposition wants them. Values are valid UTF-8: labelValue escapes names.
func labelPairs(names, values []string) []*dto.LabelPair {
	pairs := make([]dto.LabelPair, len(names))
	out := make([]*dto.LabelPair, len(names))
	for i := range names {
		pairs[i].Name, pairs[i].Value = &names[i], &values[i]
		out[i] = &pairs[i]
	}
	sort.Slice(out, func(i, j int) bool { return *out[i].Name < *out[j].Name })
	return out
}
