package collector

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// A resolution becomes families once, whichever path serves them: the
// fast exposition writes their bytes (encode.go), Collect hands them to
// client_golang as const metrics. Both take them in the order the
// exposition wants: families by name, the samples of a family by their
// label values in label-name order, as client_golang's registry sorts
// them, so the two paths give the same bytes.

// schema is the label names of a family, in the order they are written
// (sorted by name), and where each name as given goes in it.
type schema struct {
	given []string // as given: the Desc's order
	names []string // sorted
	slot  []int    // slot[i] is the place of given[i] in names
}

func newSchema(given ...string) *schema {
	s := &schema{given: given, names: slices.Clone(given), slot: make([]int, len(given))}
	sort.Strings(s.names)
	for i, n := range given {
		s.slot[i] = slices.Index(s.names, n)
	}
	return s
}

// series is one set of label values of a schema, shared by every family
// of that schema that has a sample for it: the sixteen counters of a vNIC
// are one series, rendered once.
type series struct {
	values []string // in schema.names order
	text   []byte   // `{name="value",...}` as both formats write it; empty without labels
}

// noLabels is the series of a family without labels.
var noLabels = &series{}

// series returns the series of values, given in s.given's order.
func (s *schema) series(given ...string) *series {
	v := make([]string, len(given))
	for i, x := range given {
		v[s.slot[i]] = x
	}
	return &series{values: v, text: renderLabels(s.names, v)}
}

// labelEscaper escapes a label value as the text format and OpenMetrics
// both do (expfmt's quotedEscaper).
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func renderLabels(names, values []string) []byte {
	if len(names) == 0 {
		return nil
	}
	n := 2
	for i := range names {
		n += len(names[i]) + len(values[i]) + 4
	}
	var b strings.Builder
	b.Grow(n)
	for i := range names {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(names[i])
		b.WriteString(`="`)
		labelEscaper.WriteString(&b, values[i]) //nolint:errcheck // a strings.Builder does not fail
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// compareSeries orders series as client_golang's registry does: by label
// values, in label-name order.
func compareSeries(a, b *series) int { return slices.Compare(a.values, b.values) }

// familyDef is a family the collector may export.
type familyDef struct {
	name, help string
	typ        dto.MetricType
	schema     *schema
	desc       *prometheus.Desc
}

func newDef(name, help string, typ dto.MetricType, labels ...string) *familyDef {
	return &familyDef{name: name, help: help, typ: typ, schema: newSchema(labels...),
		desc: prometheus.NewDesc(name, help, labels, nil)}
}

// family is a def's samples in one resolution, in exposition order.
type family struct {
	def     *familyDef
	samples []sample
}

type sample struct {
	series *series
	value  float64
}

// defs are the families a collector exports, decided once by its options.
type defs struct {
	info, parentInfo *familyDef
	vnic             *schema // of the container and host ends' families
	onVNIC           []bool  // per extra label: on them too, or on info only
	// ends holds, per end (containerEnd, hostEnd, parentEnd), one def per
	// chosen vnicField, nil where the end or the field's kind is off.
	ends [numEnds][]*familyDef
	// all, sorted by name: what Describe lists.
	all []*familyDef
}

// Families of the collector's own state.
var (
	infoHelpText = "A container-side network interface and the host interface it is paired with (value is always 1)."
	infoLabels   = []string{"pid", "netns", "host_ifname", "container_ifname"}
	parentInfo   = newDef(namespace+"_parent_info",
		"A container-side interface stacked on a host interface (macvlan, ipvlan, vlan...): the host interface is its parent, not its peer (value is always 1).",
		dto.MetricType_GAUGE, "pid", "netns", "host_ifname", "container_ifname", "kind")
	durationDef = newDef(namespace+"_scrape_duration_seconds",
		"Time the last resolution of all container network namespaces took.", dto.MetricType_GAUGE)
	successDef = newDef(namespace+"_scrape_success",
		"1 if every container network namespace found was resolved, 0 if the walk failed, any namespace could not be resolved, or processes were skipped for lack of CAP_SYS_PTRACE.", dto.MetricType_GAUGE)
	errorsDef = newDef(namespace+"_scrape_errors",
		"Container network namespaces found but not resolved in the last scrape, by cause.", dto.MetricType_GAUGE, "cause")
	skippedDef = newDef(namespace+"_processes_skipped",
		"Processes whose network namespace could not be read in the last scrape, by cause: no_cap_sys_ptrace (the exporter lacks CAP_SYS_PTRACE: namespaces are missing), protected (refused even with it: no capability helps), procfs, process_vanished (normal churn).", dto.MetricType_GAUGE, "cause")
	processesDef = newDef(namespace+"_processes",
		"Processes the last scrape looked at in procfs; see container_vnic_processes_skipped for those it could not read.", dto.MetricType_GAUGE)
	namespacesDef = newDef(namespace+"_namespaces",
		"Network namespaces other than the host's held by processes, seen in the last scrape.", dto.MetricType_GAUGE)
	withoutVNICDef = newDef(namespace+"_namespaces_without_vnic",
		"Network namespaces seen in the last scrape that have no interface paired with a host interface.", dto.MetricType_GAUGE)
	queriedDef = newDef(namespace+"_namespaces_queried",
		"Network namespaces the last scrape resolved afresh; the others were answered from the notification-driven cache (with counters on, their links are still dumped, aimed at the namespace id the cache kept).", dto.MetricType_GAUGE)
	overflowsDef = newDef(namespace+"_notification_overflows_total",
		"Times link notifications were lost (socket overflow) and the cache was rebuilt.", dto.MetricType_COUNTER)
	scalarDefs = []*familyDef{parentInfo, durationDef, successDef, errorsDef, skippedDef, processesDef,
		namespacesDef, withoutVNICDef, queriedDef, overflowsDef}
)

// newDefs decides the families of a collector with extra per-namespace
// labels and the chosen ends and kinds.
func newDefs(extra []string, onVNIC []bool, ends [numEnds]bool, kinds map[string]bool, kube bool) *defs {
	d := &defs{info: newDef(namespace+"_info", infoHelpText, dto.MetricType_GAUGE, concat(infoLabels, extra)...),
		parentInfo: parentInfo, onVNIC: onVNIC}
	var vnicExtra []string
	for i, n := range extra {
		if onVNIC[i] {
			vnicExtra = append(vnicExtra, n)
		}
	}
	d.vnic = newSchema(concat(vnicLabels, vnicExtra)...)
	d.all = append([]*familyDef{d.info}, scalarDefs...)
	if kube {
		d.all = append(d.all, containerInfoDef, kubeUpDef)
	}
	for e := range numEnds {
		d.ends[e] = make([]*familyDef, len(vnicFields))
		if !ends[e] {
			continue
		}
		labels := parentLabels
		if e != parentEnd {
			labels = d.vnic.given
		}
		for i, f := range vnicFields {
			if kinds[f.kind] {
				d.ends[e][i] = newDef(f.familyName(e), f.help(e), f.typ, labels...)
				d.all = append(d.all, d.ends[e][i])
			}
		}
	}
	sort.Slice(d.all, func(i, j int) bool { return d.all[i].name < d.all[j].name })
	return d
}

func concat(a, b []string) []string { return append(slices.Clone(a), b...) }

// Causes reported with a zero value even when absent, so that alerts and
// rate() see the series before the first error.
var (
	errorCauses = []vnic.Cause{vnic.CausePermission, vnic.CauseNetlink, vnic.CauseProcfs}
	skipCauses  = []vnic.Cause{vnic.CauseNoPtrace, vnic.CauseProtected, vnic.CauseVanished, vnic.CauseProcfs}
)

// vnicRow is one vNIC with the series its per-end families share.
type vnicRow struct {
	v      *vnic.VNIC
	series *series
}

// build turns a resolution into families, sorted by name, leaving out the
// empty ones as the registry does.
func (c *Collector) build(f *flight) []family {
	d := c.defs()
	byDef := map[*familyDef][]sample{
		durationDef:  {{noLabels, f.duration.Seconds()}},
		overflowsDef: {{noLabels, float64(f.overflows)}},
	}
	if f.err != nil {
		byDef[successDef] = []sample{{noLabels, 0}}
		return ordered(d, byDef)
	}
	s := f.snap
	var info, parents, rows []vnicRow
	without := 0
	var then func()
	if c.kube != nil {
		then = func() { c.kube.families(&s, byDef) }
	}
	extras := c.extraValues(&s, then)
	for i := range s.Namespaces {
		ns := &s.Namespaces[i]
		if len(ns.VNICs) == 0 {
			without++
			continue
		}
		pid, ino := strconv.Itoa(ns.PID), strconv.FormatUint(ns.Inode, 10)
		extra := extras[i]
		for j := range ns.VNICs {
			v := &ns.VNICs[j]
			host, cont := labelValue(v.HostIfname), labelValue(v.ContainerIfname)
			if v.Kind == "veth" {
				info = append(info, vnicRow{v, d.info.schema.series(concat([]string{pid, ino, host, cont}, extra)...)})
			} else {
				info = append(info, vnicRow{nil, parentInfo.schema.series(pid, ino, host, cont, labelValue(v.Kind))})
			}
			if v.ContainerStats != nil || v.HostStats != nil && v.Kind == "veth" {
				values := []string{ino, cont, strconv.Itoa(v.ContainerIfindex), host, strconv.Itoa(v.HostIfindex)}
				for k, v := range extra {
					if d.onVNIC[k] {
						values = append(values, v)
					}
				}
				rows = append(rows, vnicRow{v, d.vnic.series(values...)})
			}
		}
	}
	for _, r := range info {
		def := d.info
		if r.v == nil {
			def = parentInfo
		}
		byDef[def] = append(byDef[def], sample{r.series, 1})
	}
	sortRows(rows)
	for e := range parentEnd {
		for _, def := range d.ends[e] {
			if def != nil {
				byDef[def] = make([]sample, 0, len(rows))
			}
		}
	}
	for _, r := range rows {
		if r.v.ContainerStats != nil {
			addEnd(byDef, d.ends[containerEnd], r.series, r.v.ContainerStats, r.v.ContainerState)
		}
		if r.v.Kind == "veth" && r.v.HostStats != nil {
			addEnd(byDef, d.ends[hostEnd], r.series, r.v.HostStats, r.v.HostState)
		}
	}
	parents = parentRows(s)
	for _, r := range parents {
		addEnd(byDef, d.ends[parentEnd], r.series, r.v.HostStats, r.v.HostState)
	}
	failed := 0
	for _, n := range s.Failed {
		failed += n
	}
	byDef[processesDef] = []sample{{noLabels, float64(s.Walk.Processes)}}
	byDef[namespacesDef] = []sample{{noLabels, float64(len(s.Namespaces) + failed + s.Vanished)}}
	byDef[withoutVNICDef] = []sample{{noLabels, float64(without)}}
	byDef[queriedDef] = []sample{{noLabels, float64(s.Queried)}}
	byDef[errorsDef] = byCause(errorsDef, errorCauses, s.Failed)
	skipped := map[vnic.Cause]int{}
	for cause, n := range s.Walk.Skipped {
		skipped[cause] += n
	}
	// A namespace whose process exited before it could be resolved is one
	// more process that vanished.
	skipped[vnic.CauseVanished] += s.Vanished
	byDef[skippedDef] = byCause(skippedDef, skipCauses, skipped)
	byDef[successDef] = []sample{{noLabels, success(s)}}
	return ordered(d, byDef)
}

// ordered returns the non-empty families of byDef in d's (name) order,
// each sorted as the registry sorts them.
func ordered(d *defs, byDef map[*familyDef][]sample) []family {
	out := make([]family, 0, len(byDef))
	for _, def := range d.all {
		samples := byDef[def]
		if len(samples) == 0 {
			continue
		}
		// Only info rows (and containers) need it here: the per-end ones were built from
		// rows sorted once, and the rest have one sample or sorted causes.
		if def == d.info || def == parentInfo || def == containerInfoDef {
			slices.SortFunc(samples, func(a, b sample) int { return compareSeries(a.series, b.series) })
		}
		out = append(out, family{def, samples})
	}
	return out
}

func sortRows(rows []vnicRow) {
	slices.SortFunc(rows, func(a, b vnicRow) int { return compareSeries(a.series, b.series) })
}

// addEnd adds the samples of one end of a vNIC to its families.
func addEnd(byDef map[*familyDef][]sample, defs []*familyDef, s *series, st *vnic.Stats, state vnic.LinkState) {
	for i, def := range defs {
		if def != nil {
			byDef[def] = append(byDef[def], sample{s, vnicFields[i].value(st, state)})
		}
	}
}

// parentRows returns each host parent of the macvlan-like links in s, once
// per parent however many links sit on it, sorted as its families are.
func parentRows(s vnic.Snapshot) []vnicRow {
	seen := map[int]bool{}
	var rows []vnicRow
	for i := range s.Namespaces {
		for j := range s.Namespaces[i].VNICs {
			v := &s.Namespaces[i].VNICs[j]
			if v.Kind != "veth" && v.HostStats != nil && !seen[v.HostIfindex] {
				seen[v.HostIfindex] = true
				rows = append(rows, vnicRow{v, parentSchema.series(labelValue(v.HostIfname), strconv.Itoa(v.HostIfindex))})
			}
		}
	}
	sortRows(rows)
	return rows
}

var parentSchema = newSchema(parentLabels...)

// success is 1 when every namespace found was resolved and none may be
// missing for lack of CAP_SYS_PTRACE.
func success(s vnic.Snapshot) float64 {
	for _, n := range s.Failed {
		if n > 0 {
			return 0
		}
	}
	if s.Blind {
		return 0
	}
	return 1
}

// byCause gives one sample per cause: the always-present ones, and any
// other cause that occurred, sorted.
func byCause(def *familyDef, always []vnic.Cause, counts map[vnic.Cause]int) []sample {
	causes := map[vnic.Cause]bool{}
	for _, c := range always {
		causes[c] = true
	}
	for c := range counts {
		causes[c] = true
	}
	sorted := make([]string, 0, len(causes))
	for c := range causes {
		sorted = append(sorted, string(c))
	}
	sort.Strings(sorted)
	out := make([]sample, len(sorted))
	for i, c := range sorted {
		out[i] = sample{def.schema.series(c), float64(counts[vnic.Cause(c)])}
	}
	return out
}

// labelValue returns an interface name as a label value, which must be
// UTF-8: see vnic.EscapeName.
func labelValue(s string) string { return vnic.EscapeName(s) }
