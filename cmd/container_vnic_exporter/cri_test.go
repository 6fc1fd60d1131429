package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

// pauseImage is the sandbox image containerd 1.6's CRI runs in every pod;
// the test builds it, so that nothing is pulled.
const pauseImage = "registry.k8s.io/pause:3.6"

// TestCRIPods proves the exporter and psnic on pods made the way a
// Kubernetes node makes them: containerd's CRI plugin, driven through the
// CRI API by crictl, with kubelet's cgroupfs layout
// (/kubepods/besteffort/pod<uid>/<id>) and a CNI bridge network. Pod 1 has
// two containers in its sandbox's network namespace, pods 2 and 3 one;
// pod 3's cgroup has the systemd driver's shape (systemdParent). The
// exporter names each pod from containerd's CRI as crictl does, keeps the
// names with kubernetes_up 0 while containerd is stopped (the shims keep
// the pods running), and names a pod made after containerd is back. The
// exporter runs in a pod of its own with the settings of
// examples/kubernetes/daemonset.yaml; it must show each pod's veth once,
// with the pod's UID, and psnic, exec'd in the exporter's container, must
// agree for every process of each pod, with the container ids crictl
// reports. Expectations come from crictl, each pod's own sysfs and `ip
// link`, never from this project's code.
//
// No traffic is sent; the pods' addresses are link-local, from a range
// picked at random, and the bridge has none.
func TestCRIPods(t *testing.T) {
	netnstest.RequireRoot(t)
	busybox := requireCRITools(t)
	c := startContainerd(t)

	c.importImage(t, pauseImage, buildPauseRootfs(t), "", "/pause")
	c.importImage(t, "localhost/cvx-app:cri-test", sleeperRootfs(t, busybox), "", "/bin/sleep", "3600")
	c.importImage(t, exporterCRIImage, exporterRootfs(t), "65534:65534", "/bin/container_vnic_exporter")

	pod1 := c.runPod(t, "cvx-pod1", newUUID(t), cgroupfsParent, "app-a", "app-b")
	// A static pod's UID: kubelet's md5 of its manifest, 32 hex digits.
	pod2 := c.runPod(t, "cvx-pod2", staticUID(t), cgroupfsParent, "app")
	// The pod cgroup the systemd driver makes.
	pod3 := c.runPod(t, "cvx-pod3", newUUID(t), systemdParent, "app")
	pods := []*criPod{pod1, pod2, pod3}
	if pod1.netns == pod2.netns || pod1.netns == pod3.netns || pod2.netns == pod3.netns {
		t.Fatalf("pods share a netns: %d %d %d", pod1.netns, pod2.netns, pod3.netns)
	}
	sleepers := sleepersOf(pods)

	e := c.runExporterPod(t)
	families := e.scrapeUntil(t, exactSeriesFor(sleepers))
	checkHealthyScrape(t, families)

	t.Run("exporter", func(t *testing.T) {
		for _, p := range pods {
			var got []map[string]string
			for _, l := range seriesLabels(families, "container_vnic_info") {
				if l["netns"] == p.netnsLabel() {
					got = append(got, l)
				}
			}
			// exactSeriesFor checked the four labels: one series, eth0.
			if len(got) != 1 {
				t.Fatalf("%s: %d series, want 1: %v", p.name, len(got), got)
			}
			l := got[0]
			owner := p.idOfPID[p.lowestPID]
			if owner == "" {
				t.Fatalf("%s: oldest process %d of its netns is none of the pod's (crictl says %v)", p.name, p.lowestPID, p.idOfPID)
			}
			if l["pod_uid"] != p.uid || l["container_id"] != owner || l["runtime"] != p.runtime {
				t.Errorf("%s: series %v, want pod_uid %s container_id %s runtime %q", p.name, l, p.uid, owner, p.runtime)
			}
		}
	})

	// psnic as a user of the DaemonSet runs it: exec'd in the exporter's
	// container, with its privileges.
	t.Run("psnic", func(t *testing.T) {
		for _, p := range pods {
			var pids []string
			var want []string
			for pid, id := range p.idOfPID {
				pids = append(pids, strconv.Itoa(pid))
				want = append(want, fmt.Sprintf("pid=%d eth0/%s %s %s %q", pid, p.want[0].HostIfname, id, p.uid, p.runtime))
			}
			stdout := c.crictl(t, append([]string{"exec", e.id, "/bin/psnic", "--path.procfs=/host/proc", "-o", "json"}, pids...)...)
			var rows []struct {
				PID             int
				ContainerIfname string `json:"container_ifname"`
				HostIfname      string `json:"host_ifname"`
				ContainerID     string `json:"container_id"`
				PodUID          string `json:"pod_uid"`
				Runtime         string
			}
			if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
				t.Fatalf("psnic: %v: %q", err, stdout)
			}
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("pid=%d %s/%s %s %s %q", r.PID, r.ContainerIfname, r.HostIfname, r.ContainerID, r.PodUID, r.Runtime))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: psnic rows:\n got %q\nwant %q", p.name, got, want)
			}
		}
	})

	// Names as crictl gives them, on every vNIC series, and one
	// container_info series per running container.
	t.Run("kubernetes names", func(t *testing.T) {
		named := c.namedAsCrictlSays(t, pods)
		e.scrapeUntil(t, allOf(kubernetesUp(1), named))
		t.Logf("scrape excerpt for %s:\n%s", pod1.name, e.excerpt(t, pod1))
	})

	// --no-collector.counters.identity takes the identity labels off the
	// counters, not the names: the dashboard and the rules select the
	// counters by namespace and pod. (An exporter on the host, asking the
	// same containerd.)
	t.Run("kubernetes names without identity on counters", func(t *testing.T) {
		p := startExporter(t, "--collector.kubernetes", "--no-collector.counters.identity",
			"--kubernetes.cri-endpoint=unix://"+c.socket)
		scrapeUntil(t, "exporter on the host", "http://"+p.addr+"/metrics",
			allOf(kubernetesUp(1), c.namedAsCrictlSays(t, pods)), func() (string, bool) {
				if err := syscall.Kill(p.cmd.Process.Pid, 0); err != nil {
					return "gone", false // reaped by its Wait
				}
				return "running", true
			})
	})

	// containerd stopped: its shims keep the pods running, the exporter
	// keeps every series and the names, with kubernetes_up 0. Started
	// again: up 1, and a pod made since is named.
	t.Run("runtime stopped and started", func(t *testing.T) {
		named := c.namedAsCrictlSays(t, pods)
		c.stop(t)
		e.scrapeUntil(t, allOf(kubernetesUp(0), exactSeriesFor(sleepers), named))
		c.start(t)
		pod4 := c.runPod(t, "cvx-pod4", newUUID(t), cgroupfsParent, "app")
		pods = append(pods, pod4)
		sleepers = sleepersOf(pods)
		e.scrapeUntil(t, allOf(kubernetesUp(1), exactSeriesFor(sleepers), c.namedAsCrictlSays(t, pods)))
		// One log line per change, not one per scrape: answering (at
		// start), not answering, answering.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		logs, err := c.command(ctx, "crictl", "logs", e.id).CombinedOutput()
		if err != nil {
			t.Fatalf("crictl logs: %v: %s", err, logs)
		}
		up, down := strings.Count(string(logs), "CRI runtime answering"), strings.Count(string(logs), "CRI runtime not answering")
		if up != 2 || down != 1 {
			t.Errorf("exporter logged the runtime answering %d times and not answering %d times, want 2 and 1:\n%s", up, down, logs)
		}
	})

	// A pod removed: its series go, the other pods' stay.
	t.Run("pod removed", func(t *testing.T) {
		c.crictl(t, "stopp", pod2.id)
		c.crictl(t, "rmp", pod2.id)
		var kept []*criPod
		for _, p := range pods {
			if p != pod2 {
				kept = append(kept, p)
			}
		}
		e.scrapeUntil(t, allOf(exactSeriesFor(sleepersOf(kept)), noSeriesFor(sleepersOf([]*criPod{pod2}))))
	})
}

func sleepersOf(pods []*criPod) []*sleeperContainer {
	var out []*sleeperContainer
	for _, p := range pods {
		out = append(out, &p.sleeperContainer)
	}
	return out
}

// allOf accepts a scrape that every cond accepts.
func allOf(conds ...func(map[string]*dto.MetricFamily) error) func(map[string]*dto.MetricFamily) error {
	return func(f map[string]*dto.MetricFamily) error {
		for _, cond := range conds {
			if err := cond(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// kubernetesUp accepts a scrape with container_vnic_kubernetes_up want.
func kubernetesUp(want float64) func(map[string]*dto.MetricFamily) error {
	return func(f map[string]*dto.MetricFamily) error {
		if got, ok := gaugeValue(f, "container_vnic_kubernetes_up"); !ok || got != want {
			return fmt.Errorf("container_vnic_kubernetes_up %v (present %v), want %v", got, ok, want)
		}
		return nil
	}
}

// namedAsCrictlSays returns a condition accepting a scrape in which the
// vNIC series of each pod's netns carry the pod's namespace and name, and
// container_vnic_container_info has exactly the pod's running containers,
// all as crictl reports them now. The exporter's own pod, in the host's
// network namespace (hostNetwork), has none.
func (c *containerd) namedAsCrictlSays(t *testing.T, pods []*criPod) func(map[string]*dto.MetricFamily) error {
	t.Helper()
	type names struct {
		namespace, pod string
		containers     []string // container/id/image, sorted
	}
	want := map[string]names{} // by netns label
	for _, p := range pods {
		var sandbox struct {
			Status struct {
				Metadata struct{ Name, Namespace string }
			}
		}
		if err := json.Unmarshal([]byte(c.crictl(t, "inspectp", "-o", "json", p.id)), &sandbox); err != nil {
			t.Fatalf("crictl inspectp %s: %v", p.id, err)
		}
		var ps struct {
			Containers []struct {
				ID       string
				Metadata struct{ Name string }
				Image    struct {
					Image              string
					UserSpecifiedImage string
				}
			}
		}
		if err := json.Unmarshal([]byte(c.crictl(t, "ps", "-o", "json", "--state", "running", "--pod", p.id)), &ps); err != nil {
			t.Fatalf("crictl ps --pod %s: %v", p.id, err)
		}
		n := names{namespace: sandbox.Status.Metadata.Namespace, pod: sandbox.Status.Metadata.Name}
		if n.pod != p.name {
			t.Fatalf("crictl names pod %s %q", p.id, n.pod)
		}
		for _, ctr := range ps.Containers {
			image := cmp.Or(ctr.Image.UserSpecifiedImage, ctr.Image.Image)
			n.containers = append(n.containers, ctr.Metadata.Name+"/"+ctr.ID+"/"+image)
		}
		if len(n.containers) != len(p.idOfPID)-1 {
			t.Fatalf("%s: crictl lists %d running containers, the pod has %d: %v", p.name, len(n.containers), len(p.idOfPID)-1, n.containers)
		}
		slices.Sort(n.containers)
		want[p.netnsLabel()] = n
	}
	return func(f map[string]*dto.MetricFamily) error {
		got := map[string][]string{}
		for _, l := range seriesLabels(f, "container_vnic_container_info") {
			if l["pod"] == "cvx-exporter" {
				return fmt.Errorf("the exporter's hostNetwork pod has a container_info series: %v", l)
			}
			if w, ok := want[l["netns"]]; ok {
				if l["namespace"] != w.namespace || l["pod"] != w.pod {
					return fmt.Errorf("container_info %v, want namespace %q pod %q", l, w.namespace, w.pod)
				}
				got[l["netns"]] = append(got[l["netns"]], l["container"]+"/"+l["container_id"]+"/"+l["image"])
			}
		}
		for netns, w := range want {
			slices.Sort(got[netns])
			if !slices.Equal(got[netns], w.containers) {
				return fmt.Errorf("%s: container_info %v, crictl says %v", w.pod, got[netns], w.containers)
			}
			for _, family := range []string{"container_vnic_info", "container_vnic_receive_bytes_total", "container_vnic_host_transmit_bytes_total"} {
				seen := 0
				for _, l := range seriesLabels(f, family) {
					if l["netns"] != netns {
						continue
					}
					seen++
					if l["namespace"] != w.namespace || l["pod"] != w.pod {
						return fmt.Errorf("%s series %v, want namespace %q pod %q", family, l, w.namespace, w.pod)
					}
					// With names, the identity labels stay on the info
					// family by default: namespace and pod name the pod.
					_, uid := l["pod_uid"]
					if onInfo := family == "container_vnic_info"; uid != onInfo {
						return fmt.Errorf("%s series %v: pod_uid present %v, want %v", family, l, uid, onInfo)
					}
				}
				if seen == 0 {
					return fmt.Errorf("no %s series for %s's netns %s", family, w.pod, netns)
				}
			}
		}
		return nil
	}
}

// requireCRITools returns the path of a static busybox, for the app image.
// Without the tools the test skips, except in CI, where it fails.
func requireCRITools(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (.ci/install-cri.sh installs containerd, the CNI plugins, gcc and crictl)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run this test, refusing to skip")
		}
		t.Skip(msg)
	}
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "crictl", "runc", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing("%s not installed: %v", tool, err)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing("CNI plugin %s not installed: %v", plugin, err)
		}
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		missing("busybox not installed: %v", err)
	}
	if err := checkStatic(busybox); err != nil {
		missing("%v", err)
	}
	return busybox
}

// containerd is a containerd the test started, with its own root, state,
// socket, configuration and CNI configuration. Its bridge, veths, pod
// network namespaces (in /run/netns) and cgroups are host-wide all the
// same.
type containerd struct {
	dir    string
	socket string // in a directory of its own, mounted in the exporter's pod
	bridge string
	daemon *daemonProcess // nil while stopped
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	// A short path: shim and containerd sockets live below it.
	dir, err := os.MkdirTemp("", "cvx-cri-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, socket: filepath.Join(dir, "run", "containerd.sock"), bridge: "cvxcri" + netnstest.Suffix()}
	for _, sub := range []string{"cni", "logs", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A link-local /24 picked at random: no route to it matters on the host.
	subnet := fmt.Sprintf("169.254.%d.0/24", 100+randomByte(t)%100)
	writeFile(t, filepath.Join(dir, "cni", "10-cvx.conflist"), fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "cvx-cri-test",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": false,
    "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
  }]
}
`, c.bridge, subnet, filepath.Join(dir, "ipam")))
	// restrict_oom_score_adj: lowering oom_score_adj may be denied (as on
	// CI machines), and runc then fails to start the container.
	writeFile(t, filepath.Join(dir, "config.toml"), fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.socket, pauseImage, cniBinDir, filepath.Join(dir, "cni")))
	writeFile(t, filepath.Join(dir, "crictl.yaml"), "")

	cgroupsBefore := kubepodsCgroups()
	// Host-wide directories containerd's shims and the CNI library make.
	removeHostDirs := newHostDirs("/run/containerd", "/var/lib/cni")
	ready := false
	t.Cleanup(func() {
		if ready {
			if c.daemon == nil { // stopped by a test that failed before starting it again
				c.start(t)
			}
			c.cleanup(t)
		}
		c.stop(t)
		// Shims outlive containerd by design; after the pods are gone none
		// should be left. Any left is this test's: end it.
		for _, pid := range pidsWithArg(c.socket) {
			t.Errorf("cleanup: shim %d of the test's containerd left running: killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if linkExists(c.bridge) {
			if out, err := exec.Command("ip", "link", "del", c.bridge).CombinedOutput(); err != nil {
				t.Errorf("cleanup: ip link del %s: %v: %s", c.bridge, err, out)
			}
		}
		removeNewCgroups(t, cgroupsBefore)
		removeHostDirs()
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c.start(t)
	ready = true
	return c
}

// start starts the containerd (again), and waits until its CRI answers.
func (c *containerd) start(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(c.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.daemon = startDaemon(t, "containerd", exec.Command("containerd", "--config", filepath.Join(c.dir, "config.toml")), log)
	c.daemon.waitReady(t, func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.command(ctx, "crictl", "info").CombinedOutput()
	})
}

// stop stops the containerd; its shims, and so its pods, keep running.
func (c *containerd) stop(t *testing.T) {
	if c.daemon != nil {
		c.daemon.stop(t)
		c.daemon = nil
	}
}

// kubepodsCgroups returns the cgroup directories of kubelet's layouts
// (cgroupfs driver: kubepods, systemd driver: kubepods.slice), in every
// hierarchy: on a Kubernetes node, a real kubelet's.
func kubepodsCgroups() map[string]bool {
	dirs := map[string]bool{}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	sliceRoots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods.slice")
	roots = append(roots, sliceRoots...)
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs[path] = true
			}
			return nil
		})
	}
	return dirs
}

// removeNewCgroups removes the cgroup directories the test's pods made
// (their pod cgroups, and kubepods and its QoS classes where they were not
// there before), all empty once the pods are gone, deepest first.
func removeNewCgroups(t *testing.T, before map[string]bool) {
	var made []string
	for d := range kubepodsCgroups() {
		if !before[d] {
			made = append(made, d)
		}
	}
	slices.SortFunc(made, func(a, b string) int { return len(b) - len(a) })
	for _, d := range made {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// newHostDirs returns a function that removes those of dirs that do not
// exist now, once empty: host-wide directories that containerd and its
// shims make (runc's state under /run/containerd/runc) and leave behind.
func newHostDirs(dirs ...string) (remove func()) {
	var missing []string
	for _, d := range dirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, d)
		}
	}
	return func() {
		for _, d := range missing {
			removeEmptyDirs(d)
		}
	}
}

// removeEmptyDirs removes root and the directories below it, deepest
// first, as long as they are empty: another containerd may be using them.
func removeEmptyDirs(root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		_ = os.Remove(d) // fails, as it should, on a directory not empty
	}
}

// pidsWithArg returns the processes with arg among their arguments.
func pidsWithArg(arg string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && slices.Contains(strings.Split(string(b), "\x00"), arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// command returns crictl or ctr (in containerd's k8s.io namespace, where
// the CRI keeps its images), talking to the test's containerd.
func (c *containerd) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	switch tool {
	case "crictl":
		args = append([]string{"--config", filepath.Join(c.dir, "crictl.yaml"),
			"--runtime-endpoint", "unix://" + c.socket, "--image-endpoint", "unix://" + c.socket,
			"--timeout", "1m"}, args...)
	case "ctr":
		args = append([]string{"--address", c.socket, "--namespace", "k8s.io"}, args...)
	}
	return exec.CommandContext(ctx, tool, args...)
}

func (c *containerd) run(t testing.TB, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runCommand(t, c.command(ctx, tool, args...))
}

func (c *containerd) crictl(t testing.TB, args ...string) string {
	t.Helper()
	return c.run(t, "crictl", args...)
}

// cleanup stops and removes every pod sandbox, and their containers,
// veths and network namespaces with them.
func (c *containerd) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := c.command(ctx, "crictl", "rmp", "--all", "--force").CombinedOutput(); err != nil {
		t.Errorf("cleanup: crictl rmp --all --force: %v: %s", err, out)
	}
}

// importImage imports a one-layer image of rootfs, named ref, with
// entrypoint, from a docker-save archive: no registry.
func (c *containerd) importImage(t *testing.T, ref, rootfs, user string, entrypoint ...string) {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.AddFS(os.DirFS(rootfs)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(layer.Bytes()))
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint, "User": user},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := json.Marshal([]map[string]any{{
		"Config": "config.json", "RepoTags": []string{ref}, "Layers": []string{"layer.tar"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	aw := tar.NewWriter(f)
	for _, file := range []struct {
		name string
		data []byte
	}{{"layer.tar", layer.Bytes()}, {"config.json", config}, {"manifest.json", manifest}} {
		if err := aw.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := aw.Write(file.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c.run(t, "ctr", "images", "import", "--snapshotter", "native", archive)
	if out := c.crictl(t, "images", "-q", ref); out == "" {
		t.Fatalf("crictl does not list the imported image %s", ref)
	}
}

// buildPauseRootfs builds a static pause binary, as the sandbox image's
// /pause: it sleeps until a signal ends it, and reaps orphans.
func buildPauseRootfs(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "pause.c")
	writeFile(t, src, `#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
	signal(SIGINT, quit);
	signal(SIGTERM, quit);
	signal(SIGCHLD, reap);
	for (;;) pause();
}
`)
	rootfs := t.TempDir()
	if out, err := exec.Command("gcc", "-static", "-Os", "-o", filepath.Join(rootfs, "pause"), src).CombinedOutput(); err != nil {
		t.Fatalf("gcc -static pause.c: %v: %s", err, out)
	}
	if err := checkStatic(filepath.Join(rootfs, "pause")); err != nil {
		t.Fatal(err)
	}
	return rootfs
}

// sleeperRootfs is a root filesystem with busybox's sleep.
func sleeperRootfs(t *testing.T, busybox string) string {
	t.Helper()
	rootfs := t.TempDir()
	bin := filepath.Join(rootfs, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(bin, "sleep")); err != nil {
		t.Fatal(err)
	}
	return rootfs
}

// criPod is a pod sandbox started with crictl, with its containers.
type criPod struct {
	sleeperContainer        // the sandbox's pause process, and its netns
	id               string // the sandbox id crictl reports
	uid              string
	runtime          string // the runtime its cgroup path tells
	// idOfPID is the container id of each process of the pod, from
	// crictl: the sandbox's for the pause process.
	idOfPID map[int]string
}

// cgroupfsParent is the cgroup parent kubelet gives a BestEffort pod under
// the cgroupfs driver.
func cgroupfsParent(uid string) string { return "/kubepods/besteffort/pod" + uid }

// systemdParent is the cgroup parent kubelet gives a BestEffort pod under
// the systemd driver, with "-" in the UID turned to "_". containerd gives
// runc, for a parent ending in .slice, systemd's form
// kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>; runc, with the
// cgroupfs driver here (no systemd on the test machines), makes that a
// directory of that name, which /proc/PID/cgroup shows as it is. Under
// the systemd driver it is
// .../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope: the
// same pod cgroup name, read the same way (internal/cgroupid).
func systemdParent(uid string) string {
	return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
}

// runPod runs a pod sandbox in the namespace "default", with the cgroup
// parent kubelet gives a BestEffort pod of that UID (cgroupfsParent or systemdParent),
// and in it a container running sleep for each name.
func (c *containerd) runPod(t *testing.T, name, uid string, cgroupParent func(uid string) string, containers ...string) *criPod {
	t.Helper()
	p := &criPod{uid: uid, idOfPID: map[int]string{}}
	p.name = name
	podConfig := filepath.Join(c.dir, name+".json")
	if err := os.MkdirAll(filepath.Join(c.dir, "logs", name), 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, podConfig, map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "default", "uid": p.uid, "attempt": 0},
		"log_directory": filepath.Join(c.dir, "logs", name),
		"linux":         map[string]any{"cgroup_parent": cgroupParent(p.uid)},
	})
	p.id = c.crictl(t, "runp", podConfig)
	podCgroup := filepath.Base(cgroupParent(p.uid))
	switch cg := readCgroup(t, c.crictl(t, "inspectp", "-o", "go-template", "--template", "{{.info.pid}}", p.id)); {
	case strings.Contains(cg, "/"+podCgroup+":cri-containerd:"+p.id+"\n"):
		p.runtime = "containerd" // systemd's form: cri-containerd-<id>.scope
	case strings.Contains(cg, cgroupParent(p.uid)+"/"+p.id+"\n"):
		p.runtime = "" // any CRI runtime makes the cgroupfs layout alike
	default:
		t.Fatalf("%s: sandbox %s not in a cgroup of parent %s: %s", name, p.id, cgroupParent(p.uid), cg)
	}

	var sandbox struct {
		Info struct {
			PID         int `json:"pid"`
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string }
				}
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(c.crictl(t, "inspectp", "-o", "json", p.id)), &sandbox); err != nil {
		t.Fatalf("crictl inspectp %s: %v", p.id, err)
	}
	p.pid = sandbox.Info.PID
	for _, ns := range sandbox.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			p.netnsName = filepath.Base(ns.Path)
			var st syscall.Stat_t
			if err := syscall.Stat(ns.Path, &st); err != nil {
				t.Fatalf("%s: netns %s: %v", name, ns.Path, err)
			}
			p.netns = st.Ino
		}
	}
	if p.pid <= 0 || p.netns == 0 || netnsInode(t, p.pid) != p.netns {
		t.Fatalf("%s: crictl inspectp gives pid %d, netns %q (inode %d), which is not the pid's", name, p.pid, p.netnsName, p.netns)
	}
	p.idOfPID[p.pid] = p.id

	for i, cname := range containers {
		if i > 0 {
			pidsWrapBelow(t, p.pid)
		}
		config := filepath.Join(c.dir, name+"-"+cname+".json")
		writeJSON(t, config, map[string]any{
			"metadata": map[string]any{"name": cname},
			"image":    map[string]any{"image": "localhost/cvx-app:cri-test"},
			"log_path": cname + ".log",
		})
		id := c.crictl(t, "create", p.id, config, podConfig)
		c.crictl(t, "start", id)
		var inspect struct {
			Info struct {
				PID int `json:"pid"`
			} `json:"info"`
		}
		if err := json.Unmarshal([]byte(c.crictl(t, "inspect", "-o", "json", id)), &inspect); err != nil {
			t.Fatalf("crictl inspect %s: %v", id, err)
		}
		if inspect.Info.PID <= 0 || netnsInode(t, inspect.Info.PID) != p.netns {
			t.Fatalf("%s/%s: pid %d is not in the pod's netns %d", name, cname, inspect.Info.PID, p.netns)
		}
		p.idOfPID[inspect.Info.PID] = id
	}
	// Every process in the pod's netns is the pod's, as crictl says.
	inodes, _ := scanNetnsLinks(t)
	for pid, ino := range inodes {
		if ino == p.netns && p.idOfPID[pid] == "" {
			t.Fatalf("%s: process %d is in the pod's netns but is none of crictl's %v", name, pid, p.idOfPID)
		}
	}
	p.lowestPID = oldestPIDIn(t, p.netns)
	if p.lowestPID != p.pid {
		t.Fatalf("%s: the oldest process in the pod's netns is %d, not the sandbox's %d", name, p.lowestPID, p.pid)
	}
	p.want = p.expectedSeries(t, "eth0")
	for pid, id := range p.idOfPID {
		if pid < p.pid {
			t.Logf("%s: container %.12s has PID %d, below the sandbox's %d", name, id, pid, p.pid)
		}
	}
	return p
}

// pidsWrapBelow moves the host's next PID well below pid, as PID
// wrap-around does on a busy host, so that the next container of a pod
// gets a lower PID than its sandbox (unless pid is too low for that): the
// pod must still be named by its sandbox, its oldest process.
func pidsWrapBelow(t *testing.T, pid int) {
	t.Helper()
	if pid < 1400 {
		return
	}
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1000)), 0); err != nil {
		t.Fatalf("ns_last_pid: %v", err)
	}
}

// readCgroup returns /proc/PID/cgroup.
func readCgroup(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// staticUID returns a UID of the shape kubelet gives a static pod: 32 hex
// digits (an md5), no dashes.
func staticUID(t *testing.T) string {
	t.Helper()
	return strings.ReplaceAll(newUUID(t), "-", "")
}

// newUUID returns a random version 4 UUID, as Kubernetes gives pods.
func newUUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomByte(t *testing.T) int {
	t.Helper()
	b := make([]byte, 1)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return int(b[0])
}

// exporterRootfs is the root filesystem of the image the Dockerfile makes:
// the two static binaries in /bin.
func exporterRootfs(t *testing.T) string {
	t.Helper()
	_, contextDir := buildImageContext(t)
	rootfs := t.TempDir()
	if err := os.Mkdir(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"container_vnic_exporter", "psnic"} {
		if err := os.Rename(filepath.Join(contextDir, ".build", "linux-"+runtime.GOARCH, bin), filepath.Join(rootfs, "bin", bin)); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs
}

// exporterCRIImage is the exporter's image: the binaries the Dockerfile
// copies, as the Dockerfile lays them out, imported into containerd.
const exporterCRIImage = "localhost/container_vnic_exporter:cri-test"

// criExporter is the exporter running in a pod as
// examples/kubernetes/daemonset.yaml runs it.
type criExporter struct {
	c   *containerd
	id  string // the exporter's container
	pid int
	url string
}

// runExporterPod runs the exporter in a pod with the DaemonSet's settings,
// in the CRI's terms: the node's network and PID namespaces, the node's
// /proc read-only at /host/proc, the directory of the runtime's socket
// read-only where --path.rootfs=/host finds it (containerd's default
// socket, /host/run/containerd/containerd.sock), user 0 with every capability dropped but
// SYS_PTRACE, NET_ADMIN and NET_BROADCAST, no_new_privs
// (allowPrivilegeEscalation: false), a read-only root filesystem, the
// runtime's default seccomp profile and no AppArmor profile, in a Burstable pod's cgroup (requests
// below limits). It listens on loopback, not on the DaemonSet's :10054,
// which is not the test's to take.
func (c *containerd) runExporterPod(t *testing.T) *criExporter {
	t.Helper()
	uid := newUUID(t)
	const name = "cvx-exporter"
	if err := os.MkdirAll(filepath.Join(c.dir, "logs", name), 0o755); err != nil {
		t.Fatal(err)
	}
	const nodeNamespace = 2 // runtime.v1.NamespaceMode NODE
	podConfig := filepath.Join(c.dir, name+".json")
	writeJSON(t, podConfig, map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "monitoring", "uid": uid, "attempt": 0},
		"log_directory": filepath.Join(c.dir, "logs", name),
		"linux": map[string]any{
			"cgroup_parent": "/kubepods/burstable/pod" + uid,
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": nodeNamespace, "pid": nodeNamespace},
			},
		},
	})
	podID := c.crictl(t, "runp", podConfig)

	addr := freeLoopbackAddr(t)
	config := filepath.Join(c.dir, name+"-container.json")
	writeJSON(t, config, map[string]any{
		"metadata": map[string]any{"name": "container-vnic-exporter"},
		"image":    map[string]any{"image": exporterCRIImage},
		// The DaemonSet names the socket (--kubernetes.cri-endpoint); here
		// the exporter finds it as the first default socket under
		// --path.rootfs, the same mount. A refresh interval shorter than the
		// default 15 s, so that the runtime's stop and start show within the
		// scrape loop's 30 s.
		"args": []string{"--path.procfs=/host/proc", "--web.listen-address=" + addr, "--collector.container-identity",
			"--collector.kubernetes", "--path.rootfs=/host", "--kubernetes.refresh-interval=1s"},
		"mounts": []map[string]any{
			{"container_path": "/host/proc", "host_path": "/proc", "readonly": true},
			// The directory, not the socket: a runtime that restarts makes
			// its socket anew, which a mount of the old one would not see.
			{"container_path": "/host/run/containerd", "host_path": filepath.Dir(c.socket), "readonly": true},
		},
		"log_path": "exporter.log",
		"linux": map[string]any{
			"security_context": map[string]any{
				"run_as_user":     map[string]any{"value": 0},
				"run_as_group":    map[string]any{"value": 0},
				"privileged":      false,
				"no_new_privs":    true,
				"readonly_rootfs": true,
				"seccomp":         map[string]any{"profile_type": 0}, // RuntimeDefault
				"apparmor":        map[string]any{"profile_type": 1}, // Unconfined (this kernel has no AppArmor)
				"capabilities": map[string]any{
					"drop_capabilities": []string{"ALL"},
					"add_capabilities":  []string{"SYS_PTRACE", "NET_ADMIN", "NET_BROADCAST"},
				},
			},
		},
	})
	e := &criExporter{c: c, id: c.crictl(t, "create", podID, config, podConfig), url: "http://" + addr + "/metrics"}
	c.crictl(t, "start", e.id)
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, _ := c.command(ctx, "crictl", "logs", e.id).CombinedOutput()
			t.Logf("exporter log:\n%s", out)
		}
	})

	// The kernel's view of the exporter's process: what the DaemonSet asks.
	var inspect struct {
		Info struct {
			PID int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(c.crictl(t, "inspect", "-o", "json", e.id)), &inspect); err != nil {
		t.Fatalf("crictl inspect %s: %v", e.id, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", inspect.Info.PID))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Uid": "0\t0\t0\t0", "Gid": "0\t0\t0\t0",
		"CapEff": fmt.Sprintf("%016x", capSysPtrace|capNetAdmin|capNetBroadcast),
		"CapPrm": fmt.Sprintf("%016x", capSysPtrace|capNetAdmin|capNetBroadcast),
		"CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
	}
	seen := 0
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, ":")
		if w, ok := want[key]; ok {
			seen++
			if strings.TrimSpace(value) != w {
				t.Errorf("exporter process %d: %s %q, want %q", inspect.Info.PID, key, strings.TrimSpace(value), w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("exporter process %d: %d of the fields %v in its status", inspect.Info.PID, seen, want)
	}
	if netnsInode(t, inspect.Info.PID) != netnsInode(t, os.Getpid()) {
		t.Errorf("exporter process %d is not in the node's network namespace", inspect.Info.PID)
	}
	e.pid = inspect.Info.PID
	return e
}

// scrapeUntil scrapes the exporter until cond accepts a scrape, and
// returns that scrape. It fails at once if the exporter's container stops.
func (e *criExporter) scrapeUntil(t *testing.T, cond func(map[string]*dto.MetricFamily) error) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeUntil(t, "exporter container", e.url, cond, func() (string, bool) {
		if e.c.daemon == nil { // containerd stopped: ask the kernel
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", e.pid)); err != nil {
				return "gone", false
			}
			return "running", true
		}
		state := e.c.crictl(t, "inspect", "-o", "go-template", "--template", "{{.status.state}}", e.id)
		return state, state == "CONTAINER_RUNNING"
	})
}

// excerpt returns the lines of a scrape about p's namespace, and
// container_vnic_kubernetes_up.
func (e *criExporter) excerpt(t *testing.T, p *criPod) string {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(get(t, e.url), "\n") {
		if strings.Contains(line, `netns="`+p.netnsLabel()+`"`) && (strings.HasPrefix(line, "container_vnic_info") ||
			strings.HasPrefix(line, "container_vnic_container_info") || strings.HasPrefix(line, "container_vnic_receive_bytes_total")) ||
			strings.HasPrefix(line, "container_vnic_kubernetes_up") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
