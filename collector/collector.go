// Package collector exposes the host vNIC of every container network
// namespace as Prometheus metrics, brought up to date on each scrape.
package collector

import (
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

const namespace = "container_vnic"

var (
	infoHelpText = "A container-side network interface and the host interface it is paired with (value is always 1)."
	infoLabels   = []string{"pid", "netns", "host_ifname", "container_ifname"}
	infoDesc     = prometheus.NewDesc(namespace+"_info", infoHelpText, infoLabels, nil)
	// With identity: the container and pod the namespace's oldest process is in.
	identityInfoDesc = prometheus.NewDesc(namespace+"_info", infoHelpText,
		append(append([]string{}, infoLabels...), identityLabels...), nil)
	// With Kubernetes names: the pod's namespace and name too.
	kubeInfoDesc = prometheus.NewDesc(namespace+"_info", infoHelpText,
		append(append([]string{}, infoLabels...), kubeLabels...), nil)
	containerInfoDesc = prometheus.NewDesc(namespace+"_container_info",
		"A running container of the Kubernetes pod in a network namespace, as the node's container runtime (CRI) names it (value is always 1).",
		[]string{"netns", "namespace", "pod", "container", "container_id", "image"}, nil)
	kubeUpDesc = prometheus.NewDesc(namespace+"_kubernetes_up",
		"1 if the node's container runtime (CRI) answered the last query for pod names, else 0 (names last seen are kept for namespaces still present).", nil, nil)
	// A macvlan, ipvlan or vlan in a container sits on a host interface
	// whose counters are not the container's alone: a series of its own,
	// so joins on container_vnic_info never attribute them to it.
	parentInfoDesc = prometheus.NewDesc(namespace+"_parent_info",
		"A container-side interface stacked on a host interface (macvlan, ipvlan, vlan...): the host interface is its parent, not its peer (value is always 1).",
		[]string{"pid", "netns", "host_ifname", "container_ifname", "kind"}, nil)
	durationDesc = prometheus.NewDesc(namespace+"_scrape_duration_seconds",
		"Time the last resolution of all container network namespaces took.", nil, nil)
	successDesc = prometheus.NewDesc(namespace+"_scrape_success",
		"1 if every container network namespace found was resolved, 0 if the walk failed, any namespace could not be resolved, or processes were skipped for lack of CAP_SYS_PTRACE.", nil, nil)
	errorsDesc = prometheus.NewDesc(namespace+"_scrape_errors",
		"Container network namespaces found but not resolved in the last scrape, by cause.", []string{"cause"}, nil)
	skippedDesc = prometheus.NewDesc(namespace+"_processes_skipped",
		"Processes whose network namespace could not be read in the last scrape, by cause (process_vanished is normal churn).", []string{"cause"}, nil)
	processesDesc = prometheus.NewDesc(namespace+"_processes",
		"Processes the last scrape looked at in procfs; see container_vnic_processes_skipped for those it could not read.", nil, nil)
	namespacesDesc = prometheus.NewDesc(namespace+"_namespaces",
		"Network namespaces other than the host's held by processes, seen in the last scrape.", nil, nil)
	withoutVNICDesc = prometheus.NewDesc(namespace+"_namespaces_without_vnic",
		"Network namespaces seen in the last scrape that have no interface paired with a host interface.", nil, nil)
	queriedDesc = prometheus.NewDesc(namespace+"_namespaces_queried",
		"Network namespaces the last scrape resolved afresh; the others were answered from the notification-driven cache (with counters on, their links are still dumped, aimed at the namespace id the cache kept).", nil, nil)
	overflowsDesc = prometheus.NewDesc(namespace+"_notification_overflows_total",
		"Times link notifications were lost (socket overflow) and the cache was rebuilt.", nil, nil)
)

// Causes reported with a zero value even when absent, so that alerts and
// rate() see the series before the first error.
var (
	errorCauses = []vnic.Cause{vnic.CausePermission, vnic.CauseNetlink, vnic.CauseProcfs}
	skipCauses  = []vnic.Cause{vnic.CausePermission, vnic.CauseVanished, vnic.CauseProcfs}
)

// Resolver is what the collector needs of *vnic.Resolver.
type Resolver interface {
	ResolveAll() (vnic.Snapshot, error)
}

// IdentityFunc returns the container identity of a namespace's process, as
// (*cgroupid.Lookup).Identity does.
type IdentityFunc func(netns uint64, pid int) (cgroupid.Identity, error)

// Kubernetes names pods by UID: *kube.Client.
type Kubernetes interface {
	Pods(uids []string) (map[string]kube.Pod, bool)
}

// Collector is a prometheus.Collector that resolves all container network
// namespaces on every Collect. Collects that arrive while a resolution runs
// share it: ten scrapers at once cost one resolution, each still encoded,
// counted and limited by promhttp as its own request.
type Collector struct {
	resolver Resolver
	logger   *slog.Logger
	identity IdentityFunc // nil: no identity labels
	kube     Kubernetes   // nil: no Kubernetes names

	flights   singleflight.Group
	overflows atomic.Uint64
}

// flight is the outcome of one resolution, shared by the Collects that
// waited for it.
type flight struct {
	snap      vnic.Snapshot
	err       error
	duration  time.Duration
	overflows uint64 // total, including this resolution
	// metrics are snap's, converted once for every scrape sharing the
	// flight: with counters, a thousand vNICs are 16,000 of them.
	convert sync.Once
	metrics []prometheus.Metric
}

// New returns a Collector resolving with r.
func New(r Resolver, logger *slog.Logger) *Collector {
	return &Collector{resolver: r, logger: logger}
}

// WithIdentity adds container_id, pod_uid and runtime labels to
// container_vnic_info, read through id for each namespace's oldest process
// (the pid label).
// Unknown layouts and unreadable cgroups give empty values.
func (c *Collector) WithIdentity(id IdentityFunc) *Collector {
	c.identity = id
	return c
}

// WithKubernetes adds namespace and pod labels after the identity labels
// (which it needs: it names the pod UID they give; without WithIdentity it
// does nothing), and the
// container_vnic_container_info and container_vnic_kubernetes_up series,
// asking k once per resolution.
func (c *Collector) WithKubernetes(k Kubernetes) *Collector {
	c.kube = k
	return c
}

// labelling is what a collector puts on vNIC series.
type labelling struct {
	identity IdentityFunc
	kube     Kubernetes
}

func (l labelling) descs() (*prometheus.Desc, *vnicDescs) {
	switch {
	case l.kube != nil:
		return kubeInfoDesc, kubeCounters
	case l.identity != nil:
		return identityInfoDesc, identityCounters
	}
	return infoDesc, plainCounters
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	l := c.labelling()
	info, counters := l.descs()
	for _, d := range []*prometheus.Desc{info, parentInfoDesc, durationDesc, successDesc, errorsDesc, skippedDesc,
		processesDesc, namespacesDesc, withoutVNICDesc, queriedDesc, overflowsDesc} {
		ch <- d
	}
	if l.kube != nil {
		ch <- containerInfoDesc
		ch <- kubeUpDesc
	}
	for _, d := range counterDescsFor(counters) {
		ch <- d
	}
}

// labelling returns what c puts on vNIC series: no names without identity,
// whose pod_uid they need.
func (c *Collector) labelling() labelling {
	if c.identity == nil {
		return labelling{}
	}
	return labelling{identity: c.identity, kube: c.kube}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	f := c.resolve()
	ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, f.duration.Seconds())
	ch <- prometheus.MustNewConstMetric(overflowsDesc, prometheus.CounterValue, float64(f.overflows))
	if f.err != nil {
		c.logger.Error("resolving container vNICs failed", "err", f.err)
		ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, 0)
		return
	}
	f.convert.Do(func() { f.metrics = metrics(f.snap, c.labelling()) })
	for _, m := range f.metrics {
		ch <- m
	}
	success := 1.0
	for cause, n := range f.snap.Failed {
		if n > 0 {
			success = 0
			c.logger.Warn("container network namespaces not resolved", "cause", cause, "count", n)
		}
	}
	if f.snap.Blind {
		success = 0
		c.logger.Warn("processes skipped for permission: namespaces may be missing (grant CAP_SYS_PTRACE, or run as root)",
			"skipped", f.snap.Walk.Skipped[vnic.CausePermission], "processes", f.snap.Walk.Processes)
	}
	ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, success)
}

// resolve runs one resolution, or waits for the one already running.
func (c *Collector) resolve() *flight {
	v, _, _ := c.flights.Do("", func() (any, error) {
		start := time.Now()
		f := &flight{}
		f.snap, f.err = c.resolver.ResolveAll()
		f.duration = time.Since(start)
		if f.err == nil && f.snap.Overflow {
			c.logger.Warn("link notifications were lost; cache rebuilt")
			f.overflows = c.overflows.Add(1)
		} else {
			f.overflows = c.overflows.Load()
		}
		return f, nil
	})
	return v.(*flight)
}

// metrics converts a snapshot into const metrics. Apart from identity and
// Kubernetes names, it is pure, so tests can feed it hand-built snapshots.
func metrics(s vnic.Snapshot, l labelling) []prometheus.Metric {
	var out []prometheus.Metric
	without := 0
	idValues, pods, up := identities(s, l)
	info, counters := l.descs()
	for i, ns := range s.Namespaces {
		if len(ns.VNICs) == 0 {
			without++
		}
		pid, ino := strconv.Itoa(ns.PID), strconv.FormatUint(ns.Inode, 10)
		for _, v := range ns.VNICs {
			host, cont := labelValue(v.HostIfname), labelValue(v.ContainerIfname)
			var m prometheus.Metric
			var err error
			if v.Kind != "veth" {
				m, err = prometheus.NewConstMetric(parentInfoDesc, prometheus.GaugeValue, 1, pid, ino, host, cont, labelValue(v.Kind))
			} else {
				m, err = prometheus.NewConstMetric(info, prometheus.GaugeValue, 1, append([]string{pid, ino, host, cont}, idValues[i]...)...)
			}
			if err != nil {
				// Cannot happen with escaped values; never panic on what a
				// container chose to call its interface all the same.
				m = prometheus.NewInvalidMetric(infoDesc, err)
			}
			out = append(out, m)
			out = append(out, vnicCounters(ino, v, counters, idValues[i])...)
		}
	}
	out = append(out, parentMetrics(s)...)
	if l.kube != nil {
		out = append(out, kubeMetrics(s, idValues, pods, up)...)
	}
	failed := 0
	for _, n := range s.Failed {
		failed += n
	}
	out = append(out,
		prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(s.Walk.Processes)),
		prometheus.MustNewConstMetric(namespacesDesc, prometheus.GaugeValue, float64(len(s.Namespaces)+failed+s.Vanished)),
		prometheus.MustNewConstMetric(withoutVNICDesc, prometheus.GaugeValue, float64(without)),
		prometheus.MustNewConstMetric(queriedDesc, prometheus.GaugeValue, float64(s.Queried)))
	out = append(out, byCause(errorsDesc, errorCauses, s.Failed)...)
	skipped := map[vnic.Cause]int{}
	for cause, n := range s.Walk.Skipped {
		skipped[cause] += n
	}
	// A namespace whose process exited before it could be resolved is one
	// more process that vanished.
	skipped[vnic.CauseVanished] += s.Vanished
	out = append(out, byCause(skippedDesc, skipCauses, skipped)...)
	return out
}

// identities returns the identity label values of each namespace with
// vNICs (nil without identity): container_id, pod_uid, runtime, and with
// Kubernetes names namespace and pod, asked of the runtime once for all:
// the pods it named by UID, and whether it answered.
func identities(s vnic.Snapshot, l labelling) (values [][]string, pods map[string]kube.Pod, up bool) {
	out := make([][]string, len(s.Namespaces))
	if l.identity == nil {
		return out, nil, false
	}
	ids := make([]cgroupid.Identity, len(s.Namespaces))
	var uids []string
	for i, ns := range s.Namespaces {
		if len(ns.VNICs) == 0 {
			continue
		}
		// A process gone since the walk, or unreadable, has no identity
		// to tell; its series keeps empty values rather than vanish.
		ids[i], _ = l.identity(ns.Inode, ns.PID)
		out[i] = []string{labelValue(ids[i].ContainerID), labelValue(ids[i].PodUID), labelValue(ids[i].Runtime)}
		if ids[i].PodUID != "" {
			uids = append(uids, ids[i].PodUID)
		}
	}
	if l.kube == nil {
		return out, nil, false
	}
	pods, up = l.kube.Pods(uids)
	for i := range out {
		if out[i] != nil {
			p := pods[ids[i].PodUID]
			out[i] = append(out[i], labelValue(p.Namespace), labelValue(p.Name))
		}
	}
	return out, pods, up
}

// kubeMetrics returns container_vnic_container_info for every running
// container of the pods in s's namespaces, and container_vnic_kubernetes_up.
// idValues, pods and up are what identities returned for s.
func kubeMetrics(s vnic.Snapshot, idValues [][]string, pods map[string]kube.Pod, up bool) []prometheus.Metric {
	var out []prometheus.Metric
	for i, ns := range s.Namespaces {
		if idValues[i] == nil {
			continue
		}
		ino := strconv.FormatUint(ns.Inode, 10)
		p := pods[idValues[i][1]]
		for _, c := range p.Containers {
			out = append(out, prometheus.MustNewConstMetric(containerInfoDesc, prometheus.GaugeValue, 1, ino,
				labelValue(p.Namespace), labelValue(p.Name), labelValue(c.Name), labelValue(c.ID), labelValue(c.Image)))
		}
	}
	return append(out, prometheus.MustNewConstMetric(kubeUpDesc, prometheus.GaugeValue, boolValue(up)))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// labelValue returns an interface name as a label value, which must be
// UTF-8: see vnic.EscapeName.
func labelValue(s string) string { return vnic.EscapeName(s) }

// byCause emits one gauge per cause: the always-present ones, and any other
// cause that occurred.
func byCause(desc *prometheus.Desc, always []vnic.Cause, counts map[vnic.Cause]int) []prometheus.Metric {
	seen := map[vnic.Cause]bool{}
	var causes []vnic.Cause
	for _, c := range always {
		seen[c] = true
		causes = append(causes, c)
	}
	for c := range counts {
		if !seen[c] {
			causes = append(causes, c)
		}
	}
	sort.Slice(causes, func(i, j int) bool { return causes[i] < causes[j] })
	out := make([]prometheus.Metric, 0, len(causes))
	for _, c := range causes {
		out = append(out, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(counts[c]), string(c)))
	}
	return out
}
