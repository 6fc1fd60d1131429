// Package collector exposes the host vNIC of every container network
// namespace as Prometheus metrics, brought up to date on each scrape.
package collector

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

const namespace = "container_vnic"

// Resolver is what the collector needs of *vnic.Resolver.
type Resolver interface {
	ResolveAll() (vnic.Snapshot, error)
}

// IdentityFunc returns the container identity of a namespace's process, as
// (*cgroupid.Lookup).Identity does.
type IdentityFunc func(netns uint64, pid int) (cgroupid.Identity, error)

// Collector is a prometheus.Collector that resolves all container network
// namespaces on every Collect. Collects that arrive while a resolution runs
// share it: ten scrapers at once cost one resolution, each still counted
// and limited by promhttp as its own request. Its Handler serves the same
// families faster, encoding them once per resolution.
//
// Its options (WithIdentity, WithLabels, WithKubernetes, WithSeries) are set before its
// first use.
type Collector struct {
	resolver Resolver
	logger   *slog.Logger
	sources  []LabelSource
	// sourcesMu keeps one resolution's sources running at a time.
	sourcesMu sync.Mutex
	kube      *kubeSource // nil: no Kubernetes families
	ends      [numEnds]bool
	kinds     map[string]bool

	defsOnce sync.Once
	defsVal  *defs

	flights   flights
	bufs      bufPool
	overflows atomic.Uint64
	since     func(time.Time) time.Duration // time.Since; fixed in tests
}

// LabelSource adds labels to container_vnic_info and to every family of
// the container and host ends (counters and state), the same for every
// series of a namespace: container and pod identity from the cgroup
// (WithIdentity), Kubernetes namespace and pod from the CRI...
type LabelSource struct {
	// Names are the label names, fixed for the collector's life; valid
	// Prometheus label names, not already used by the families.
	Names []string
	// Values returns one value per name for namespace netns, whose oldest
	// process is pid (its pid label); a value it does not know is "", and
	// a nil or short slice leaves the rest "". It is called once per
	// namespace with vNICs per resolution, never concurrently.
	Values func(netns uint64, pid int) []string
	// Prepare, if set, is called once per resolution before this source's
	// Values calls, never concurrently with them or itself, with every
	// namespace with vNICs and the values the sources added before this one
	// gave it: a source that asks something once for all namespaces (the
	// container runtime, for pod names by pod_uid) asks it here.
	Prepare func(namespaces []NamespaceLabels)
	// InfoOnly keeps this source's labels on container_vnic_info only, off
	// the per-vNIC families (a join on netns and container_ifname brings
	// them back): for labels that identify what other labels on the
	// counters already name.
	InfoOnly bool
}

// NamespaceLabels is a namespace with vNICs and the labels the earlier
// sources gave it, as LabelSource.Prepare sees them.
type NamespaceLabels struct {
	Netns uint64
	PID   int
	// Names are the earlier sources' label names, Values their values for
	// this namespace, valid UTF-8; both shared: never modify them.
	Names, Values []string
}

// Value returns the value of the earlier label name, "" if there is none.
func (n NamespaceLabels) Value(name string) string {
	if i := slices.Index(n.Names, name); i >= 0 && i < len(n.Values) {
		return n.Values[i]
	}
	return ""
}

// flight is the outcome of one resolution, shared by the scrapes that
// waited for it.
type flight struct {
	flightRefs
	snap      vnic.Snapshot
	err       error
	duration  time.Duration
	overflows uint64 // total, including this resolution

	// families are snap's, built once for every scrape sharing the flight:
	// with counters, a thousand vNICs are 16,000 samples.
	familiesOnce sync.Once
	families     []family
	metricsOnce  sync.Once
	metrics      []prometheus.Metric
	// encoded holds the exposition of families in each format, made on
	// first demand (encode.go).
	encoded [numFormats]encodedOnce
}

// New returns a Collector resolving with r, exporting every end and kind
// of per-vNIC family (they are there when r reads counters).
func New(r Resolver, logger *slog.Logger) *Collector {
	c := &Collector{resolver: r, logger: logger, kinds: map[string]bool{}, since: time.Since}
	for e := range numEnds {
		c.ends[e] = true
	}
	for _, k := range Kinds {
		c.kinds[k] = true
	}
	return c
}

// IdentityLabels are the labels WithIdentity adds.
var IdentityLabels = []string{"container_id", "pod_uid", "runtime"}

// WithIdentity adds container_id, pod_uid and runtime labels, read through
// id for each namespace's oldest process (the pid label): see LabelSource
// for where they go. Unknown layouts and unreadable cgroups give empty
// values.
func (c *Collector) WithIdentity(id IdentityFunc) *Collector {
	return c.WithLabels(IdentitySource(id))
}

// IdentitySource is the LabelSource of WithIdentity, for a caller that
// sets its InfoOnly.
func IdentitySource(id IdentityFunc) LabelSource {
	return LabelSource{Names: IdentityLabels, Values: func(netns uint64, pid int) []string {
		// A process gone since the walk, or unreadable, has no identity
		// to tell; its series keeps empty values rather than vanish.
		i, _ := id(netns, pid)
		return []string{i.ContainerID, i.PodUID, i.Runtime}
	}}
}

// WithLabels adds the labels of src after those added before. It panics
// on a label name that is invalid or already used: that is a programming
// error, as with prometheus.MustRegister.
func (c *Collector) WithLabels(src LabelSource) *Collector {
	used := map[string]bool{}
	for _, n := range concat(concat(infoLabels, vnicLabels), c.extraNames()) {
		used[n] = true
	}
	for _, n := range src.Names {
		if !model.LegacyValidation.IsValidLabelName(n) || used[n] {
			panic(fmt.Sprintf("collector: label %q is invalid or already used", n))
		}
		used[n] = true
	}
	c.sources = append(c.sources, src)
	return c
}

// WithSeries chooses the ends (Ends: container, host, parent) and kinds
// (Kinds: bytes, packets, errors, drops, state) of the per-vNIC families,
// each a comma-separated list.
func (c *Collector) WithSeries(ends, kinds string) (*Collector, error) {
	e, err := parseChoice(ends, Ends, "end")
	if err != nil {
		return nil, err
	}
	k, err := parseChoice(kinds, Kinds, "kind")
	if err != nil {
		return nil, err
	}
	for i, name := range Ends {
		c.ends[i] = e[name]
	}
	c.kinds = k
	return c, nil
}

// onVNIC says, for each of extraNames, whether it goes on the per-vNIC
// families too.
func (c *Collector) onVNIC() []bool {
	var on []bool
	for _, s := range c.sources {
		for range s.Names {
			on = append(on, !s.InfoOnly)
		}
	}
	return on
}

func (c *Collector) extraNames() []string {
	var names []string
	for _, s := range c.sources {
		names = append(names, s.Names...)
	}
	return names
}

// extraValues returns the values of every LabelSource for each namespace
// of s with vNICs (nil for the others), as valid UTF-8, source by source:
// a source's Prepare sees the values of those before it. One resolution's
// sources run at a time, so that what a Prepare keeps is its own
// resolution's until the next Prepare; after it, and still in turn, then
// runs (the families a source's Prepare fed: kubeSource.families).
func (c *Collector) extraValues(s *vnic.Snapshot, then func()) [][]string {
	c.sourcesMu.Lock()
	defer c.sourcesMu.Unlock()
	out := make([][]string, len(s.Namespaces))
	width := len(c.extraNames())
	for i := range s.Namespaces {
		if len(s.Namespaces[i].VNICs) > 0 {
			out[i] = make([]string, 0, width)
		}
	}
	var names []string
	for _, src := range c.sources {
		if src.Prepare != nil {
			var all []NamespaceLabels
			for i := range s.Namespaces {
				if ns := &s.Namespaces[i]; len(ns.VNICs) > 0 {
					all = append(all, NamespaceLabels{Netns: ns.Inode, PID: ns.PID, Names: names[:len(names):len(names)], Values: out[i][:len(out[i]):len(out[i])]})
				}
			}
			src.Prepare(all)
		}
		for i := range s.Namespaces {
			ns := &s.Namespaces[i]
			if len(ns.VNICs) == 0 {
				continue
			}
			vs := src.Values(ns.Inode, ns.PID)
			for j := range src.Names {
				v := ""
				if j < len(vs) {
					v = labelValue(vs[j])
				}
				out[i] = append(out[i], v)
			}
		}
		names = append(names, src.Names...)
	}
	if then != nil {
		then()
	}
	return out
}

func (c *Collector) defs() *defs {
	c.defsOnce.Do(func() { c.defsVal = newDefs(c.extraNames(), c.onVNIC(), c.ends, c.kinds, c.kube != nil) })
	return c.defsVal
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.defs().all {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	f := c.resolve()
	defer f.release()
	f.metricsOnce.Do(func() { f.metrics = constMetrics(c.familiesOf(f)) })
	for _, m := range f.metrics {
		ch <- m
	}
}

// familiesOf returns f's families, built on first demand.
func (c *Collector) familiesOf(f *flight) []family {
	f.familiesOnce.Do(func() { f.families = c.build(f) })
	return f.families
}

// resolve runs one resolution, or waits for the one already running, and
// returns it with a reference the caller drops with release.
func (c *Collector) resolve() *flight {
	f := c.join()
	<-f.done
	return f
}

// join is resolve for a caller that may stop waiting: the flight is ready
// when its done is closed.
func (c *Collector) join() *flight {
	return c.flights.join(c.resolveInto, c.recycle)
}

func (c *Collector) resolveInto(f *flight) {
	start := time.Now()
	f.snap, f.err = c.resolver.ResolveAll()
	f.duration = c.since(start)
	switch {
	case f.err != nil:
		c.logger.Error("resolving container vNICs failed", "err", f.err)
	case f.snap.Overflow:
		c.logger.Warn("link notifications were lost; cache rebuilt")
		f.overflows = c.overflows.Add(1)
	default:
		f.overflows = c.overflows.Load()
	}
	if f.err == nil {
		for cause, n := range f.snap.Failed {
			if n > 0 {
				c.logger.Warn("container network namespaces not resolved", "cause", cause, "count", n)
			}
		}
		if f.snap.Blind {
			c.logger.Warn("processes skipped for permission: namespaces may be missing (grant CAP_SYS_PTRACE, or run as root)",
				"skipped", f.snap.Walk.Skipped[vnic.CauseNoPtrace], "processes", f.snap.Walk.Processes)
		}
	} else {
		f.overflows = c.overflows.Load()
	}
}

// constMetrics hands families to client_golang: a metric per sample whose
// label pairs it shares with the other samples of its series.
func constMetrics(fams []family) []prometheus.Metric {
	pairs := map[*series][]*dto.LabelPair{}
	var out []prometheus.Metric
	for _, fam := range fams {
		ms := make([]constMetric, len(fam.samples))
		for i, s := range fam.samples {
			p, ok := pairs[s.series]
			if !ok {
				p = labelPairs(fam.def.schema.names, s.series.values)
				pairs[s.series] = p
			}
			ms[i] = constMetric{def: fam.def, labels: p, value: s.value}
			out = append(out, &ms[i])
		}
	}
	return out
}

// constMetric is one sample. prometheus.NewConstMetric would build and
// sort label pairs for each: with a thousand vNICs that was a third of a
// scrape's conversion.
type constMetric struct {
	def    *familyDef
	labels []*dto.LabelPair // sorted by name; shared, never modified
	value  float64
}

func (m *constMetric) Desc() *prometheus.Desc { return m.def.desc }

func (m *constMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	if m.def.typ == dto.MetricType_COUNTER {
		out.Counter = &dto.Counter{Value: &m.value}
	} else {
		out.Gauge = &dto.Gauge{Value: &m.value}
	}
	return nil
}

// labelPairs pairs sorted label names with their values.
func labelPairs(names, values []string) []*dto.LabelPair {
	pairs := make([]dto.LabelPair, len(names))
	out := make([]*dto.LabelPair, len(names))
	for i := range names {
		pairs[i].Name, pairs[i].Value = &names[i], &values[i]
		out[i] = &pairs[i]
	}
	return out
}
