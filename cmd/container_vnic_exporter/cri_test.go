package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// two containers in its sandbox's network namespace, pod 2 one. The
// exporter must show each pod's veth once, with the pod's UID, and psnic
// must agree for every process of each pod, with the container ids crictl
// reports. Expectations come from crictl, each pod's own sysfs and `ip
// link`, never from this project's code.
//
// No traffic is sent; the pods' addresses are link-local, from a range
// picked at random, and the bridge has none.
func TestCRIPods(t *testing.T) {
	netnstest.RequireRoot(t)
	busybox := requireCRITools(t)
	c := startContainerd(t)

	c.importImage(t, pauseImage, buildPauseRootfs(t), "/pause")
	c.importImage(t, "localhost/cvx-app:cri-test", sleeperRootfs(t, busybox), "/bin/sleep", "3600")

	pod1 := c.runPod(t, "cvx-pod1", "app-a", "app-b")
	pod2 := c.runPod(t, "cvx-pod2", "app")
	pods := []*criPod{pod1, pod2}
	if pod1.netns == pod2.netns {
		t.Fatalf("both pods are in netns %d", pod1.netns)
	}
	sleepers := []*sleeperContainer{&pod1.sleeperContainer, &pod2.sleeperContainer}

	e := startExporter(t, "--collector.container-identity")
	url := "http://" + e.addr + "/metrics"
	families := scrapeExporterUntil(t, e, url, exactSeriesFor(sleepers))

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
				t.Fatalf("%s: lowest PID %d of its netns is none of the pod's (crictl says %v)", p.name, p.lowestPID, p.idOfPID)
			}
			// Any CRI runtime makes the cgroupfs layout alike: no runtime.
			if l["pod_uid"] != p.uid || l["container_id"] != owner || l["runtime"] != "" {
				t.Errorf("%s: series %v, want pod_uid %s container_id %s runtime \"\"", p.name, l, p.uid, owner)
			}
		}
	})

	t.Run("psnic", func(t *testing.T) {
		psnic := psnicBinary(t)
		for _, p := range pods {
			var pids []string
			var want []string
			for pid, id := range p.idOfPID {
				pids = append(pids, strconv.Itoa(pid))
				want = append(want, fmt.Sprintf("pid=%d eth0/%s %s %s %q", pid, p.want[0].HostIfname, id, p.uid, ""))
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(psnic, append([]string{"-o", "json"}, pids...)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("psnic %v: %v: %s", pids, err, stderr.String())
			}
			var rows []struct {
				PID             int
				ContainerIfname string `json:"container_ifname"`
				HostIfname      string `json:"host_ifname"`
				ContainerID     string `json:"container_id"`
				PodUID          string `json:"pod_uid"`
				Runtime         string
			}
			if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
				t.Fatalf("psnic: %v: %q", err, stdout.String())
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

	// A pod removed: its series go, the other pod's stay.
	t.Run("pod removed", func(t *testing.T) {
		c.crictl(t, "stopp", pod2.id)
		c.crictl(t, "rmp", pod2.id)
		scrapeExporterUntil(t, e, url, func(f map[string]*dto.MetricFamily) error {
			if err := exactSeriesFor(sleepers[:1])(f); err != nil {
				return err
			}
			return noSeriesFor(sleepers[1:])(f)
		})
	})
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
	socket string
	bridge string
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	// A short path: shim and containerd sockets live below it.
	dir, err := os.MkdirTemp("", "cvx-cri-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, socket: filepath.Join(dir, "containerd.sock"), bridge: "cvxcri" + netnstest.Suffix()}
	for _, sub := range []string{"cni", "logs"} {
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

	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cgroupsBefore, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	// Host-wide directories containerd's shims and the CNI library make.
	removeHostDirs := newHostDirs("/run/containerd", "/var/lib/cni")
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	ready := false
	t.Cleanup(func() {
		if ready {
			c.cleanup(t)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Errorf("cleanup: containerd did not stop within a minute of SIGTERM: killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("containerd log (last 4 KB):\n%s", tail(b, 4096))
		}
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

	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("containerd exited at start:\n%s", tail(b, 4096))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := c.command(ctx, "crictl", "info").CombinedOutput()
		cancel()
		if err == nil {
			ready = true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI did not answer within a minute: %v: %s", err, out)
		}
	}
	return c
}

// removeNewCgroups removes the kubepods cgroup trees (kubepods, its QoS
// classes and pods, all empty once the pods are gone) that were not there
// before the test, deepest first.
func removeNewCgroups(t *testing.T, before []string) {
	after, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	for _, root := range after {
		if slices.Contains(before, root) {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
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
	var stdout, stderr bytes.Buffer
	cmd := c.command(ctx, tool, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", tool, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
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
func (c *containerd) importImage(t *testing.T, ref, rootfs string, entrypoint ...string) {
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
		"config": map[string]any{"Entrypoint": entrypoint},
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
	// idOfPID is the container id of each process of the pod, from
	// crictl: the sandbox's for the pause process.
	idOfPID map[int]string
}

// runPod runs a pod sandbox in kubelet's cgroupfs layout for a BestEffort
// pod, and in it a container running sleep for each name.
func (c *containerd) runPod(t *testing.T, name string, containers ...string) *criPod {
	t.Helper()
	p := &criPod{uid: newUUID(t), idOfPID: map[int]string{}}
	p.name = name
	podConfig := filepath.Join(c.dir, name+".json")
	if err := os.MkdirAll(filepath.Join(c.dir, "logs", name), 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, podConfig, map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "default", "uid": p.uid, "attempt": 0},
		"log_directory": filepath.Join(c.dir, "logs", name),
		"linux":         map[string]any{"cgroup_parent": "/kubepods/besteffort/pod" + p.uid},
	})
	p.id = c.crictl(t, "runp", podConfig)

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

	for _, cname := range containers {
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
	p.lowestPID = lowestPIDIn(t, p.netns)
	p.want = p.expectedSeries(t, "eth0")
	return p
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
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

// scrapeExporterUntil scrapes the exporter until cond accepts a scrape,
// and returns that scrape.
func scrapeExporterUntil(t *testing.T, e *exporterProcess, url string, cond func(map[string]*dto.MetricFamily) error) map[string]*dto.MetricFamily {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		families, err := scrapeFamilies(client, url)
		if err == nil {
			err = cond(families)
		}
		if err == nil {
			return families
		}
		last = err
	}
	t.Fatalf("exporter: %v", last)
	return nil
}

// psnicBinary builds psnic for one test.
func psnicBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "psnic")
	if out, err := exec.Command("go", "build", "-o", bin, "../psnic").CombinedOutput(); err != nil {
		t.Fatalf("go build psnic: %v: %s", err, out)
	}
	return bin
}
