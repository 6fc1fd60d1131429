package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// Capability bits, as in /proc/PID/status.
const (
	capNetBroadcast = 1 << 11
	capNetAdmin     = 1 << 12
	capSysPtrace    = 1 << 19
)

var capNames = map[uint64]string{capNetBroadcast: "NET_BROADCAST", capNetAdmin: "NET_ADMIN", capSysPtrace: "SYS_PTRACE"}

// imageTestVersion is linked into the binaries in the image, so that a
// scrape proves it reached the binary this test built.
const imageTestVersion = "image-test"

// podmanCommandTimeout bounds one podman command; the whole test takes
// seconds once the Go build cache is warm.
const podmanCommandTimeout = 2 * time.Minute

// TestImage proves the deployment the README documents, on the real
// machine: the image built from the repository's Dockerfile, run by podman
// with the host's network and PID namespaces and the host's /proc, as user
// 65534 (podman hands added capabilities to a non-root user as ambient
// ones), unprivileged, with all capabilities dropped but the ones under
// test, reports the veths that podman's own network stack (netavark) made
// for containers podman started. Every expectation comes from podman,
// /proc, sysfs and `ip link`, never from this project's code.
func TestImage(t *testing.T) {
	netnstest.RequireRoot(t)
	busybox := requireImageTools(t)
	store := newPodmanStore(t)

	exporterImage := buildExporterImage(t, store)
	sleeperImage := buildSleeperImage(t, store, busybox)
	var sleepers []*sleeperContainer
	for i := range 2 {
		sleepers = append(sleepers, startSleeperContainer(t, store, sleeperImage, fmt.Sprintf("cvx-sleeper-%d", i)))
	}

	// With CAP_NET_BROADCAST the exporter caches what it learnt of each
	// namespace and keeps it true with link notifications: the series must
	// follow containers podman starts and removes, and interfaces it adds
	// to and removes from a running container.
	t.Run("SYS_PTRACE+NET_ADMIN+NET_BROADCAST", func(t *testing.T) {
		e := runImageExporter(t, store, exporterImage, "cvx-exporter-cached", "65534", capSysPtrace|capNetAdmin|capNetBroadcast)
		families := e.scrapeUntil(t, exactSeriesFor(sleepers))
		checkHealthyScrape(t, families)
		if missing := missingLogged(e.logs()); missing != "" {
			t.Errorf("exporter has every capability it uses, but warns that %s are missing", missing)
		}
		// Nothing changed in the sleepers' namespaces since: the next scrape
		// answers them from the cache.
		families = e.scrapeUntil(t, exactSeriesFor(sleepers))
		namespaces, _ := gaugeValue(families, "container_vnic_namespaces")
		queried, ok := gaugeValue(families, "container_vnic_namespaces_queried")
		if !ok || namespaces-queried < float64(len(sleepers)) {
			t.Errorf("second scrape queried %v of %v namespaces (present %v): the %d sleepers' should come from the cache", queried, namespaces, ok, len(sleepers))
		}

		late := startSleeperContainer(t, store, sleeperImage, "cvx-sleeper-late")
		e.scrapeUntil(t, exactSeriesFor(append(slices.Clone(sleepers), late)))

		createNetwork(t, store, "cvx-second")
		store.run(t, "network", "connect", "cvx-second", late.name)
		late.want = late.expectedSeries(t, "eth0", "eth1")
		e.scrapeUntil(t, exactSeriesFor(append(slices.Clone(sleepers), late)))
		store.run(t, "network", "disconnect", "cvx-second", late.name)
		late.want = late.expectedSeries(t, "eth0")
		e.scrapeUntil(t, exactSeriesFor(append(slices.Clone(sleepers), late)))

		store.run(t, "rm", "-f", "-t", "0", late.name)
		e.scrapeUntil(t, func(f map[string]*dto.MetricFamily) error {
			if err := exactSeriesFor(sleepers)(f); err != nil {
				return err
			}
			return noSeriesFor([]*sleeperContainer{late})(f)
		})
	})

	// Container identity, proven on containers podman started: the id is
	// podman's own, from the exporter and from psnic in the image alike.
	t.Run("identity", func(t *testing.T) {
		e := runImageExporter(t, store, exporterImage, "cvx-exporter-identity", "65534", capSysPtrace|capNetAdmin|capNetBroadcast,
			"--", "--collector.container-identity")
		for _, c := range sleepers {
			id := strings.TrimSpace(store.run(t, "inspect", "-f", "{{.Id}}", c.name))
			if len(id) != 64 {
				t.Fatalf("podman inspect %s: id %q", c.name, id)
			}
			e.scrapeUntil(t, func(f map[string]*dto.MetricFamily) error {
				for _, l := range seriesLabels(f, "container_vnic_info") {
					if l["pid"] != strconv.Itoa(c.lowestPID) {
						continue
					}
					if l["container_id"] != id || l["runtime"] != "podman" || l["pod_uid"] != "" {
						return fmt.Errorf("%s: series %v, want container_id %s runtime podman", c.name, l, id)
					}
					return nil
				}
				return fmt.Errorf("%s: no series for pid %d", c.name, c.lowestPID)
			})
			out := store.run(t, "run", "--rm", "--pull=never", "--network", "host", "--pid", "host",
				"-v", "/proc:/host/proc:ro", "--read-only", "--user", "65534", "--cap-drop", "all",
				"--cap-add", "SYS_PTRACE", "--cap-add", "NET_ADMIN", "--entrypoint", "/bin/psnic",
				exporterImage, "--path.procfs=/host/proc", "-o", "json", strconv.Itoa(c.lowestPID))
			var rows []map[string]any
			if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
				t.Fatalf("psnic in the image: %v: %q", err, out)
			}
			if rows[0]["container_id"] != id || rows[0]["runtime"] != "podman" || rows[0]["host_ifname"] != c.want[0].HostIfname {
				t.Errorf("psnic in the image: %v, want container_id %s runtime podman host_ifname %s", rows[0], id, c.want[0].HostIfname)
			}
		}
	})

	// The capability sets the README documents, each with what the exporter
	// must then report: every series, or none and the reason why.
	for _, tc := range []struct {
		name, container, uid string
		caps                 uint64
		extra                []string
		// healthy: the exact series and a healthy scrape; otherwise no
		// series for the sleepers and the gauges in want.
		healthy bool
		want    []gaugeWant
		// missing is what the exporter must warn it lacks: exactly, when
		// healthy, or at least this capability.
		missing string
	}{
		// The least set: correct series, asking the kernel on every scrape.
		{name: "SYS_PTRACE+NET_ADMIN", container: "cvx-exporter-uncached", uid: "65534",
			caps: capSysPtrace | capNetAdmin, healthy: true, missing: "CAP_NET_BROADCAST"},
		// The settings of examples/kubernetes/daemonset.yaml, where
		// capabilities do not reach a non-root user: root, with no capability
		// but the three and no_new_privs (allowPrivilegeEscalation: false).
		{name: "root+no-new-privileges+SYS_PTRACE+NET_ADMIN+NET_BROADCAST", container: "cvx-exporter-root", uid: "0",
			caps: capSysPtrace | capNetAdmin | capNetBroadcast, extra: []string{"--security-opt", "no-new-privileges"}, healthy: true},
		// Without CAP_SYS_PTRACE, /proc/PID/ns/net of the containers'
		// processes (root, with capabilities the exporter lacks) cannot even
		// be read: the walk skips them, their namespaces are never seen, and
		// the scrape is blind, so not a success.
		{name: "NET_ADMIN only", container: "cvx-exporter-no-ptrace", uid: "65534", caps: capNetAdmin,
			want: []gaugeWant{
				{"container_vnic_processes_skipped", []string{"cause", "no_cap_sys_ptrace"}, atLeastSleepers},
				{"container_vnic_scrape_success", nil, 0},
			}, missing: "CAP_SYS_PTRACE"},
		// Without CAP_NET_ADMIN the namespaces are found, but the kernel
		// refuses to list another namespace's links: each is a
		// permission_denied error, and the scrape is not a success.
		{name: "SYS_PTRACE only", container: "cvx-exporter-no-netadmin", uid: "65534", caps: capSysPtrace,
			want: []gaugeWant{
				{"container_vnic_scrape_errors", []string{"cause", "permission_denied"}, atLeastSleepers},
				{"container_vnic_scrape_success", nil, 0},
			}, missing: "CAP_NET_ADMIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := runImageExporter(t, store, exporterImage, tc.container, tc.uid, tc.caps, tc.extra...)
			missing := func() string { return missingLogged(e.logs()) }
			if tc.healthy {
				checkHealthyScrape(t, e.scrapeUntil(t, exactSeriesFor(sleepers)))
				if got := missing(); got != tc.missing {
					t.Errorf("exporter warns that %q are missing, want %q", got, tc.missing)
				}
				return
			}
			families := e.scrapeUntil(t, noSeriesFor(sleepers))
			for _, w := range tc.want {
				v, ok := gaugeValue(families, w.name, w.labels...)
				switch {
				case !ok:
					t.Errorf("%s%v absent", w.name, w.labels)
				case w.value == atLeastSleepers && v < float64(len(sleepers)):
					t.Errorf("%s%v = %v, want at least %d (one per sleeper)", w.name, w.labels, v, len(sleepers))
				case w.value != atLeastSleepers && v != w.value:
					t.Errorf("%s%v = %v, want %v", w.name, w.labels, v, w.value)
				}
			}
			if got := missing(); !strings.Contains(got, tc.missing) {
				t.Errorf("exporter warns that %q are missing, want %s among them", got, tc.missing)
			}
		})
	}
}

// gaugeWant is a gauge an image test expects, by name and label pairs.
type gaugeWant struct {
	name   string
	labels []string
	value  float64
}

// atLeastSleepers as a gaugeWant value means: at least one per sleeper.
const atLeastSleepers = -1

// checkHealthyScrape checks what an exporter with the capabilities it needs
// reports about itself.
func checkHealthyScrape(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	if v, ok := gaugeValue(families, "container_vnic_scrape_errors", "cause", "permission_denied"); !ok || v != 0 {
		t.Errorf("container_vnic_scrape_errors{cause=\"permission_denied\"} = %v (present %v), want 0", v, ok)
	}
	// Processes whose netns even root cannot read (some sandboxes have
	// such) are skipped by the exporter too, as protected; it must skip no
	// more, and none for want of CAP_SYS_PTRACE.
	deniedByRoot := unreadableNetnsLinks(t)
	if v, ok := gaugeValue(families, "container_vnic_processes_skipped", "cause", "protected"); !ok || v > float64(deniedByRoot) {
		t.Errorf("container_vnic_processes_skipped{cause=\"protected\"} = %v (present %v), want at most %d, the processes root cannot read either",
			v, ok, deniedByRoot)
	}
	if v, ok := gaugeValue(families, "container_vnic_processes_skipped", "cause", "no_cap_sys_ptrace"); !ok || v != 0 {
		t.Errorf("container_vnic_processes_skipped{cause=\"no_cap_sys_ptrace\"} = %v (present %v), want 0", v, ok)
	}
	if v, ok := gaugeValue(families, "container_vnic_exporter_build_info", "version", imageTestVersion); !ok || v != 1 {
		t.Errorf("no container_vnic_exporter_build_info{version=%q} 1: the image does not run the binary this test built", imageTestVersion)
	}
}

// requireImageTools returns the path of a static busybox, for the sleeper
// image. Without podman or a static busybox the test skips, except in CI,
// where it fails.
func requireImageTools(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (.ci/install-podman.sh installs podman, runc and busybox-static)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run this test, refusing to skip")
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		missing("podman not installed: %v", err)
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

// checkStatic fails for an executable that needs a dynamic loader, which a
// FROM scratch image does not have.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// podmanStore runs podman with a private configuration and image store, so
// that the test neither sees nor removes anyone else's containers, images or
// networks. Network namespaces, veths, the bridge and firewall rules are
// host-wide all the same.
type podmanStore struct {
	env []string
	// netnsPaths are the sleepers' namespace files, which must be gone
	// after cleanup.
	netnsPaths []string
}

func newPodmanStore(t *testing.T) *podmanStore {
	t.Helper()
	dir := t.TempDir()
	containersConf := filepath.Join(dir, "containers.conf")
	storageConf := filepath.Join(dir, "storage.conf")
	// default_ulimits = []: podman otherwise raises NOFILE and NPROC, which a
	// root without CAP_SYS_RESOURCE (as in some CI sandboxes) may not do.
	// network_config_dir and tmp_dir keep `podman system reset` away from
	// the host's networks and from the default store's state.
	writeFile(t, containersConf, fmt.Sprintf(`[containers]
default_ulimits = []

[network]
network_config_dir = %q

[engine]
tmp_dir = %q
`, filepath.Join(dir, "networks"), filepath.Join(dir, "tmp")))
	writeFile(t, storageConf, fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "run")))
	s := &podmanStore{env: append(os.Environ(),
		"CONTAINERS_CONF="+containersConf, "CONTAINERS_STORAGE_CONF="+storageConf)}

	host := snapshotHost()
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		s.cleanup(t)
		host.restore(t)
	})
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *podmanStore) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = s.env
	return cmd
}

// run runs podman and returns its trimmed stdout, failing t with stderr.
func (s *podmanStore) run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podmanCommandTimeout)
	defer cancel()
	return runCommand(t, s.command(ctx, args...))
}

// runCommand runs a container engine's command (bounded by the context it
// was made with) and returns its trimmed stdout, failing t with its output.
func runCommand(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// cleanup removes every container (their veths, namespaces and the bridge
// go with them), every image and the store itself.
func (s *podmanStore) cleanup(t *testing.T) {
	for _, args := range [][]string{{"rm", "-af", "-t", "0"}, {"rmi", "-af"}, {"system", "reset", "-f"}} {
		ctx, cancel := context.WithTimeout(context.Background(), podmanCommandTimeout)
		out, err := s.command(ctx, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("cleanup: podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, p := range s.netnsPaths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup: network namespace %s left behind (%v)", p, err)
		}
	}
}

// buildExporterImage builds both commands as static binaries into the
// .build/OS-ARCH layout the Dockerfile's prebuilt target copies from (as
// make image does), then the image. (Its default target builds them inside
// a golang image, which a machine without a registry cannot pull.)
func buildExporterImage(t *testing.T, s *podmanStore) string {
	t.Helper()
	root, contextDir := buildImageContext(t)
	const tag = "localhost/container_vnic_exporter:image-test"
	s.run(t, "build", "-q", "--pull=never", "-f", filepath.Join(root, "Dockerfile"), "--target", "prebuilt",
		"--build-arg", "OS=linux", "--build-arg", "ARCH="+runtime.GOARCH, "-t", tag, contextDir)
	checkImageUser(t, s, tag)
	return tag
}

// buildImageContext builds both commands as static binaries into a new
// build context, in the .build/OS-ARCH layout the Dockerfile copies from.
// It returns the repository's root and the context.
func buildImageContext(t *testing.T) (root, contextDir string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	contextDir = t.TempDir()
	out := filepath.Join(contextDir, ".build", "linux-"+runtime.GOARCH)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-tags", "netgo",
		"-ldflags", "-X github.com/prometheus/common/version.Version="+imageTestVersion,
		"-o", out+string(filepath.Separator), "./cmd/...")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, bin := range []string{"container_vnic_exporter", "psnic"} {
		if err := checkStatic(filepath.Join(out, bin)); err != nil {
			t.Fatal(err)
		}
	}
	return root, contextDir
}

func checkImageUser(t *testing.T, s containerEngine, tag string) {
	t.Helper()
	if user := s.run(t, "image", "inspect", "-f", "{{.Config.User}}", tag); user != "65534" && !strings.HasPrefix(user, "65534:") {
		t.Errorf("image runs as user %q, want 65534 (nobody)", user)
	}
}

// buildSleeperImage builds a FROM scratch image with busybox's sleep.
func buildSleeperImage(t *testing.T, s *podmanStore, busybox string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bin, "busybox"), string(data))
	if err := os.Chmod(filepath.Join(bin, "busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(bin, "sleep")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Containerfile"), "FROM scratch\nCOPY bin/ /bin/\n")
	const tag = "localhost/cvx-sleeper:image-test"
	s.run(t, "build", "-q", "--pull=never", "-t", tag, dir)
	return tag
}

// sleeperContainer is a container podman started on its default bridge
// network, with the series the exporter must report for it.
type sleeperContainer struct {
	name      string
	pid       int    // podman's State.Pid: the container's init
	netnsName string // podman's network namespace, under /run/netns
	// Found without this project's code:
	netns     uint64       // inode of /proc/PID/ns/net
	lowestPID int          // the PID naming that namespace: its lowest here, oldest in docker_test.go and cri_test.go
	want      []vnicSeries // container_vnic_info series, sorted
}

// vnicSeries is the label set of one container_vnic_info series.
type vnicSeries struct{ PID, Netns, HostIfname, ContainerIfname string }

func (s vnicSeries) String() string {
	return fmt.Sprintf("{pid=%s netns=%s host_ifname=%s container_ifname=%s}", s.PID, s.Netns, s.HostIfname, s.ContainerIfname)
}

func startSleeperContainer(t *testing.T, s *podmanStore, image, name string) *sleeperContainer {
	t.Helper()
	s.run(t, "run", "-d", "--pull=never", "--name", name, image, "sleep", "3600")
	fields := strings.Fields(s.run(t, "inspect", "-f", "{{.State.Pid}} {{.NetworkSettings.SandboxKey}}", name))
	if len(fields) != 2 {
		t.Fatalf("podman inspect %s: %q, want PID and sandbox key", name, fields)
	}
	c := &sleeperContainer{name: name, netnsName: filepath.Base(fields[1])}
	var err error
	if c.pid, err = strconv.Atoi(fields[0]); err != nil || c.pid <= 0 {
		t.Fatalf("podman inspect %s: PID %q", name, fields[0])
	}
	s.netnsPaths = append(s.netnsPaths, fields[1])

	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", c.pid), &st); err != nil {
		t.Fatal(err)
	}
	c.netns = st.Ino
	if err := syscall.Stat(fields[1], &st); err != nil || st.Ino != c.netns {
		t.Fatalf("%s: sandbox %s is not the namespace of PID %d (inode %d, %v)", name, fields[1], c.pid, st.Ino, err)
	}
	c.lowestPID = lowestPIDIn(t, c.netns)
	c.want = c.expectedSeries(t, "eth0")
	return c
}

func (c *sleeperContainer) netnsLabel() string { return strconv.FormatUint(c.netns, 10) }

// expectedSeries checks that the container's interfaces are lo and ifnames,
// as its own sysfs shows them, and returns a series for each of ifnames,
// paired with the host veth that `ip link` shows as its peer.
func (c *sleeperContainer) expectedSeries(t *testing.T, ifnames ...string) []vnicSeries {
	t.Helper()
	sysNet := fmt.Sprintf("/proc/%d/root/sys/class/net", c.pid)
	entries, err := os.ReadDir(sysNet)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.Name() != "lo" {
			got = append(got, e.Name())
		}
	}
	if !slices.Equal(got, ifnames) {
		t.Fatalf("%s has interfaces %v besides lo, want %v", c.name, got, ifnames)
	}
	var series []vnicSeries
	for _, ifname := range ifnames {
		index := readInt(t, filepath.Join(sysNet, ifname, "ifindex"))
		iflink := readInt(t, filepath.Join(sysNet, ifname, "iflink"))
		host := hostVethWithPeer(t, iflink, index, c.netnsName)
		series = append(series, vnicSeries{
			PID: strconv.Itoa(c.lowestPID), Netns: c.netnsLabel(), HostIfname: host, ContainerIfname: ifname})
		t.Logf("%s: pid %d (lowest in its netns: %d), netns %d, %s ifindex %d, host %s ifindex %d",
			c.name, c.pid, c.lowestPID, c.netns, ifname, index, host, iflink)
	}
	slices.SortFunc(series, func(a, b vnicSeries) int { return strings.Compare(a.String(), b.String()) })
	return series
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// vethLine matches `ip -o link` lines of veths, "20: veth0@if2: <...> ...
// link-netns NAME", capturing ifindex, name and peer ifindex.
var (
	vethLine  = regexp.MustCompile(`^(\d+): ([^@:\s]+)@if(\d+): `)
	linkNetns = regexp.MustCompile(` link-netns (\S+)`)
)

// hostVethWithPeer returns the name of the host veth with ifindex index,
// checking with iproute2 that its peer is ifindex peer in the namespace
// named netnsName.
func hostVethWithPeer(t *testing.T, index, peer int, netnsName string) string {
	t.Helper()
	out := netnstest.IP(t, "-o", "link", "show", "type", "veth")
	for _, line := range strings.Split(out, "\n") {
		m := vethLine.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(index) {
			continue
		}
		if m[3] != strconv.Itoa(peer) {
			t.Fatalf("host veth %s (ifindex %d) has peer ifindex %s, want %d", m[2], index, m[3], peer)
		}
		if ns := linkNetns.FindStringSubmatch(line); ns == nil || ns[1] != netnsName {
			t.Fatalf("host veth %s (ifindex %d) is not linked to namespace %s: %s", m[2], index, netnsName, line)
		}
		return m[2]
	}
	t.Fatalf("no host veth with ifindex %d in:\n%s", index, out)
	return ""
}

// scanNetnsLinks reads /proc/*/ns/net as the test (root) does. It returns
// the namespace inode of each readable process, and how many processes
// refused it with a permission error.
func scanNetnsLinks(t *testing.T) (inodes map[int]uint64, denied int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	inodes = map[int]uint64{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if errors.Is(err, os.ErrPermission) {
			denied++
		}
		if err != nil {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "net:["), "]"), 10, 64)
		if err == nil {
			inodes[pid] = ino
		}
	}
	return inodes, denied
}

// lowestPIDIn returns the lowest PID whose network namespace is netns.
func lowestPIDIn(t *testing.T, netns uint64) int {
	t.Helper()
	inodes, _ := scanNetnsLinks(t)
	lowest := 0
	for pid, ino := range inodes {
		if ino == netns && (lowest == 0 || pid < lowest) {
			lowest = pid
		}
	}
	if lowest == 0 {
		t.Fatalf("no process in network namespace %d", netns)
	}
	return lowest
}

func unreadableNetnsLinks(t *testing.T) int {
	t.Helper()
	_, denied := scanNetnsLinks(t)
	return denied
}

// containerEngine runs a container CLI, podman or docker, against the
// test's own store or daemon.
type containerEngine interface {
	command(ctx context.Context, args ...string) *exec.Cmd
	// run runs the command and returns its trimmed stdout, failing t.
	run(t testing.TB, args ...string) string
}

// createNetwork creates a network with the engine's CLI. Both podman and
// dockerd list the host's interfaces and routes to choose a free subnet,
// and fail with "no such network interface" when a link goes away while
// they list them: other tests churn host links at the same time, so that
// failure is retried.
func createNetwork(t *testing.T, e containerEngine, name string) {
	t.Helper()
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), podmanCommandTimeout)
		out, err := e.command(ctx, "network", "create", name).CombinedOutput()
		cancel()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "no such network interface") || try == 10 {
			t.Fatalf("network create %s (try %d): %v\n%s", name, try, err, out)
		}
		t.Logf("network create %s: %s: retrying", name, strings.TrimSpace(string(out)))
	}
}

// imageExporter is the exporter image running as a container.
type imageExporter struct {
	store containerEngine
	name  string
	url   string
}

// runImageExporter runs the image as the README says, as uid with no
// capability but caps (a mask of capability bits), and checks that the
// kernel agrees on the process's identity and capabilities. extra are more
// podman run options.
func runImageExporter(t *testing.T, s containerEngine, image, name, uid string, caps uint64, extra ...string) *imageExporter {
	t.Helper()
	addr := freeLoopbackAddr(t)
	args := []string{"run", "-d", "--pull=never", "--name", name,
		"--network", "host", "--pid", "host", "-v", "/proc:/host/proc:ro", "--read-only",
		"--user", uid, "--cap-drop", "all"}
	// extra holds podman flags, then optionally "--" and exporter flags.
	var exporterFlags []string
	if i := slices.Index(extra, "--"); i >= 0 {
		extra, exporterFlags = extra[:i], extra[i+1:]
	}
	args = append(args, extra...)
	for bit, capName := range capNames {
		if caps&bit != 0 {
			args = append(args, "--cap-add", capName)
		}
	}
	args = append(args, image, "--path.procfs=/host/proc", "--web.listen-address="+addr)
	args = append(args, exporterFlags...)
	s.run(t, args...)
	e := &imageExporter{store: s, name: name, url: "http://" + addr + "/metrics"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, e.logs())
		}
	})

	fields := strings.Fields(s.run(t, "inspect", "-f", "{{.State.Pid}} {{.HostConfig.Privileged}}", name))
	if len(fields) != 2 || fields[1] != "false" {
		t.Fatalf("podman inspect %s: %q, want PID and privileged false", name, fields)
	}
	status, err := os.ReadFile("/proc/" + fields[0] + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, ":")
		switch key {
		case "Uid":
			if uids := strings.Fields(value); len(uids) != 4 || slices.ContainsFunc(uids, func(u string) bool { return u != uid }) {
				t.Fatalf("%s runs as uids %v, want %s", name, uids, uid)
			}
		case "CapEff", "CapPrm":
			if got, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64); err != nil || got != caps {
				t.Fatalf("%s has %s %s, want %016x", name, key, strings.TrimSpace(value), caps)
			}
		}
	}
	return e
}

func (e *imageExporter) logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), podmanCommandTimeout)
	defer cancel()
	out, err := e.store.command(ctx, "logs", e.name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(podman logs %s: %v) %s", e.name, err, out)
	}
	return string(out)
}

// scrapeUntil scrapes until cond accepts a scrape, and returns that scrape.
// It fails at once if the exporter's container stops.
func (e *imageExporter) scrapeUntil(t *testing.T, cond func(map[string]*dto.MetricFamily) error) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeUntil(t, e.name, e.url, cond, func() (string, bool) {
		state := e.store.run(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", e.name)
		return state, strings.HasPrefix(state, "running")
	})
}

// scrapeUntil scrapes url for 30 s at most until cond accepts a scrape, and
// returns that scrape. After a failed scrape it asks state whether the
// exporter (called name) still runs, and fails at once if not.
func scrapeUntil(t *testing.T, name, url string, cond func(map[string]*dto.MetricFamily) error, state func() (string, bool)) map[string]*dto.MetricFamily {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		families, err := scrapeFamilies(client, url)
		if err == nil {
			if last = cond(families); last == nil {
				return families
			}
			continue
		}
		last = err
		if s, running := state(); !running {
			t.Fatalf("%s is %s after %v", name, s, err)
		}
	}
	t.Fatalf("%s: %v", name, last)
	return nil
}

// seriesLabels returns the label sets of every series of a metric.
func seriesLabels(families map[string]*dto.MetricFamily, name string) []map[string]string {
	var out []map[string]string
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out = append(out, labels)
	}
	return out
}

// gaugeValue returns the value of the first series of name that carries
// the given label name/value pairs.
func gaugeValue(families map[string]*dto.MetricFamily, name string, labelPairs ...string) (float64, bool) {
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for i := 0; i+1 < len(labelPairs); i += 2 {
			matches = matches && labels[labelPairs[i]] == labelPairs[i+1]
		}
		if matches {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// scrapedVNICSeries returns the container_vnic_info series of a scrape, sorted.
func scrapedVNICSeries(families map[string]*dto.MetricFamily) []vnicSeries {
	var out []vnicSeries
	for _, l := range seriesLabels(families, "container_vnic_info") {
		out = append(out, vnicSeries{PID: l["pid"], Netns: l["netns"], HostIfname: l["host_ifname"], ContainerIfname: l["container_ifname"]})
	}
	slices.SortFunc(out, func(a, b vnicSeries) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// exactSeriesFor accepts a scrape whose series for the sleepers' namespaces
// and host veths are exactly the expected ones. Other containers and tests
// may run at the same time: their series are not looked at.
func exactSeriesFor(sleepers []*sleeperContainer) func(map[string]*dto.MetricFamily) error {
	return func(families map[string]*dto.MetricFamily) error {
		var want, got []vnicSeries
		for _, s := range sleepers {
			want = append(want, s.want...)
		}
		for _, series := range scrapedVNICSeries(families) {
			if concerns(series, sleepers) {
				got = append(got, series)
			}
		}
		slices.SortFunc(want, func(a, b vnicSeries) int { return strings.Compare(a.String(), b.String()) })
		if !slices.Equal(got, want) {
			return fmt.Errorf("container_vnic_info series of the test's containers:\n got %v\nwant %v", got, want)
		}
		return nil
	}
}

// noSeriesFor accepts a scrape with no series for the sleepers' namespaces
// or host veths.
func noSeriesFor(sleepers []*sleeperContainer) func(map[string]*dto.MetricFamily) error {
	return func(families map[string]*dto.MetricFamily) error {
		for _, series := range scrapedVNICSeries(families) {
			if concerns(series, sleepers) {
				return fmt.Errorf("series %v for a container the exporter must not report", series)
			}
		}
		return nil
	}
}

// concerns reports whether a series names one of the sleepers' namespaces
// or host veths.
func concerns(series vnicSeries, sleepers []*sleeperContainer) bool {
	for _, s := range sleepers {
		if series.Netns == s.netnsLabel() {
			return true
		}
		for _, w := range s.want {
			if series.HostIfname == w.HostIfname {
				return true
			}
		}
	}
	return false
}

// missingLogged returns the capabilities the exporter's startup warning
// names as missing ("" for none).
func missingLogged(logs string) string {
	if m := regexp.MustCompile(`missing=(\S+)`).FindStringSubmatch(logs); m != nil {
		return m[1]
	}
	return ""
}

// hostState is what podman's network stack changes on the host and leaves
// behind after its last container is gone: netavark's firewall chains, IP
// forwarding, and cgroupfs parent directories.
type hostState struct {
	netavarkChains bool
	ipForward      string
	cgroupDirs     map[string]bool
}

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

func snapshotHost() hostState {
	h := hostState{cgroupDirs: map[string]bool{}}
	h.netavarkChains = exec.Command("iptables", "-S", "NETAVARK_FORWARD").Run() == nil
	if b, err := os.ReadFile(ipForwardPath); err == nil {
		h.ipForward = strings.TrimSpace(string(b))
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent")
	for _, d := range dirs {
		h.cgroupDirs[d] = true
	}
	return h
}

// restore removes what the test's podman left on the host, only where it
// was absent before the test and nothing else uses it now (another podman
// may run containers on this host at the same time).
func (h hostState) restore(t *testing.T) {
	if !h.netavarkChains && netavarkIdle() {
		for _, rule := range [][]string{
			{"-D", "FORWARD", "-m", "comment", "--comment", "netavark firewall plugin rules", "-j", "NETAVARK_FORWARD"},
			{"-X", "NETAVARK_FORWARD"},
			{"-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"},
			{"-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"},
			{"-t", "nat", "-D", "POSTROUTING", "-j", "NETAVARK-HOSTPORT-MASQ"},
			{"-t", "nat", "-F", "NETAVARK-HOSTPORT-MASQ"},
			{"-t", "nat", "-F", "NETAVARK-HOSTPORT-SETMARK"},
			{"-t", "nat", "-X", "NETAVARK-HOSTPORT-DNAT"},
			{"-t", "nat", "-X", "NETAVARK-HOSTPORT-MASQ"},
			{"-t", "nat", "-X", "NETAVARK-HOSTPORT-SETMARK"},
		} {
			if out, err := exec.Command("iptables", rule...).CombinedOutput(); err != nil {
				t.Logf("cleanup: iptables %s: %v: %s", strings.Join(rule, " "), err, out)
			}
		}
		if h.ipForward == "0" {
			if err := os.WriteFile(ipForwardPath, []byte("0\n"), 0o644); err != nil {
				t.Logf("cleanup: restoring ip_forward: %v", err)
			}
		}
	}
	// rmdir of a cgroup fails while a task is in it: conmon lingers as a
	// zombie for a moment after its container is removed. A cgroup that
	// stays busy is someone else's.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		busy := 0
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent")
		for _, d := range dirs {
			if h.cgroupDirs[d] {
				continue
			}
			_ = os.Remove(filepath.Join(d, "conmon"))
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				busy++
			}
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("cleanup: %d cgroup directories libpod_parent still busy", busy)
			return
		}
	}
}

// netavarkIdle reports whether netavark's chains exist and carry only the
// rules it installs once, none for a network or a published port in use.
func netavarkIdle() bool {
	forward, err := exec.Command("iptables", "-S", "NETAVARK_FORWARD").Output()
	if err != nil {
		return false
	}
	if strings.TrimSpace(string(forward)) != "-N NETAVARK_FORWARD" {
		return false
	}
	nat, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(nat), "\n") {
		switch {
		case strings.HasPrefix(line, "-A NETAVARK-HOSTPORT-DNAT "):
			return false // a published port
		case strings.HasPrefix(line, "-N NETAVARK-") && !slices.Contains([]string{
			"-N NETAVARK-HOSTPORT-DNAT", "-N NETAVARK-HOSTPORT-MASQ", "-N NETAVARK-HOSTPORT-SETMARK"}, line):
			return false // a network's chain
		}
	}
	return true
}
