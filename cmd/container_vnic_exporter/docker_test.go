package main

import (
	"bytes"
	"context"
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

// TestDocker proves the exporter and psnic on containers Docker made, the
// way most users run them: the image built from the repository's
// Dockerfile by `docker build`, run by Docker as the README tells Docker
// users (host network and PID namespaces, the host's /proc, user 0 with
// every capability dropped but the three). Containers sit on the default
// bridge, on a user network, on two networks at once, on no network, on
// the host's network, and in another container's network namespace. Every
// expectation comes from Docker (`docker inspect`), from each container's
// own sysfs and from `ip link`, never from this project's code.
//
// No traffic is sent: Docker's bridges get addresses in 172.16.0.0/12,
// which are not the test's to use.
func TestDocker(t *testing.T) {
	netnstest.RequireRoot(t)
	busybox := requireDockerTools(t)
	d := startDockerd(t)

	exporterImage := buildDockerExporterImage(t, d)
	sleeperImage := importSleeperImage(t, d, busybox)
	createNetwork(t, d, "cvx-user-a")
	createNetwork(t, d, "cvx-user-b")

	bridge := d.startSleeper(t, sleeperImage, "cvx-bridge", nil, "eth0")
	user := d.startSleeper(t, sleeperImage, "cvx-user", []string{"--network", "cvx-user-a"}, "eth0")
	two := d.startSleeper(t, sleeperImage, "cvx-two", []string{"--network", "cvx-user-a"}, "eth0")
	d.run(t, "network", "connect", "cvx-user-b", "cvx-two")
	two.want = d.checkedSeries(t, two, "eth0", "eth1")
	none := d.startSleeper(t, sleeperImage, "cvx-none", []string{"--network", "none"})
	// As after PIDs wrapped: cvx-joined gets a lower PID than cvx-bridge,
	// whose namespace it joins, yet cvx-bridge stays the oldest process.
	pidsWrapBelow(t, bridge.pid)
	joined := d.startSleeper(t, sleeperImage, "cvx-joined", []string{"--network", "container:" + bridge.id}, "eth0")
	host := d.startSleeper(t, sleeperImage, "cvx-host", []string{"--network", "host"})

	// Each host veth is on the bridge of its network: the default bridge's
	// (docker0), br-<id> for a user network.
	userBridge := func(network string) string {
		return "br-" + d.run(t, "network", "inspect", "-f", "{{.Id}}", network)[:12]
	}
	for _, want := range []struct {
		c      *dockerContainer
		ifname string
		bridge string
	}{
		{bridge, "eth0", d.defaultBridge},
		{user, "eth0", userBridge("cvx-user-a")},
		{two, "eth0", userBridge("cvx-user-a")},
		{two, "eth1", userBridge("cvx-user-b")},
	} {
		for _, s := range want.c.want {
			if s.ContainerIfname != want.ifname {
				continue
			}
			master, err := os.Readlink(filepath.Join("/sys/class/net", s.HostIfname, "master"))
			if err != nil || filepath.Base(master) != want.bridge {
				t.Fatalf("%s %s: host veth %s is on bridge %q (%v), want %s", want.c.name, want.ifname, s.HostIfname, master, err, want.bridge)
			}
		}
	}

	hostNetns := netnsInode(t, os.Getpid())
	if host.netns != hostNetns {
		t.Fatalf("cvx-host (--network host) is in netns %d, not the host's (%d)", host.netns, hostNetns)
	}
	if joined.netns != bridge.netns {
		t.Fatalf("cvx-joined (--network container:) is in netns %d, not cvx-bridge's (%d)", joined.netns, bridge.netns)
	}
	if joined.lowestPID != bridge.pid {
		t.Fatalf("the oldest process in cvx-bridge's netns is %d, not cvx-bridge's %d (cvx-joined: %d)", joined.lowestPID, bridge.pid, joined.pid)
	}
	// The joined container's interfaces are cvx-bridge's: its namespace's
	// series are counted once, with cvx-bridge.
	if !slices.Equal(joined.want, bridge.want) {
		t.Fatalf("cvx-joined sees series %v, cvx-bridge %v", joined.want, bridge.want)
	}
	joined.want = nil

	namespaced := []*dockerContainer{bridge, user, two, none, joined}
	all := append(slices.Clone(namespaced), host)
	var sleepers []*sleeperContainer
	for _, c := range namespaced {
		sleepers = append(sleepers, &c.sleeperContainer)
	}
	// idOfPID is the container of each container's init, from Docker.
	idOfPID := map[int]*dockerContainer{}
	for _, c := range all {
		idOfPID[c.pid] = c
	}

	e := runImageExporter(t, d, exporterImage, "cvx-exporter", "0", capSysPtrace|capNetAdmin|capNetBroadcast,
		"--", "--collector.container-identity")
	families := e.scrapeUntil(t, exactSeriesFor(sleepers))
	checkHealthyScrape(t, families)
	if missing := missingLogged(e.logs()); missing != "" {
		t.Errorf("exporter has every capability it uses, but warns that %s are missing", missing)
	}

	t.Run("identity", func(t *testing.T) {
		checked := map[string]bool{}
		for _, l := range seriesLabels(families, "container_vnic_info") {
			pid, _ := strconv.Atoi(l["pid"])
			var c *dockerContainer
			for _, s := range namespaced {
				if l["netns"] == s.netnsLabel() {
					c = s // cvx-bridge, not cvx-joined, for their namespace
					break
				}
			}
			if c == nil {
				continue // another test's or another engine's container
			}
			owner := idOfPID[pid]
			if owner == nil {
				t.Errorf("series %v: pid %d is no container's init (Docker says %v)", l, pid, idOfPID)
				continue
			}
			if l["container_id"] != owner.id || l["runtime"] != "docker" || l["pod_uid"] != "" {
				t.Errorf("series %v, want container_id %s (%s) runtime docker pod_uid \"\"", l, owner.id, owner.name)
			}
			checked[c.name] = true
		}
		// Each namespace with a vNIC: the default bridge (shared with
		// cvx-joined), the user network, the two networks.
		if len(checked) != 3 || !checked[bridge.name] || !checked[user.name] || !checked[two.name] {
			t.Errorf("identity checked on the series of %v, want %s, %s, %s", checked, bridge.name, user.name, two.name)
		}
		for _, series := range scrapedVNICSeries(families) {
			if series.Netns == strconv.FormatUint(hostNetns, 10) {
				t.Errorf("series %v for the host's own namespace", series)
			}
		}
	})

	t.Run("psnic", func(t *testing.T) {
		// Every container PID with a host-side vNIC, in one call: one row
		// per interface, with the identity of that PID's own container.
		var pids []string
		var withVNIC []*dockerContainer
		for _, c := range namespaced {
			if c != none {
				pids = append(pids, strconv.Itoa(c.pid))
				withVNIC = append(withVNIC, c)
			}
		}
		out, stderr, code := d.psnic(t, exporterImage, pids...)
		if code != 0 {
			t.Fatalf("psnic %v: exit %d: %s", pids, code, stderr)
		}
		var rows []struct {
			PID             int
			ContainerIfname string `json:"container_ifname"`
			HostIfname      string `json:"host_ifname"`
			ContainerID     string `json:"container_id"`
			Runtime         string
			PodUID          string `json:"pod_uid"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("psnic: %v: %q", err, out)
		}
		var got, want []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("pid=%d %s/%s %s %s %q", r.PID, r.ContainerIfname, r.HostIfname, r.ContainerID, r.Runtime, r.PodUID))
		}
		for _, c := range withVNIC {
			series := c.want
			if c == joined {
				series = bridge.want
			}
			for _, s := range series {
				want = append(want, fmt.Sprintf("pid=%d %s/%s %s docker %q", c.pid, s.ContainerIfname, s.HostIfname, c.id, ""))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("psnic rows:\n got %q\nwant %q", got, want)
		}

		// No vNIC, and the host's namespace: one line each on stderr
		// naming the PID, and exit status 1.
		for _, c := range []struct {
			container *dockerContainer
			cause     string
		}{{none, "has no host-side vNIC"}, {host, "is in the host network namespace"}} {
			out, stderr, code := d.psnic(t, exporterImage, strconv.Itoa(c.container.pid))
			wantErr := fmt.Sprintf("psnic: pid %d: ", c.container.pid)
			if code != 1 || strings.TrimSpace(out) != "[]" || !strings.HasPrefix(stderr, wantErr) ||
				!strings.Contains(stderr, c.cause) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("psnic %d (%s): exit %d, stdout %q, stderr %q; want exit 1, [] and one line %q...%q",
					c.container.pid, c.container.name, code, out, stderr, wantErr, c.cause)
			}
		}
	})

	// Docker's user 0 is no shortcut past CAP_SYS_PTRACE: the containers'
	// processes (root too, with capabilities the exporter lacks) refuse
	// their /proc/PID/ns/net, so no namespace of theirs is seen.
	t.Run("user 0 without SYS_PTRACE", func(t *testing.T) {
		e := runImageExporter(t, d, exporterImage, "cvx-exporter-no-ptrace", "0", capNetAdmin|capNetBroadcast)
		families := e.scrapeUntil(t, noSeriesFor(sleepers))
		if v, ok := gaugeValue(families, "container_vnic_processes_skipped", "cause", "no_cap_sys_ptrace"); !ok || v < float64(len(all)-1) {
			t.Errorf("container_vnic_processes_skipped{cause=\"no_cap_sys_ptrace\"} = %v (present %v), want at least %d (the sleepers not on the host's network)", v, ok, len(all)-1)
		}
		if missing := missingLogged(e.logs()); !strings.Contains(missing, "CAP_SYS_PTRACE") {
			t.Errorf("exporter warns that %q are missing, want CAP_SYS_PTRACE among them", missing)
		}
	})

	// The series follow Docker: a network disconnected, a container
	// removed.
	t.Run("changes", func(t *testing.T) {
		d.run(t, "network", "disconnect", "cvx-user-b", two.name)
		two.want = d.checkedSeries(t, two, "eth0")
		e.scrapeUntil(t, exactSeriesFor(sleepers))
		d.remove(t, user)
		rest := slices.DeleteFunc(slices.Clone(sleepers), func(s *sleeperContainer) bool { return s == &user.sleeperContainer })
		e.scrapeUntil(t, func(f map[string]*dto.MetricFamily) error {
			if err := exactSeriesFor(rest)(f); err != nil {
				return err
			}
			return noSeriesFor([]*sleeperContainer{&user.sleeperContainer})(f)
		})
	})
}

// requireDockerTools returns the path of a static busybox, for the sleeper
// image. Without Docker or a static busybox the test skips, except in CI,
// where it fails.
func requireDockerTools(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (.ci/install-docker.sh installs docker.io and busybox-static)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run this test, refusing to skip")
		}
		t.Skip(msg)
	}
	for _, tool := range []string{"dockerd", "docker", "containerd", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing("%s not installed: %v", tool, err)
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

// dockerCommandTimeout bounds one docker command.
const dockerCommandTimeout = 2 * time.Minute

// dockerDaemon is a dockerd the test started, with its own data, state,
// configuration and socket, so that it neither sees nor touches anyone
// else's containers. Its bridges, veths and network namespaces are
// host-wide all the same.
type dockerDaemon struct {
	dir    string
	cli    string // the docker CLI of the daemon's own package
	socket string
	env    []string
	// defaultBridge backs Docker's default network: docker0, unless
	// another Docker on the host has it.
	defaultBridge string
	// containers the test started, whose namespace files must be gone
	// after cleanup.
	containers []*dockerContainer
}

func startDockerd(t *testing.T) *dockerDaemon {
	t.Helper()
	// A short path: containerd's sockets live under --exec-root, and a
	// unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "cvx-docker-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerDaemon{dir: dir, socket: filepath.Join(dir, "docker.sock"),
		env: append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "cli"))}
	// Debian's docker.io puts its CLI beside dockerd's package; another
	// docker earlier in PATH may be a newer client of another API.
	d.cli = "/usr/bin/docker"
	if _, err := os.Stat(d.cli); err != nil {
		if d.cli, err = exec.LookPath("docker"); err != nil {
			t.Fatal(err)
		}
	}
	// Docker 20.10 writes its identity key to /etc/docker unless told.
	writeFile(t, filepath.Join(dir, "daemon.json"), fmt.Sprintf("{%q: %q}\n", "deprecated-key-path", filepath.Join(dir, "key.json")))
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// A docker0 already there is another Docker's: leave it alone, and give
	// the test's daemon a bridge of its own.
	hadDocker0 := linkExists("docker0")
	d.defaultBridge = "docker0"
	if hadDocker0 {
		d.defaultBridge = "cvxdk" + netnstest.Suffix()
		netnstest.IP(t, "link", "add", d.defaultBridge, "type", "bridge")
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "link", "del", d.defaultBridge).CombinedOutput(); err != nil {
				t.Errorf("cleanup: ip link del %s: %v: %s", d.defaultBridge, err, out)
			}
		})
	}
	removeHostDirs := newHostDirs("/run/containerd")
	cgroupsBefore, _ := filepath.Glob("/sys/fs/cgroup/*/docker")

	// No iptables rules and no IP forwarding: the host's firewall and
	// sysctls stay as they are. The configuration file and the key file
	// are the test's own, not /etc/docker's.
	cmd := exec.Command("dockerd",
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--host", "unix://"+d.socket,
		"--storage-driver", "vfs",
		"--iptables=false", "--ip6tables=false", "--ip-forward=false")
	if hadDocker0 {
		cmd.Args = append(cmd.Args, "--bridge", d.defaultBridge)
	}
	daemon := startDaemon(t, "dockerd", cmd, log)
	ready := false
	t.Cleanup(func() {
		if ready {
			d.cleanup(t)
		}
		daemon.stop(t)
		d.checkSandboxesGone(t)
		if !hadDocker0 && linkExists("docker0") {
			if out, err := exec.Command("ip", "link", "del", "docker0").CombinedOutput(); err != nil {
				t.Errorf("cleanup: ip link del docker0: %v: %s", err, out)
			}
		}
		// The cgroupfs parents Docker made, empty now that its containers
		// are gone.
		after, _ := filepath.Glob("/sys/fs/cgroup/*/docker")
		for _, p := range after {
			if !slices.Contains(cgroupsBefore, p) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		// Docker leaves its bind mount of the host's namespace (for
		// --network host) mounted when it stops.
		unmountUnder(t, dir)
		removeHostDirs()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// Ready when the API answers, which can take a few seconds.
	daemon.waitReady(t, func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return d.command(ctx, "version").CombinedOutput()
	})
	ready = true
	return d
}

func (d *dockerDaemon) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.cli, append([]string{"--host", "unix://" + d.socket}, args...)...)
	cmd.Env = d.env
	return cmd
}

// run runs docker and returns its trimmed stdout, failing t with stderr.
func (d *dockerDaemon) run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerCommandTimeout)
	defer cancel()
	return runCommand(t, d.command(ctx, args...))
}

// cleanup removes every container (their veths and namespaces go with
// them) and every user network (their bridges go with them).
func (d *dockerDaemon) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerCommandTimeout)
	defer cancel()
	if ids, err := d.command(ctx, "ps", "-aq").Output(); err == nil && len(bytes.TrimSpace(ids)) > 0 {
		args := append([]string{"rm", "-f"}, strings.Fields(string(ids))...)
		if out, err := d.command(ctx, args...).CombinedOutput(); err != nil {
			t.Errorf("cleanup: docker rm: %v: %s", err, out)
		}
	}
	if out, err := d.command(ctx, "network", "prune", "-f").CombinedOutput(); err != nil {
		t.Errorf("cleanup: docker network prune: %v: %s", err, out)
	}
}

// checkSandboxesGone checks that Docker removed the namespace files of
// the test's containers, which it does lazily, at the latest when it stops.
func (d *dockerDaemon) checkSandboxesGone(t *testing.T) {
	for _, c := range d.containers {
		if c.sandboxKey == "" {
			continue
		}
		if _, err := os.Lstat(c.sandboxKey); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup: network namespace %s of %s left behind (%v)", c.sandboxKey, c.name, err)
		}
	}
}

// psnic runs psnic from the image, as the README's Docker command runs the
// exporter, with JSON output; it returns stdout, stderr and the exit code.
func (d *dockerDaemon) psnic(t *testing.T, image string, pids ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerCommandTimeout)
	defer cancel()
	args := []string{"run", "--rm", "--pull=never", "--network", "host", "--pid", "host",
		"-v", "/proc:/host/proc:ro", "--read-only", "--user", "0", "--cap-drop", "all",
		"--cap-add", "SYS_PTRACE", "--cap-add", "NET_ADMIN", "--entrypoint", "/bin/psnic",
		image, "--path.procfs=/host/proc", "-o", "json"}
	var out, errOut bytes.Buffer
	cmd := d.command(ctx, append(args, pids...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("docker run psnic: %v: %s", err, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// buildDockerExporterImage builds the image from the repository's
// Dockerfile with `docker build`.
func buildDockerExporterImage(t *testing.T, d *dockerDaemon) string {
	t.Helper()
	root, contextDir := buildImageContext(t)
	const tag = "container_vnic_exporter:docker-test"
	d.run(t, "build", "-q", "-f", filepath.Join(root, "Dockerfile"), "--target", "prebuilt",
		"--build-arg", "OS=linux", "--build-arg", "ARCH="+runtime.GOARCH, "-t", tag, contextDir)
	checkImageUser(t, d, tag)
	return tag
}

// importSleeperImage makes an image of a root filesystem with busybox's
// sleep, with `docker import`: no registry, no base image.
func importSleeperImage(t *testing.T, d *dockerDaemon, busybox string) string {
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
	archive := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	const tag = "cvx-sleeper:docker-test"
	d.run(t, "import", archive, tag)
	return tag
}

// dockerContainer is a sleeper Docker started, with what Docker says of it.
type dockerContainer struct {
	sleeperContainer
	id         string // docker inspect's Id
	sandboxKey string // docker inspect's NetworkSettings.SandboxKey
}

// startSleeper runs `sleep` in a new container with the given docker run
// network options and checks, for a container with a namespace of its own
// or joined, that its interfaces are lo and ifnames. The want series are
// from the container's own sysfs and `ip link`.
func (d *dockerDaemon) startSleeper(t *testing.T, image, name string, runArgs []string, ifnames ...string) *dockerContainer {
	t.Helper()
	args := append([]string{"run", "-d", "--pull=never", "--name", name}, runArgs...)
	d.run(t, append(args, image, "sleep", "3600")...)
	fields := strings.Fields(d.run(t, "inspect", "-f", "{{.Id}} {{.State.Pid}} {{.NetworkSettings.SandboxKey}} {{.HostConfig.NetworkMode}}", name))
	if len(fields) < 3 {
		t.Fatalf("docker inspect %s: %q, want id, PID, (sandbox key,) network mode", name, fields)
	}
	c := &dockerContainer{id: fields[0]}
	c.name = name
	var err error
	if c.pid, err = strconv.Atoi(fields[1]); err != nil || c.pid <= 0 || len(c.id) != 64 {
		t.Fatalf("docker inspect %s: id %q PID %q", name, fields[0], fields[1])
	}
	d.containers = append(d.containers, c)
	c.netns = netnsInode(t, c.pid)
	c.lowestPID = oldestPIDIn(t, c.netns)
	switch mode := fields[len(fields)-1]; {
	case mode == "host":
		return c
	case strings.HasPrefix(mode, "container:"):
		// Another container's namespace, already named below.
		for _, other := range d.containers {
			if other.netns == c.netns && other.netnsName != "" {
				c.netnsName = other.netnsName
			}
		}
		if c.netnsName == "" {
			t.Fatalf("%s: network mode %s, but no container of the test is in its netns %d", name, mode, c.netns)
		}
	default:
		// A namespace Docker made for this container.
		if len(fields) != 4 {
			t.Fatalf("docker inspect %s: %q, want a sandbox key", name, fields)
		}
		c.sandboxKey = fields[2]
		var st syscall.Stat_t
		if err := syscall.Stat(c.sandboxKey, &st); err != nil || st.Ino != c.netns {
			t.Fatalf("%s: sandbox %s is not the namespace of PID %d (inode %d, %v)", name, c.sandboxKey, c.pid, st.Ino, err)
		}
		// `ip link` names a veth's peer namespace only if it has a name
		// under /run/netns: give it one for the test. The name pins the
		// namespace until it is deleted, before the container is removed.
		c.netnsName = "cvxdk-" + netnstest.Suffix()
		netnstest.IP(t, "netns", "attach", c.netnsName, strconv.Itoa(c.pid))
		t.Cleanup(func() { c.unname(t) })
	}
	c.want = d.checkedSeries(t, c, ifnames...)
	return c
}

// unname deletes the name startSleeper gave the container's namespace.
func (c *dockerContainer) unname(t *testing.T) {
	if c.sandboxKey == "" || c.netnsName == "" {
		return
	}
	if out, err := exec.Command("ip", "netns", "delete", c.netnsName).CombinedOutput(); err != nil {
		t.Errorf("ip netns delete %s: %v: %s", c.netnsName, err, out)
	}
	c.netnsName = ""
}

// remove removes a container, and the name of its namespace first.
func (d *dockerDaemon) remove(t *testing.T, c *dockerContainer) {
	t.Helper()
	c.unname(t)
	d.run(t, "rm", "-f", c.name)
}

// checkedSeries returns the series of the container's namespace, from its
// sysfs and `ip link` (the image test's expectedSeries), after checking
// that Docker agrees on its interfaces: one per network Docker says it is
// on, with the MAC address Docker gave it.
func (d *dockerDaemon) checkedSeries(t *testing.T, c *dockerContainer, ifnames ...string) []vnicSeries {
	t.Helper()
	series := c.expectedSeries(t, ifnames...)
	var macs []string
	for _, ifname := range ifnames {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/sys/class/net/%s/address", c.pid, ifname))
		if err != nil {
			t.Fatal(err)
		}
		macs = append(macs, strings.TrimSpace(string(b)))
	}
	docker := strings.Fields(d.run(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.MacAddress}} {{end}}", c.name))
	if mode := d.run(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", c.name); strings.HasPrefix(mode, "container:") {
		other := strings.TrimPrefix(mode, "container:")
		docker = strings.Fields(d.run(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.MacAddress}} {{end}}", other))
	}
	slices.Sort(macs)
	slices.Sort(docker)
	if !slices.Equal(macs, docker) {
		t.Fatalf("%s: interfaces %v have MAC addresses %v, Docker says %v", c.name, ifnames, macs, docker)
	}
	return series
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		// Field 5 is the mount point, with spaces escaped as \040.
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append(targets, f[4])
		}
	}
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	for _, target := range targets {
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
			t.Errorf("cleanup: umount %s: %v", target, err)
		}
	}
}

// oldestPIDIn returns the PID the exporter must name a namespace by: its
// oldest process, by start time (field 22 of /proc/PID/stat), the lowest
// PID among equals. Not the lowest PID: PIDs wrap on a busy machine, and
// a container's second process can get a lower PID than its first.
func oldestPIDIn(t *testing.T, netns uint64) int {
	t.Helper()
	inodes, _ := scanNetnsLinks(t)
	best, bestStart := 0, uint64(0)
	for pid, ino := range inodes {
		if ino != netns {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			// Gone since the scan: the host's namespace (a container on
			// the host's network) holds every other test's processes too.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// The command name, in parentheses, may hold spaces: count
		// fields from the last ")", which ends field 2.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) < 20 {
			t.Fatalf("/proc/%d/stat: %q", pid, b)
		}
		start, err := strconv.ParseUint(fields[19], 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/stat: start time %q: %v", pid, fields[19], err)
		}
		if best == 0 || start < bestStart || start == bestStart && pid < best {
			best, bestStart = pid, start
		}
	}
	if best == 0 {
		t.Fatalf("no process in network namespace %d", netns)
	}
	return best
}

func netnsInode(t *testing.T, pid int) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
