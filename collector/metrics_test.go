package collector

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

type fakeResolver struct {
	snap vnic.Snapshot
	err  error
}

func (f fakeResolver) ResolveAll() (vnic.Snapshot, error) { return f.snap, f.err }

func TestMetricsFromSnapshot(t *testing.T) {
	snap := vnic.Snapshot{
		Namespaces: []vnic.Netns{
			{Inode: 4026532301, PID: 10, VNICs: []vnic.VNIC{
				{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth1", HostIfindex: 14, Kind: "veth"},
				{ContainerIfname: "net.1-x", ContainerIfindex: 3, HostIfname: "fifteen-bytes15", HostIfindex: 15, Kind: "veth"},
			}},
			{Inode: 4026532400, PID: 20},
		},
		Walk:     vnic.WalkStats{Processes: 50, Skipped: map[vnic.Cause]int{vnic.CauseNoPtrace: 2, vnic.CauseProtected: 1, vnic.CauseVanished: 1}},
		Failed:   map[vnic.Cause]int{vnic.CauseNetlink: 1},
		Vanished: 2,
		Queried:  1,
		Reused:   1,
		Overflow: true,
	}
	col := New(fakeResolver{snap: snap}, promslog.NewNopLogger())
	want := infoHelp + `container_vnic_info{container_ifname="eth0",host_ifname="veth1",netns="4026532301",pid="10"} 1
container_vnic_info{container_ifname="net.1-x",host_ifname="fifteen-bytes15",netns="4026532301",pid="10"} 1
` + selfMetricsHelp + `
container_vnic_namespaces 5
container_vnic_namespaces_without_vnic 1
# HELP container_vnic_processes Processes the last scrape looked at in procfs; see container_vnic_processes_skipped for those it could not read.
# TYPE container_vnic_processes gauge
container_vnic_processes 50
# HELP container_vnic_namespaces_queried Network namespaces the last scrape resolved afresh; the others were answered from the notification-driven cache (with counters on, their links are still dumped, aimed at the namespace id the cache kept).
# TYPE container_vnic_namespaces_queried gauge
container_vnic_namespaces_queried 1
# HELP container_vnic_notification_overflows_total Times link notifications were lost (socket overflow) and the cache was rebuilt.
# TYPE container_vnic_notification_overflows_total counter
container_vnic_notification_overflows_total 1
container_vnic_processes_skipped{cause="no_cap_sys_ptrace"} 2
container_vnic_processes_skipped{cause="process_vanished"} 3
container_vnic_processes_skipped{cause="procfs"} 0
container_vnic_processes_skipped{cause="protected"} 1
container_vnic_scrape_errors{cause="netlink"} 1
container_vnic_scrape_errors{cause="permission_denied"} 0
container_vnic_scrape_errors{cause="procfs"} 0
container_vnic_scrape_success 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"container_vnic_info", "container_vnic_namespaces", "container_vnic_namespaces_without_vnic",
		"container_vnic_namespaces_queried", "container_vnic_notification_overflows_total", "container_vnic_processes",
		"container_vnic_processes_skipped", "container_vnic_scrape_errors", "container_vnic_scrape_success"); err != nil {
		t.Fatal(err)
	}
}

// A failed walk yields success 0 and a duration, and no other series: no
// half answer.
func TestMetricsOnResolverError(t *testing.T) {
	col := New(fakeResolver{err: errors.New("listing processes in /proc: boom")}, promslog.NewNopLogger())
	if n := testutil.CollectAndCount(col); n != 3 {
		t.Fatalf("got %d series, want 3 (duration, success, overflows)", n)
	}
	want := `# HELP container_vnic_scrape_success 1 if every container network namespace found was resolved, 0 if the walk failed, any namespace could not be resolved, or processes were skipped for lack of CAP_SYS_PTRACE.
# TYPE container_vnic_scrape_success gauge
container_vnic_scrape_success 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_scrape_success"); err != nil {
		t.Fatal(err)
	}
}

// With identity on, each series carries the container and pod of its
// namespace's oldest process; an unknown or unreadable one gives empty values.
func TestMetricsWithIdentity(t *testing.T) {
	snap := vnic.Snapshot{Namespaces: []vnic.Netns{
		{Inode: 1001, PID: 10, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth10", Kind: "veth"}}},
		{Inode: 1002, PID: 20, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth20", Kind: "veth"}}},
		{Inode: 1003, PID: 30, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth30", Kind: "veth"}}},
	}}
	id := strings.Repeat("ab", 32)
	identities := func(_ uint64, pid int) (cgroupid.Identity, error) {
		switch pid {
		case 10:
			return cgroupid.Identity{ContainerID: id, PodUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", Runtime: "containerd"}, nil
		case 20:
			return cgroupid.Identity{}, nil // a layout not known
		}
		return cgroupid.Identity{}, errors.New("open /proc/30/cgroup: no such file or directory")
	}
	col := New(fakeResolver{snap: snap}, promslog.NewNopLogger()).WithIdentity(identities)
	want := infoHelp + `container_vnic_info{container_id="` + id + `",container_ifname="eth0",host_ifname="veth10",netns="1001",pid="10",pod_uid="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",runtime="containerd"} 1
container_vnic_info{container_id="",container_ifname="eth0",host_ifname="veth20",netns="1002",pid="20",pod_uid="",runtime=""} 1
container_vnic_info{container_id="",container_ifname="eth0",host_ifname="veth30",netns="1003",pid="30",pod_uid="",runtime=""} 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_info"); err != nil {
		t.Fatal(err)
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"eth0":           "eth0",
		"q\"b\\é.-_9":    `q"b\é.-_9`,
		"e\xff":          "e:ff",
		"\xc3\x28ab\x80": ":c3(ab:80",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// Processes skipped for lack of CAP_SYS_PTRACE make the scrape a failure
// even when every namespace it did see was resolved: it is blind.
func TestBlindScrapeFails(t *testing.T) {
	for _, tc := range []struct {
		blind bool
		want  string
	}{{true, "0"}, {false, "1"}} {
		snap := vnic.Snapshot{
			Walk:  vnic.WalkStats{Processes: 177, Skipped: map[vnic.Cause]int{vnic.CauseNoPtrace: 176}},
			Blind: tc.blind,
		}
		col := New(fakeResolver{snap: snap}, promslog.NewNopLogger())
		want := `# HELP container_vnic_scrape_success 1 if every container network namespace found was resolved, 0 if the walk failed, any namespace could not be resolved, or processes were skipped for lack of CAP_SYS_PTRACE.
# TYPE container_vnic_scrape_success gauge
container_vnic_scrape_success ` + tc.want + "\n"
		if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_scrape_success"); err != nil {
			t.Errorf("blind %v: %v", tc.blind, err)
		}
	}
}

// fakeKube names pods from a map, counting the questions.
type fakeKube struct {
	pods  map[string]kube.Pod
	up    bool
	calls int
	refs  []kube.PodRef // the last call's
}

func (f *fakeKube) Pods(refs []kube.PodRef) (map[string]kube.Pod, bool) {
	f.calls++
	f.refs = refs
	out := map[string]kube.Pod{}
	for _, r := range refs {
		if p, ok := f.pods[r.UID]; ok {
			out[r.UID] = p
		}
	}
	return out, f.up
}

// With Kubernetes names, the vNIC series of a pod's namespace carry its
// namespace and name, each running container has a container_info series,
// and a namespace outside Kubernetes, or of a pod the runtime does not
// know, keeps empty names. The runtime is asked once per scrape.
func TestMetricsWithKubernetes(t *testing.T) {
	const uidA, uidB = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "11111111-2222-4333-8444-555555555555"
	snap := vnic.Snapshot{Namespaces: []vnic.Netns{
		{Inode: 1001, PID: 10, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth10", HostIfindex: 7, Kind: "veth",
			ContainerStats: &vnic.Stats{RxBytes: 5}, HostStats: &vnic.Stats{TxBytes: 5}}}},
		{Inode: 1002, PID: 20, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth20", Kind: "veth"}}},
		{Inode: 1003, PID: 30, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth30", Kind: "veth"}}},
		{Inode: 1004, PID: 40}, // no vNIC: no series, no question
	}}
	sandbox, app := strings.Repeat("aa", 32), strings.Repeat("bb", 32)
	identities := func(_ uint64, pid int) (cgroupid.Identity, error) {
		switch pid {
		case 10:
			return cgroupid.Identity{ContainerID: sandbox, PodUID: uidA}, nil
		case 20:
			return cgroupid.Identity{ContainerID: app, PodUID: uidB}, nil
		case 40:
			t.Error("identity asked for a namespace without vNIC")
		}
		return cgroupid.Identity{ContainerID: app, Runtime: "docker"}, nil
	}
	k := &fakeKube{up: true, pods: map[string]kube.Pod{uidA: {Namespace: "shop", Name: "web-1", Containers: []kube.Container{
		{ID: "c1", Name: "app", Image: "nginx:1.27"}, {ID: "c2", Name: "sidecar", Image: "envoy:1"},
	}}}}
	col := New(fakeResolver{snap: snap}, promslog.NewNopLogger()).WithIdentity(identities).WithKubernetes(k)
	want := infoHelp + `container_vnic_info{container_id="` + sandbox + `",container_ifname="eth0",host_ifname="veth10",namespace="shop",netns="1001",pid="10",pod="web-1",pod_uid="` + uidA + `",runtime=""} 1
container_vnic_info{container_id="` + app + `",container_ifname="eth0",host_ifname="veth20",namespace="",netns="1002",pid="20",pod="",pod_uid="` + uidB + `",runtime=""} 1
container_vnic_info{container_id="` + app + `",container_ifname="eth0",host_ifname="veth30",namespace="",netns="1003",pid="30",pod="",pod_uid="",runtime="docker"} 1
# HELP container_vnic_container_info A running container of the Kubernetes pod in a network namespace, as the node's container runtime (CRI) names it (value is always 1).
# TYPE container_vnic_container_info gauge
container_vnic_container_info{container="app",container_id="c1",image="nginx:1.27",namespace="shop",netns="1001",pod="web-1"} 1
container_vnic_container_info{container="sidecar",container_id="c2",image="envoy:1",namespace="shop",netns="1001",pod="web-1"} 1
# HELP container_vnic_kubernetes_up 1 if the node's container runtime (CRI) answered the last query for pod names, else 0 (names last seen are kept for namespaces still present).
# TYPE container_vnic_kubernetes_up gauge
container_vnic_kubernetes_up 1
# HELP container_vnic_receive_bytes_total ` + vnicFields[0].help(containerEnd) + `
# TYPE container_vnic_receive_bytes_total counter
container_vnic_receive_bytes_total{container_id="` + sandbox + `",container_ifindex="2",container_ifname="eth0",host_ifindex="7",host_ifname="veth10",namespace="shop",netns="1001",pod="web-1",pod_uid="` + uidA + `",runtime=""} 5
`
	names := []string{"container_vnic_info", "container_vnic_container_info", "container_vnic_kubernetes_up", "container_vnic_receive_bytes_total"}
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if k.calls != 1 {
		t.Errorf("one scrape asked the runtime %d times, want once", k.calls)
	}
	// Every family the collector emits is described, with these labels.
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}

	k.up = false
	want = `# HELP container_vnic_kubernetes_up 1 if the node's container runtime (CRI) answered the last query for pod names, else 0 (names last seen are kept for namespaces still present).
# TYPE container_vnic_kubernetes_up gauge
container_vnic_kubernetes_up 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_kubernetes_up"); err != nil {
		t.Error(err)
	}
}

// A pod with two ready sandboxes (kubelet makes its sandbox again before
// the old one is gone) has two network namespaces with one pod UID: each
// lists the containers of its own sandbox, found by the ID of the oldest
// process's container, the pause's (the sandbox's) or, without a pause
// process, a container's; a sandbox with no running container lists none.
func TestMetricsWithKubernetesTwoSandboxes(t *testing.T) {
	const uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	s1, s2, s3, c3 := strings.Repeat("a1", 32), strings.Repeat("a2", 32), strings.Repeat("a3", 32), strings.Repeat("c3", 32)
	snap := vnic.Snapshot{Namespaces: []vnic.Netns{
		{Inode: 1001, PID: 10, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth10", Kind: "veth"}}},
		{Inode: 1002, PID: 20, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth20", Kind: "veth"}}},
		// A third sandbox, its network ready and its containers not yet
		// started: none of the others' are its.
		{Inode: 1003, PID: 30, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth30", Kind: "veth"}}},
	}}
	identities := func(_ uint64, pid int) (cgroupid.Identity, error) {
		switch pid {
		case 10:
			return cgroupid.Identity{ContainerID: s1, PodUID: uid}, nil
		case 30:
			return cgroupid.Identity{ContainerID: s3, PodUID: uid}, nil
		}
		return cgroupid.Identity{ContainerID: c3, PodUID: uid}, nil
	}
	k := &fakeKube{up: true, pods: map[string]kube.Pod{uid: {Namespace: "shop", Name: "web-1", Sandboxes: []string{s1, s2, s3}, Containers: []kube.Container{
		{ID: "c1", Name: "app", Image: "app:1", SandboxID: s1},
		{ID: c3, Name: "app", Image: "app:2", SandboxID: s2},
		{ID: "c2", Name: "sidecar", Image: "envoy:1", SandboxID: s1},
	}}}}
	col := New(fakeResolver{snap: snap}, promslog.NewNopLogger()).WithIdentity(identities).WithKubernetes(k)
	want := `# HELP container_vnic_container_info A running container of the Kubernetes pod in a network namespace, as the node's container runtime (CRI) names it (value is always 1).
# TYPE container_vnic_container_info gauge
container_vnic_container_info{container="app",container_id="c1",image="app:1",namespace="shop",netns="1001",pod="web-1"} 1
container_vnic_container_info{container="sidecar",container_id="c2",image="envoy:1",namespace="shop",netns="1001",pod="web-1"} 1
container_vnic_container_info{container="app",container_id="` + c3 + `",image="app:2",namespace="shop",netns="1002",pod="web-1"} 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_container_info"); err != nil {
		t.Fatal(err)
	}
	// The runtime is asked with each namespace's container ID: one it has
	// not told of yet (a new sandbox) makes it answer at once.
	wantRefs := []kube.PodRef{{UID: uid, ContainerID: s1}, {UID: uid, ContainerID: c3}, {UID: uid, ContainerID: s3}}
	if !slices.Equal(k.refs, wantRefs) {
		t.Errorf("asked the runtime for %+v, want %+v", k.refs, wantRefs)
	}
}

// A source's Prepare runs once per resolution, before its Values, with
// every namespace with vNICs and the labels of the sources before it.
func TestLabelSourcePrepare(t *testing.T) {
	snap := vnic.Snapshot{Namespaces: []vnic.Netns{
		{Inode: 1001, PID: 10, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth10", Kind: "veth"}}},
		{Inode: 1002, PID: 20}, // no vNIC: not prepared
		{Inode: 1003, PID: 30, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", HostIfname: "veth30", Kind: "veth"}}},
	}}
	prepares := 0
	var seen []string
	col := New(fakeResolver{snap: snap}, promslog.NewNopLogger()).
		WithLabels(LabelSource{Names: []string{"first"}, Values: func(_ uint64, pid int) []string { return []string{fmt.Sprint("p", pid)} }}).
		WithLabels(LabelSource{Names: []string{"second"},
			Prepare: func(all []NamespaceLabels) {
				prepares++
				seen = nil
				for _, ns := range all {
					seen = append(seen, fmt.Sprintf("%d/%d/%s/%q", ns.Netns, ns.PID, ns.Value("first"), ns.Value("second")))
				}
			},
			Values: func(netns uint64, _ int) []string { return []string{fmt.Sprint(len(seen), "-", netns)} }})
	want := infoHelp + `container_vnic_info{container_ifname="eth0",first="p10",host_ifname="veth10",netns="1001",pid="10",second="2-1001"} 1
container_vnic_info{container_ifname="eth0",first="p30",host_ifname="veth30",netns="1003",pid="30",second="2-1003"} 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_info"); err != nil {
		t.Fatal(err)
	}
	if prepares != 1 || !slices.Equal(seen, []string{`1001/10/p10/""`, `1003/30/p30/""`}) {
		t.Errorf("%d prepares, saw %q; want one, with the first source's labels", prepares, seen)
	}
}

// A source marked InfoOnly puts its labels on container_vnic_info only;
// the others' go on the per-vNIC families too.
func TestLabelSourceInfoOnly(t *testing.T) {
	snap := vnic.Snapshot{Namespaces: []vnic.Netns{{Inode: 1001, PID: 10, VNICs: []vnic.VNIC{{ContainerIfname: "eth0", ContainerIfindex: 2,
		HostIfname: "veth10", HostIfindex: 7, Kind: "veth", ContainerStats: &vnic.Stats{RxBytes: 5}}}}}}
	col := New(fakeResolver{snap: snap}, promslog.NewNopLogger()).
		WithLabels(LabelSource{Names: []string{"long_id"}, InfoOnly: true, Values: func(uint64, int) []string { return []string{"abc"} }}).
		WithLabels(LabelSource{Names: []string{"name"}, Values: func(uint64, int) []string { return []string{"web"} }})
	want := infoHelp + `container_vnic_info{container_ifname="eth0",host_ifname="veth10",long_id="abc",name="web",netns="1001",pid="10"} 1
# HELP container_vnic_receive_bytes_total Container end (the container's own interface, veth or macvlan-like): bytes received, as the container counts: its own view, and the one to use under eBPF host routing.
# TYPE container_vnic_receive_bytes_total counter
container_vnic_receive_bytes_total{container_ifindex="2",container_ifname="eth0",host_ifindex="7",host_ifname="veth10",name="web",netns="1001"} 5
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_info", "container_vnic_receive_bytes_total"); err != nil {
		t.Fatal(err)
	}
}
