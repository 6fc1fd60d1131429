// Package test checks the Helm chart charts/container-vnic-exporter with the
// real helm (.ci/install-helm.sh): `helm lint` and `helm template` with
// several value sets, every rendered object decoded strictly into its Go
// type, so that a field the API does not know (a typo, a wrong indentation)
// fails the test instead of being dropped by the API server, and the facts
// the chart promises (docs/running.md, "Helm").
//
// A module of its own, so that k8s.io/api and the Prometheus Operator's
// types stay out of the exporter's go.mod.
//
// Without helm the tests skip, except in CI (CI set), where they fail.
package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	repoRoot  = "../.."
	chartDir  = repoRoot + "/charts/container-vnic-exporter"
	rulesFile = repoRoot + "/examples/prometheus/rules.yml"
	recipes   = repoRoot + "/examples/prometheus/recipes.yml"
	dashboard = repoRoot + "/examples/grafana/container-vnic.json"
	// The DaemonSet without Helm.
	exampleDaemonSet = repoRoot + "/examples/kubernetes/daemonset.yaml"
)

// helmPath is the helm findHelm found.
var helmPath string

// findHelm returns helm's path: where .ci/install-helm.sh puts it (GOBIN or
// GOPATH/bin) first, then PATH.
func findHelm(t *testing.T) string {
	t.Helper()
	if helmPath != "" {
		return helmPath
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 0 && lines[0] != "" {
			dirs = append(dirs, lines[0])
		}
		if len(lines) > 1 {
			for _, p := range filepath.SplitList(lines[1]) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "helm"); isExecutable(p) {
			helmPath = p
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		helmPath = p
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("helm not found (GOBIN, GOPATH/bin, PATH) in CI: .ci/install-helm.sh installs it")
	}
	t.Skip("helm not found (GOBIN, GOPATH/bin, PATH): run .ci/install-helm.sh to test the chart")
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// helm runs helm with args and returns its standard output; a non-zero
// exit returns an error with both outputs.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(findHelm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// objects are the decoded objects of one rendering, by kind.
type objects struct {
	daemonSets      []appsv1.DaemonSet
	services        []corev1.Service
	configMaps      []corev1.ConfigMap
	serviceMonitors []monitoringv1.ServiceMonitor
	podMonitors     []monitoringv1.PodMonitor
	prometheusRules []monitoringv1.PrometheusRule
}

func (o *objects) kinds() []string {
	var ks []string
	for k, n := range map[string]int{
		"DaemonSet": len(o.daemonSets), "Service": len(o.services), "ConfigMap": len(o.configMaps),
		"ServiceMonitor": len(o.serviceMonitors), "PodMonitor": len(o.podMonitors), "PrometheusRule": len(o.prometheusRules),
	} {
		for range n {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// decode reads a multi-document YAML stream of Kubernetes objects and
// decodes each strictly: duplicate keys, fields its Go type does not have
// and kinds the chart does not make are errors.
func decode(stream string) (*objects, error) {
	o := &objects{}
	for i, doc := range splitDocuments(stream) {
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d: %v", i, err)
		}
		var meta struct{ APIVersion, Kind string }
		if err := json.Unmarshal(j, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %v", i, err)
		}
		var target any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 DaemonSet":
			o.daemonSets = append(o.daemonSets, appsv1.DaemonSet{})
			target = &o.daemonSets[len(o.daemonSets)-1]
		case "v1 Service":
			o.services = append(o.services, corev1.Service{})
			target = &o.services[len(o.services)-1]
		case "v1 ConfigMap":
			o.configMaps = append(o.configMaps, corev1.ConfigMap{})
			target = &o.configMaps[len(o.configMaps)-1]
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o.serviceMonitors = append(o.serviceMonitors, monitoringv1.ServiceMonitor{})
			target = &o.serviceMonitors[len(o.serviceMonitors)-1]
		case "monitoring.coreos.com/v1 PodMonitor":
			o.podMonitors = append(o.podMonitors, monitoringv1.PodMonitor{})
			target = &o.podMonitors[len(o.podMonitors)-1]
		case "monitoring.coreos.com/v1 PrometheusRule":
			o.prometheusRules = append(o.prometheusRules, monitoringv1.PrometheusRule{})
			target = &o.prometheusRules[len(o.prometheusRules)-1]
		default:
			return nil, fmt.Errorf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
		if err := strictJSON(j, target); err != nil {
			return nil, fmt.Errorf("document %d (%s): %v", i, meta.Kind, err)
		}
	}
	return o, nil
}

// strictJSON decodes as the API server does (sigs.k8s.io/json), and
// stricter: field names match case-sensitively (encoding/json would take
// "readonly" for readOnly), and an unknown or duplicate field is an error,
// not a warning.
func strictJSON(j []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// splitDocuments splits helm's output at its "---" lines, leaving out
// documents that hold only comments or nothing.
func splitDocuments(stream string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+stream, "\n---") {
		// The rest of a "--- # Source: ..." line is not YAML content.
		if k := strings.IndexByte(d, '\n'); k >= 0 {
			d = d[k+1:]
		} else {
			d = ""
		}
		empty := true
		for _, l := range strings.Split(d, "\n") {
			if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}

// valueSets are the renderings every test checks: --set arguments each.
var valueSets = []struct {
	name string
	set  []string
	want []string // kinds rendered
}{
	{"defaults", nil, []string{"ConfigMap", "DaemonSet", "PrometheusRule", "Service", "ServiceMonitor"}},
	{"podMonitor", []string{"serviceMonitor.enabled=false", "podMonitor.enabled=true"},
		[]string{"ConfigMap", "DaemonSet", "PodMonitor", "PrometheusRule"}},
	{"monitoring off", []string{"serviceMonitor.enabled=false", "prometheusRule.enabled=false", "dashboard.enabled=false"},
		[]string{"DaemonSet"}},
	{"k3s socket", []string{"kubernetes.criSocket=/run/k3s/containerd/containerd.sock", "serviceMonitor.additionalLabels.release=kps"},
		[]string{"ConfigMap", "DaemonSet", "PrometheusRule", "Service", "ServiceMonitor"}},
	{"no CRI", []string{"kubernetes.enabled=false", "containerIdentity.enabled=false", "extraArgs={--log.level=debug}"},
		[]string{"ConfigMap", "DaemonSet", "PrometheusRule", "Service", "ServiceMonitor"}},
	{"runtime's AppArmor profile", []string{"appArmorProfile=null"},
		[]string{"ConfigMap", "DaemonSet", "PrometheusRule", "Service", "ServiceMonitor"}},
	{"own AppArmor profile", []string{"appArmorProfile.type=Localhost", "appArmorProfile.localhostProfile=k8s-cve"},
		[]string{"ConfigMap", "DaemonSet", "PrometheusRule", "Service", "ServiceMonitor"}},
}

func setArgs(set []string) []string {
	var args []string
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

func render(t *testing.T, set []string) *objects {
	t.Helper()
	out, err := helm(t, append([]string{"template", "container-vnic-exporter", chartDir, "--namespace", "monitoring"}, setArgs(set)...)...)
	if err != nil {
		t.Fatal(err)
	}
	o, err := decode(out)
	if err != nil {
		t.Fatalf("rendered chart: %v\n%s", err, out)
	}
	return o
}

func TestLint(t *testing.T) {
	findHelm(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			if _, err := helm(t, append([]string{"lint", "--strict", chartDir}, setArgs(vs.set)...)...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	findHelm(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			o := render(t, vs.set)
			if got := o.kinds(); !slices.Equal(got, vs.want) {
				t.Fatalf("rendered %v, want %v", got, vs.want)
			}
			checkDaemonSet(t, o.daemonSets[0], vs.set)
			for _, s := range o.serviceMonitors {
				if len(s.Spec.Endpoints) != 1 {
					t.Fatalf("ServiceMonitor endpoints %d, want 1", len(s.Spec.Endpoints))
				}
				e := s.Spec.Endpoints[0]
				checkScrape(t, "ServiceMonitor", e.HonorLabels, e.Port, e.RelabelConfigs)
				if len(o.services) != 1 || !reflect.DeepEqual(o.services[0].Spec.Selector, s.Spec.Selector.MatchLabels) {
					t.Errorf("ServiceMonitor selects %v, the Services are %+v", s.Spec.Selector.MatchLabels, o.services)
				}
				if slices.Contains(vs.set, "serviceMonitor.additionalLabels.release=kps") && s.Labels["release"] != "kps" {
					t.Errorf("ServiceMonitor labels %v lack release=kps", s.Labels)
				}
			}
			for _, p := range o.podMonitors {
				if len(p.Spec.PodMetricsEndpoints) != 1 {
					t.Fatalf("PodMonitor endpoints %d, want 1", len(p.Spec.PodMetricsEndpoints))
				}
				e := p.Spec.PodMetricsEndpoints[0]
				port := ""
				if e.Port != nil {
					port = *e.Port
				}
				checkScrape(t, "PodMonitor", e.HonorLabels, port, e.RelabelConfigs)
				if !reflect.DeepEqual(p.Spec.Selector.MatchLabels, o.daemonSets[0].Spec.Template.Labels) {
					t.Errorf("PodMonitor selects %v, the pods are labelled %v", p.Spec.Selector.MatchLabels, o.daemonSets[0].Spec.Template.Labels)
				}
			}
			for _, r := range o.prometheusRules {
				checkRules(t, r)
			}
			for _, c := range o.configMaps {
				checkDashboard(t, c)
			}
		})
	}
}

func checkDaemonSet(t *testing.T, ds appsv1.DaemonSet, set []string) {
	t.Helper()
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || !spec.HostPID {
		t.Errorf("hostNetwork %v hostPID %v, want both", spec.HostNetwork, spec.HostPID)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"SYS_PTRACE", "NET_ADMIN", "NET_BROADCAST"}) {
		t.Errorf("securityContext %+v, want a read-only root and only SYS_PTRACE, NET_ADMIN, NET_BROADCAST", sc)
	}
	// Unconfined unless set otherwise: the runtime's default profile
	// refuses the ptrace read of processes under another profile.
	wantAppArmor := &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
	switch {
	case slices.Contains(set, "appArmorProfile=null"):
		wantAppArmor = nil
	case slices.Contains(set, "appArmorProfile.type=Localhost"):
		profile := "k8s-cve"
		wantAppArmor = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &profile}
	}
	if sc != nil && !reflect.DeepEqual(sc.AppArmorProfile, wantAppArmor) {
		t.Errorf("appArmorProfile %+v, want %+v", sc.AppArmorProfile, wantAppArmor)
	}
	if !reflect.DeepEqual(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v, pod labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
		if !m.ReadOnly {
			t.Errorf("volume %s mounted at %s read-write, want read-only", m.Name, m.MountPath)
		}
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	if hostPaths["proc"] != "/proc" || mounts["proc"].MountPath != "/host/proc" || !slices.Contains(c.Args, "--path.procfs=/host/proc") {
		t.Errorf("host /proc: volume %q mount %+v args %v", hostPaths["proc"], mounts["proc"], c.Args)
	}

	kubernetes, identity := true, true
	socket := "/run/containerd/containerd.sock"
	for _, s := range set {
		switch {
		case s == "kubernetes.enabled=false":
			kubernetes = false
		case s == "containerIdentity.enabled=false":
			identity = false
		case strings.HasPrefix(s, "kubernetes.criSocket="):
			socket = strings.TrimPrefix(s, "kubernetes.criSocket=")
		case strings.HasPrefix(s, "extraArgs={"):
			for _, a := range strings.Split(strings.Trim(strings.TrimPrefix(s, "extraArgs="), "{}"), ",") {
				if !slices.Contains(c.Args, a) {
					t.Errorf("args %v lack extra %s", c.Args, a)
				}
			}
		}
	}
	if got := slices.Contains(c.Args, "--collector.container-identity"); got != identity {
		t.Errorf("args %v: --collector.container-identity %v, want %v", c.Args, got, identity)
	}
	if got := slices.Contains(c.Args, "--collector.kubernetes"); got != kubernetes {
		t.Errorf("args %v: --collector.kubernetes %v, want %v", c.Args, got, kubernetes)
	}
	m, mounted := mounts["cri"]
	if !kubernetes {
		if mounted || hostPaths["cri"] != "" {
			t.Errorf("kubernetes off, but the CRI socket is mounted: %+v %q", m, hostPaths["cri"])
		}
		return
	}
	// The socket's directory, so that a runtime restart's new socket is seen.
	dir := filepath.Dir(socket)
	if hostPaths["cri"] != dir || m.MountPath != "/host"+dir || !m.ReadOnly {
		t.Errorf("CRI socket %s: volume %q mounted %+v, want %s read-only at /host%s", socket, hostPaths["cri"], m, dir, dir)
	}
	if want := "--kubernetes.cri-endpoint=unix:///host" + socket; !slices.Contains(c.Args, want) {
		t.Errorf("args %v lack %s", c.Args, want)
	}
}

// checkScrape: honorLabels (the exporter's namespace and pod are kept),
// the metrics port, node and instance from the node's name, job
// container_vnic, and the target's namespace, pod, container dropped.
func checkScrape(t *testing.T, kind string, honor bool, port string, relabel []monitoringv1.RelabelConfig) {
	t.Helper()
	if !honor {
		t.Errorf("%s: honorLabels false: Prometheus would rename the exporter's namespace and pod to exported_*", kind)
	}
	if port != "metrics" {
		t.Errorf("%s: port %q, want metrics", kind, port)
	}
	targets := map[string]bool{}
	var dropped string
	for _, r := range relabel {
		if r.TargetLabel != "" {
			targets[r.TargetLabel] = true
		}
		if r.Action == "labeldrop" && r.Regex != "" {
			dropped = r.Regex
		}
	}
	for _, l := range []string{"node", "instance", "job"} {
		if !targets[l] {
			t.Errorf("%s: no relabeling sets %s: %+v", kind, l, relabel)
		}
	}
	if dropped != "namespace|pod|container" {
		t.Errorf("%s: labeldrop %q, want namespace|pod|container", kind, dropped)
	}
}

// exampleGroups are the rule groups of the example files, in the
// PrometheusRule's order.
func exampleGroups(t *testing.T) []monitoringv1.RuleGroup {
	t.Helper()
	var all []monitoringv1.RuleGroup
	for _, f := range []string{rulesFile, recipes} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSONStrict(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var doc struct {
			Groups []monitoringv1.RuleGroup `json:"groups"`
		}
		if err := strictJSON(j, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(doc.Groups) == 0 {
			t.Fatalf("%s: no groups", f)
		}
		all = append(all, doc.Groups...)
	}
	return all
}

func checkRules(t *testing.T, r monitoringv1.PrometheusRule) {
	t.Helper()
	want := exampleGroups(t)
	if !reflect.DeepEqual(r.Spec.Groups, want) {
		g, _ := json.MarshalIndent(r.Spec.Groups, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("PrometheusRule groups differ from %s and %s:\n%s\nwant\n%s", rulesFile, recipes, g, w)
	}
	alerts := 0
	for _, g := range r.Spec.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				alerts++
			}
		}
	}
	if alerts == 0 {
		t.Error("PrometheusRule has no alerts")
	}
}

func checkDashboard(t *testing.T, c corev1.ConfigMap) {
	t.Helper()
	if c.Labels["grafana_dashboard"] != "1" {
		t.Errorf("ConfigMap %s labels %v: no grafana_dashboard=\"1\" for the Grafana sidecar", c.Name, c.Labels)
	}
	want, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Data["container-vnic.json"]
	if got != strings.TrimRight(string(want), "\n") {
		t.Errorf("ConfigMap %s container-vnic.json (%d bytes) is not %s (%d bytes)", c.Name, len(got), dashboard, len(want))
	}
	if !json.Valid([]byte(got)) {
		t.Errorf("ConfigMap %s: container-vnic.json is not JSON", c.Name)
	}
}

// The chart's files are links to the examples: one source.
func TestChartFilesAreTheExamples(t *testing.T) {
	for link, target := range map[string]string{
		"files/rules.yml":           rulesFile,
		"files/recipes.yml":         recipes,
		"files/container-vnic.json": dashboard,
	} {
		p := filepath.Join(chartDir, link)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is a copy, want a link to %s", p, target)
			continue
		}
		a, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Errorf("%s does not lead to %s", p, target)
		}
	}
}

// Bad values fail the rendering with a message naming the value.
func TestTemplateRejects(t *testing.T) {
	findHelm(t)
	for _, tc := range []struct{ set, want string }{
		{"kubernetes.criSocket=", "kubernetes.criSocket: the CRI socket's path"},
		{"kubernetes.criSocket=run/containerd.sock", `kubernetes.criSocket "run/containerd.sock": an absolute path`},
		// values.schema.json: a misspelt key or a wrong type.
		{"serviceMonitor.enabeld=true", "at '/serviceMonitor': additional properties 'enabeld' not allowed"},
		{"port=metrics", "at '/port': got string, want integer"},
		{"imagePullSecrets[0]=regcred", "at '/imagePullSecrets/0': got string, want object"},
		{"podAnnotations.foo=1", "at '/podAnnotations/foo': got number, want string"},
		{"serviceMonitor.additionalLabels.release=true", "at '/serviceMonitor/additionalLabels/release': got boolean, want string"},
		{"appArmorProfile.type=unconfined", "at '/appArmorProfile/type': value must be one of"},
		{"appArmorProfile.type=Localhost", "at '/appArmorProfile': missing property 'localhostProfile'"},
	} {
		out, err := helm(t, "template", "x", chartDir, "--set", tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: %v, want an error with %q\n%s", tc.set, err, tc.want, out)
		}
	}
}

// The chart's appVersion is the exporter's version: the default image tag.
func TestAppVersionIsVersion(t *testing.T) {
	chart, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	version, err := os.ReadFile(filepath.Join(chartDir, "..", "..", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("appVersion: %q", strings.TrimSpace(string(version)))
	if !slices.Contains(strings.Split(string(chart), "\n"), want) {
		t.Errorf("Chart.yaml has no line %s (VERSION)", want)
	}
}

// The strict decoding is what catches a misspelt or misplaced field: these
// inputs must fail it.
func TestDecodeRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          readOnly: true
`,
		"field in the wrong case": `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          volumeMounts:
            - {name: proc, mountPath: /host/proc, readonly: true}
`,
		"misplaced honorLabels": `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  honorLabels: true
  endpoints: [{port: metrics}]
`,
		"duplicate key": `apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: "1", a: "2"}
`,
		"unknown kind": `apiVersion: v1
kind: Secret
metadata: {name: x}
`,
	} {
		if _, err := decode("---\n" + doc); err == nil {
			t.Errorf("%s: decoded without error:\n%s", name, doc)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// And the same shape, spelt right, decodes.
	if _, err := decode("---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          stdin: true\n"); err != nil {
		t.Errorf("a valid DaemonSet: %v", err)
	}
}

// hostPaths lists the host paths of volumes (their names may differ), with
// their types.
func hostPaths(volumes []corev1.Volume) map[string]string {
	m := map[string]string{}
	for _, v := range volumes {
		if hp := v.HostPath; hp != nil {
			typ := ""
			if hp.Type != nil {
				typ = string(*hp.Type)
			}
			m[hp.Path] = typ
		}
	}
	return m
}

// The chart's DaemonSet runs the exporter as examples/kubernetes/daemonset.yaml
// does (which docs/running.md explains line by line, and the CRI test runs):
// the same host namespaces, security context, probes, resources,
// scheduling, host paths, and every flag of the example. The example is
// decoded strictly too.
func TestTemplateMatchesExampleDaemonSet(t *testing.T) {
	b, err := os.ReadFile(exampleDaemonSet)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := decode(string(b))
	if err != nil {
		t.Fatalf("%s: %v", exampleDaemonSet, err)
	}
	if len(ex.daemonSets) != 1 {
		t.Fatalf("%s: %v, want one DaemonSet", exampleDaemonSet, ex.kinds())
	}
	want := ex.daemonSets[0].Spec.Template.Spec
	got := render(t, nil).daemonSets[0].Spec.Template.Spec
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"hostNetwork", got.HostNetwork, want.HostNetwork},
		{"hostPID", got.HostPID, want.HostPID},
		{"automountServiceAccountToken", got.AutomountServiceAccountToken, want.AutomountServiceAccountToken},
		{"tolerations", got.Tolerations, want.Tolerations},
		{"nodeSelector", got.NodeSelector, want.NodeSelector},
		{"affinity", got.Affinity, want.Affinity},
		{"host paths", hostPaths(got.Volumes), hostPaths(want.Volumes)},
		{"securityContext", got.Containers[0].SecurityContext, want.Containers[0].SecurityContext},
		{"ports", got.Containers[0].Ports, want.Containers[0].Ports},
		{"readinessProbe", got.Containers[0].ReadinessProbe, want.Containers[0].ReadinessProbe},
		{"livenessProbe", got.Containers[0].LivenessProbe, want.Containers[0].LivenessProbe},
		{"resources", got.Containers[0].Resources, want.Containers[0].Resources},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			g, _ := json.Marshal(f.got)
			w, _ := json.Marshal(f.want)
			t.Errorf("%s: the chart's %s\n  %s\nthe example's\n  %s", exampleDaemonSet, f.name, g, w)
		}
	}
	// The endpoint is where each mounts the socket; every other flag of
	// the example must be the chart's default too.
	for _, a := range want.Containers[0].Args {
		if !strings.HasPrefix(a, "--kubernetes.cri-endpoint=") && !slices.Contains(got.Containers[0].Args, a) {
			t.Errorf("%s passes %s, the chart does not: %v", exampleDaemonSet, a, got.Containers[0].Args)
		}
	}
}
