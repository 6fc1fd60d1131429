// Package e2e runs the exporter with the real node_exporter, Prometheus and
// promtool, and proves through Prometheus's HTTP API that the exporter's own
// counters and the shipped recording rules (examples/prometheus/rules.yml)
// give each container's traffic from both ends of its vNIC, and that the
// alternative rules attach the right container to node_exporter's interface
// counters.
//
// The tools come from .ci/install-prometheus.sh. Without them the tests skip,
// except in CI (CI set), where they fail: a green CI must not hide them.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

const (
	repoRoot   = ".."
	examples   = repoRoot + "/examples/prometheus"
	configFile = examples + "/prometheus.yml"
	rulesFile  = examples + "/rules.yml"
	rulesTest  = examples + "/rules_test.yml"
	// Example rules joining to kube-state-metrics and cAdvisor: checked and
	// unit-tested here, not loaded by the example configuration.
	recipesFile = examples + "/recipes.yml"
	recipesTest = examples + "/recipes_test.yml"
)

// joined lists the recording rules of rules.yml that carry the container's
// labels on a node_exporter counter.
var joined = []string{
	"container_vnic:node_network_receive_bytes_total",
	"container_vnic:node_network_transmit_bytes_total",
	"container_vnic:node_network_receive_packets_total",
	"container_vnic:node_network_transmit_packets_total",
	"container_vnic:node_network_receive_drop_total",
	"container_vnic:node_network_transmit_drop_total",
	"container_vnic:node_network_receive_errs_total",
	"container_vnic:node_network_transmit_errs_total",
}

// Two nodes on one machine: each exporter listens on both loopback
// addresses, and the example's relabeling names the node after the address.
// Both nodes then see the same device names, the case where a join on
// device alone is many-to-many.
var nodes = []string{"127.0.0.1", "127.0.0.2"}

// Traffic sent each way across each veth pair.
const (
	datagrams   = 200
	payloadSize = 1000
	// frameSize is a datagram on the wire as the interfaces count it:
	// Ethernet, IPv4 and UDP headers around the payload.
	frameSize = 14 + 20 + 8 + payloadSize
)

// own lists the exporter's counters of a vNIC, both ends, and the rate rule
// of rules.yml over each: the container end's transmit and the host end's
// receive are the same datagrams, and the other way round.
var own = []struct{ counter, rate string }{
	{"container_vnic_transmit_bytes_total", "vnic:container_vnic_transmit_bytes:rate5m"},
	{"container_vnic_receive_bytes_total", "vnic:container_vnic_receive_bytes:rate5m"},
	{"container_vnic_host_receive_bytes_total", "vnic:container_vnic_host_receive_bytes:rate5m"},
	{"container_vnic_host_transmit_bytes_total", "vnic:container_vnic_host_transmit_bytes:rate5m"},
	{"container_vnic_transmit_packets_total", "vnic:container_vnic_transmit_packets:rate5m"},
	{"container_vnic_receive_packets_total", "vnic:container_vnic_receive_packets:rate5m"},
	{"container_vnic_host_receive_packets_total", "vnic:container_vnic_host_receive_packets:rate5m"},
	{"container_vnic_host_transmit_packets_total", "vnic:container_vnic_host_transmit_packets:rate5m"},
}

// tools are the installed Prometheus binaries.
type tools struct{ prometheus, promtool, nodeExporter string }

// findTools looks for the binaries where .ci/install-prometheus.sh puts them
// first (GOBIN or GOPATH/bin, which a system PATH may shadow with older
// packages), then on PATH.
func findTools(t *testing.T) tools {
	t.Helper()
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if lines[0] != "" {
			dirs = append(dirs, lines[0])
		}
		if len(lines) > 1 && lines[1] != "" {
			dirs = append(dirs, filepath.Join(strings.Split(lines[1], ":")[0], "bin"))
		}
	}
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		p, err := exec.LookPath(name)
		if err == nil {
			return p
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed, and CI must not skip this test: run .ci/install-prometheus.sh", name)
		}
		t.Skipf("%s not installed: run .ci/install-prometheus.sh", name)
		return ""
	}
	return tools{prometheus: find("prometheus"), promtool: find("promtool"), nodeExporter: find("node_exporter")}
}

// TestPromtool checks the shipped examples with promtool, lints included, and
// runs the rules' unit tests.
func TestPromtool(t *testing.T) {
	tl := findTools(t)
	for _, args := range [][]string{
		{"check", "config", "--lint=all", "--lint-fatal", configFile},
		{"check", "rules", "--lint=all", "--lint-fatal", rulesFile, recipesFile},
		{"test", "rules", rulesTest, recipesTest},
	} {
		out, err := exec.Command(tl.promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEndToEnd runs node_exporter, this exporter and Prometheus with the
// example configuration and rules against real namespaces and veth pairs,
// sends traffic across them, and moves a container.
func TestEndToEnd(t *testing.T) {
	netnstest.RequireRoot(t)
	tl := findTools(t)
	dir := t.TempDir()
	start := time.Now()

	exporter := filepath.Join(dir, "container_vnic_exporter")
	build := exec.Command("go", "build", "-o", exporter, "./cmd/container_vnic_exporter")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the exporter: %v\n%s", err, out)
	}

	// A container that stays for the whole test.
	stable := newContainer(t, "net1")

	var procs procs
	var nodeTargets, vnicTargets []string
	// Only this test's host interfaces: a host where others run a thousand
	// veths makes a whole netdev scrape slower than the 1 s interval.
	nodeArgs := []string{"--collector.disable-defaults", "--collector.netdev", "--collector.netdev.device-include=^e2eh"}
	var vnicArgs []string
	for _, n := range nodes {
		a, b := freeAddr(t, n), freeAddr(t, n)
		nodeTargets, vnicTargets = append(nodeTargets, a), append(vnicTargets, b)
		nodeArgs = append(nodeArgs, "--web.listen-address="+a)
		vnicArgs = append(vnicArgs, "--web.listen-address="+b)
	}
	procs.start(t, dir, "node_exporter", tl.nodeExporter, nodeArgs...)
	procs.start(t, dir, "container_vnic_exporter", exporter, vnicArgs...)

	config := prometheusConfig(t, dir, nodeTargets, vnicTargets)
	if out, err := exec.Command(tl.promtool, "check", "config", config).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config on the generated configuration: %v\n%s", err, out)
	}
	promAddr := freeAddr(t, "127.0.0.1")
	procs.start(t, dir, "prometheus", tl.prometheus,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	prom := &promAPI{t: t, base: "http://" + promAddr, procs: &procs}
	prom.poll("Prometheus to be ready", func() (bool, string) {
		resp, err := http.Get(prom.base + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	if !t.Run("targets up", func(t *testing.T) {
		want := map[string]bool{}
		for i, n := range nodes {
			want[fmt.Sprintf("job=node instance=%s node=%s", nodeTargets[i], n)] = true
			want[fmt.Sprintf("job=container_vnic instance=%s node=%s", vnicTargets[i], n)] = true
		}
		prom.with(t).poll("up == 1 for every target of every job", func() (bool, string) {
			got := map[string]bool{}
			for _, s := range prom.with(t).query("up") {
				if s.Value == 1 {
					got[fmt.Sprintf("job=%s instance=%s node=%s", s.Metric["job"], s.Metric["instance"], s.Metric["node"])] = true
				}
			}
			return maps.Equal(got, want), fmt.Sprintf("up == 1 for %v, want %v", keys(got), keys(want))
		})
	}) {
		t.FailNow()
	}

	var moved *container
	if !t.Run("join", func(t *testing.T) {
		c := newContainer(t, "eth0")
		moved = c
		prom.with(t).waitJoin([]*container{c, stable}, nodeTargets)
		prom.with(t).waitOwn([]*container{c, stable}, vnicTargets)
		prom.with(t).waitRulesHealthy()

		for _, c := range []*container{c, stable} {
			before := prom.with(t).counters(c)
			ownBefore := prom.with(t).ownCounters(c)
			if len(before) != 4 {
				t.Fatalf("counters of %s before the traffic: %v, want 4", c.host, before)
			}
			c.sendTraffic(t)
			// The host end receives what the container sends and
			// transmits what the host sends it.
			prom.with(t).poll("byte and packet counters of "+c.host+" to grow with the traffic sent", func() (bool, string) {
				now := prom.with(t).counters(c)
				for name, v := range now {
					least := float64(datagrams)
					if strings.Contains(name, "bytes") {
						least = datagrams * payloadSize
					}
					if v-before[name] < least {
						return false, fmt.Sprintf("%s grew by %v, want at least %v (before %v, now %v)", name, v-before[name], least, before, now)
					}
				}
				if len(now) != 4 {
					return false, fmt.Sprintf("counters %v", now)
				}
				t.Logf("%s after %d datagrams of %d bytes each way: %s", c.host, datagrams, payloadSize, growth(before, now))
				return true, ""
			})
			prom.with(t).checkOwn(c, ownBefore)
		}

		checkMetrics(t, tl, "http://"+vnicTargets[0]+"/metrics")
	}) {
		t.FailNow()
	}

	// Every panel query of the shipped Grafana dashboard, against this
	// Prometheus, after the traffic above: each must return data.
	t.Run("dashboard", func(t *testing.T) { checkDashboards(t, prom.with(t)) })

	// The container of "join" is gone with its namespace and veth. A new
	// namespace with a new veth replaces it: the join must follow.
	t.Run("move", func(t *testing.T) {
		c := newContainer(t, "eth0")
		prom.with(t).waitJoin([]*container{c, stable}, nodeTargets, moved.host)
		prom.with(t).waitOwn([]*container{c, stable}, vnicTargets, moved)
		prom.with(t).waitRulesHealthy()
	})

	// The stable container's oldest process exits; another stays. The pid
	// label of container_vnic_info moves to it, and no rule output may
	// change series.
	t.Run("pid change", func(t *testing.T) {
		next := stable.ns.Spawn()
		old := stable.pid
		since := time.Now()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		stable.pid = next
		prom.with(t).poll(fmt.Sprintf("container_vnic_info of %s to name pid %d instead of %d", stable.host, next, old), func() (bool, string) {
			got := prom.with(t).query(fmt.Sprintf(`container_vnic_info{host_ifname=%q}`, stable.host))
			for _, s := range got {
				if s.Metric["pid"] != strconv.Itoa(next) {
					return false, fmt.Sprintf("%v", got)
				}
			}
			return len(got) == len(nodes), fmt.Sprintf("%v", got)
		})
		// Once every rule has been evaluated a few times since the change,
		// each output of the container must have been one series per node
		// over the whole time, before and after it.
		changed := time.Now()
		var queries []string
		for _, q := range append(append([]string{}, joined...), "device:container_vnic_info:unique") {
			queries = append(queries, fmt.Sprintf(`%s{device=%q}`, q, stable.host))
		}
		for _, o := range own {
			queries = append(queries, fmt.Sprintf(`%s{netns=%q}`, o.rate, stable.netns))
		}
		prom.with(t).poll("three evaluations of every rule since the pid changed", func() (bool, string) {
			secs := int(time.Since(changed).Seconds()) + 1
			for _, q := range queries {
				got := prom.with(t).query(fmt.Sprintf(`min(count_over_time(%s[%ds]))`, q, secs))
				if len(got) != 1 || got[0].Value < 3 {
					return false, fmt.Sprintf("%s: %v samples in the last %ds", q, got, secs)
				}
			}
			return true, ""
		})
		window := time.Since(since).Round(time.Second) + 2*time.Second
		for _, q := range queries {
			prom.with(t).oneSeriesOver(q, window)
		}
		prom.with(t).waitRulesHealthy()
	})
	t.Logf("end-to-end test took %v", time.Since(start).Round(time.Millisecond))
}

// container is a network namespace with a process and a veth pair, both
// ends addressed from 169.254.0.0/16.
type container struct {
	ns                *netnstest.Netns
	host, ifname      string // host-side and container-side interface names
	pid               int
	netns             string // namespace inode
	hostAddr, ctrAddr net.IP
	hostIndex         int // ifindex of host, in the host
	ctrIndex          int // ifindex of ifname, in the container
}

func newContainer(t *testing.T, ifname string) *container {
	t.Helper()
	c := &container{ns: netnstest.NewNetns(t, "e2e"), host: "e2eh" + netnstest.Suffix(), ifname: ifname}
	c.ns.Veth(c.host, ifname)
	c.hostAddr, c.ctrAddr = freeLinkLocalPair(t)
	netnstest.IP(t, "addr", "add", c.hostAddr.String()+"/30", "dev", c.host)
	c.ns.IP("addr", "add", c.ctrAddr.String()+"/30", "dev", ifname)
	c.pid = c.ns.Spawn()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", c.pid), &st); err != nil {
		t.Fatal(err)
	}
	c.netns = strconv.FormatUint(st.Ino, 10)
	hostIf, err := net.InterfaceByName(c.host)
	if err != nil {
		t.Fatal(err)
	}
	c.hostIndex = hostIf.Index
	out, err := exec.Command("ip", "netns", "exec", c.ns.Name, "cat", "/sys/class/net/"+ifname+"/ifindex").Output()
	if err != nil {
		t.Fatalf("ifindex of %s in %s: %v", ifname, c.ns.Name, err)
	}
	if c.ctrIndex, err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
		t.Fatal(err)
	}
	t.Logf("container pid %d netns %s: %s (%s) <-> host %s (%s)", c.pid, c.netns, ifname, c.ctrAddr, c.host, c.hostAddr)
	return c
}

// freeLinkLocalPair picks a /30 of 169.254.0.0/16 that no interface of the
// host uses, away from the first and last /24 (reserved) and 169.254.169.0/24
// (cloud metadata), and returns its two host addresses.
func freeLinkLocalPair(t *testing.T) (net.IP, net.IP) {
	t.Helper()
	for range 100 {
		third, fourth := 1+rand.IntN(253), 4*rand.IntN(64)
		if third == 169 {
			continue
		}
		prefix := fmt.Sprintf("169.254.%d.%d/30", third, fourth)
		if strings.TrimSpace(netnstest.IP(t, "-o", "-4", "addr", "show", "to", prefix)) != "" {
			continue
		}
		return net.IPv4(169, 254, byte(third), byte(fourth+1)), net.IPv4(169, 254, byte(third), byte(fourth+2))
	}
	t.Fatal("no free /30 in 169.254.0.0/16")
	return nil, nil
}

// sendTraffic sends datagrams of payloadSize each way across the veth pair,
// between a socket on the host end and one inside the container.
func (c *container) sendTraffic(t *testing.T) {
	t.Helper()
	host, err := net.ListenUDP("udp4", &net.UDPAddr{IP: c.hostAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	inside, err := listenUDPIn(c.ns.Path(), &net.UDPAddr{IP: c.ctrAddr})
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the test ends: an open socket would keep the namespace,
	// and so the veth, alive after `ip netns del`.
	defer inside.Close()

	// Resolve neighbours both ways first, so that no datagram is dropped
	// waiting for ARP.
	buf := make([]byte, 2*payloadSize)
	for _, dir := range []struct{ from, to *net.UDPConn }{{inside, host}, {host, inside}} {
		for try := 0; ; try++ {
			if try == 50 {
				t.Fatalf("no datagram from %s reached %s", dir.from.LocalAddr(), dir.to.LocalAddr())
			}
			if _, err := dir.from.WriteToUDP([]byte("hello"), dir.to.LocalAddr().(*net.UDPAddr)); err != nil {
				t.Fatal(err)
			}
			_ = dir.to.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, _, err := dir.to.ReadFromUDP(buf); err == nil {
				break
			}
		}
	}
	payload := make([]byte, payloadSize)
	for range datagrams {
		if _, err := inside.WriteToUDP(payload, host.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		if _, err := host.WriteToUDP(payload, inside.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
}

// listenUDPIn opens a UDP socket bound to addr inside the network namespace
// at nsPath. The socket stays in that namespace; the thread that made it
// returns to its own, or, if it cannot, exits with its goroutine.
func listenUDPIn(nsPath string, addr *net.UDPAddr) (*net.UDPConn, error) {
	type result struct {
		conn *net.UDPConn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: err}
			return
		}
		defer own.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("entering %s: %w", nsPath, err)}
			return
		}
		conn, err := net.ListenUDP("udp4", addr)
		if rerr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); rerr != nil {
			if conn != nil {
				conn.Close()
			}
			res <- result{err: fmt.Errorf("returning from %s: %w", nsPath, rerr)}
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		res <- result{conn, err}
	}()
	r := <-res
	return r.conn, r.err
}

// freeAddr returns host:port with a port free on host now.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// prometheusConfig writes the example configuration with this test's
// targets, 1s intervals and the shipped rules file, and returns its path.
// Each replaced text must occur exactly once, so that the test notices
// when the example changes shape.
func prometheusConfig(t *testing.T, dir string, nodeTargets, vnicTargets []string) string {
	t.Helper()
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	quoted := func(targets []string) string { return `"` + strings.Join(targets, `", "`) + `"` }
	config := string(b)
	for _, r := range [][2]string{
		{"scrape_interval: 15s", "scrape_interval: 1s"},
		{"evaluation_interval: 15s", "evaluation_interval: 1s"},
		{"- rules.yml", "- " + strconv.Quote(rules)},
		{`"node-a.example.com:9100", "node-b.example.com:9100"`, quoted(nodeTargets)},
		{`"node-a.example.com:10054", "node-b.example.com:10054"`, quoted(vnicTargets)},
	} {
		if n := strings.Count(config, r[0]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once", configFile, r[0], n)
		}
		config = strings.Replace(config, r[0], r[1], 1)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkMetrics lints a real scrape with promtool check metrics.
func checkMetrics(t *testing.T, tl tools, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %v %s", url, err, resp.Status)
	}
	if !bytes.Contains(body, []byte("container_vnic_info{")) {
		t.Fatalf("scrape of %s has no container_vnic_info:\n%s", url, body)
	}
	cmd := exec.Command(tl.promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("promtool check metrics: no findings on a %d-byte scrape of %s", len(body), url)
}

// procs are the long-running processes of a test.
type procs struct{ list []*proc }

type proc struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// start runs path with args, output to a log file in dir, and stops it
// when t ends (SIGTERM, then SIGKILL after 10s). If t failed, the log's
// tail is shown.
func (ps *procs) start(t *testing.T, dir, name, path string, args ...string) {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	// Pdeathsig: killed too if the test binary dies without cleanup (a
	// go test timeout).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Logf("%s did not stop on SIGTERM: killing it", name)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s log without info lines (%s):\n%s", name, strings.Join(p.cmd.Args, " "), tail(p.log, 30))
		}
	})
	ps.list = append(ps.list, p)
}

// dead returns a message for the first process that exited early.
func (ps *procs) dead() string {
	for _, p := range ps.list {
		select {
		case <-p.exited:
			return fmt.Sprintf("%s exited early: %v\n%s", p.name, p.cmd.ProcessState, tail(p.log, 30))
		default:
		}
	}
	return ""
}

// tail returns the last lines of a log, leaving out info-level lines.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var l []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(line, "level=INFO") {
			l = append(l, line)
		}
	}
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// promAPI queries Prometheus's HTTP API on behalf of one (sub)test.
type promAPI struct {
	t     *testing.T
	base  string
	procs *procs
}

func (p *promAPI) with(t *testing.T) *promAPI { return &promAPI{t: t, base: p.base, procs: p.procs} }

// poll calls cond every 250ms until it holds, failing after 60s with the
// last state cond described, or at once if a process exited.
func (p *promAPI) poll(what string, cond func() (bool, string)) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if dead := p.procs.dead(); dead != "" {
			p.t.Fatalf("waiting for %s: %s", what, dead)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s: %s", what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type sample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates an instant PromQL query.
func (p *promAPI) query(q string) []sample {
	p.t.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	p.get("/api/v1/query?query="+url.QueryEscape(q), &data)
	if data.ResultType != "vector" {
		p.t.Fatalf("query %s: result type %q, want vector", q, data.ResultType)
	}
	out := make([]sample, 0, len(data.Result))
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			p.t.Fatalf("query %s: value %v: %v", q, r.Value, err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out
}

// get decodes the data of a successful API response into v.
func (p *promAPI) get(path string, v any) {
	p.t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		p.t.Fatalf("GET %s: %s: %v", path, resp.Status, err)
	}
	if body.Status != "success" {
		p.t.Fatalf("GET %s: %s: %s: %s", path, resp.Status, body.ErrorType, body.Error)
	}
	if err := json.Unmarshal(body.Data, v); err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
}

// waitJoin waits until every joined recording rule has, for the devices of
// cs and gone, exactly one series per container and node, with the
// container's labels and that node's node_exporter as instance; the devices
// in gone must have none.
func (p *promAPI) waitJoin(cs []*container, nodeTargets []string, gone ...string) {
	p.t.Helper()
	devices := append([]string{}, gone...)
	want := map[string]bool{}
	for _, c := range cs {
		devices = append(devices, c.host)
		for i, n := range nodes {
			want[labelString(map[string]string{
				"job": "node", "instance": nodeTargets[i], "node": n, "device": c.host,
				"container_ifname": c.ifname, "netns": c.netns,
			})] = true
		}
	}
	for _, name := range joined {
		q := fmt.Sprintf(`%s{device=~"%s"}`, name, strings.Join(devices, "|"))
		var got map[string]bool
		p.poll(name+" to join "+strings.Join(devices, ", "), func() (bool, string) {
			p.failOnRuleError()
			got = map[string]bool{}
			for _, s := range p.query(q) {
				delete(s.Metric, "__name__")
				got[labelString(s.Metric)] = true
			}
			return maps.Equal(got, want), fmt.Sprintf("%s\ngot  %s\nwant %s", q, strings.Join(keys(got), "\n     "), strings.Join(keys(want), "\n     "))
		})
		if name == joined[0] {
			p.t.Logf("%s:\n  %s", q, strings.Join(keys(got), "\n  "))
		}
	}
}

// waitRulesHealthy waits until every rule has been evaluated without error.
func (p *promAPI) waitRulesHealthy() {
	p.t.Helper()
	p.poll("every rule to be evaluated", func() (bool, string) {
		n, pending := p.failOnRuleError()
		return n > 0 && len(pending) == 0, fmt.Sprintf("%d rules, not yet evaluated: %v", n, pending)
	})
}

// failOnRuleError fails the test if the last evaluation of a rule failed (a
// many-to-many join, for one). It returns the number of rules and those not
// evaluated yet.
func (p *promAPI) failOnRuleError() (n int, pending []string) {
	p.t.Helper()
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	p.get("/api/v1/rules", &data)
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			n++
			switch r.Health {
			case "ok":
			case "err":
				p.t.Fatalf("rule %s of group %s failed: %s", r.Name, g.Name, r.LastError)
			default:
				pending = append(pending, r.Name+": "+r.Health)
			}
		}
	}
	return n, pending
}

// counters returns the joined receive and transmit byte and packet
// counters of c's host device on the first node.
func (p *promAPI) counters(c *container) map[string]float64 {
	p.t.Helper()
	out := map[string]float64{}
	for _, name := range joined[:4] {
		for _, s := range p.query(fmt.Sprintf(`%s{node=%q,device=%q}`, name, nodes[0], c.host)) {
			out[name] = s.Value
		}
	}
	return out
}

// growth describes how much each counter grew, in rule-name order.
func growth(before, now map[string]float64) string {
	var parts []string
	for _, name := range joined[:4] {
		parts = append(parts, fmt.Sprintf("%s +%v", strings.TrimPrefix(name, "container_vnic:node_network_"), now[name]-before[name]))
	}
	return strings.Join(parts, ", ")
}

// labelString renders labels sorted by name, for comparing label sets.
func labelString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitOwn waits until each of the exporter's counters of both ends has, for
// each container of cs, exactly one series per node, with the vNIC's labels
// and no pid; the containers in gone must have none.
func (p *promAPI) waitOwn(cs []*container, vnicTargets []string, gone ...*container) {
	p.t.Helper()
	var netnses []string
	want := map[string]bool{}
	for _, c := range gone {
		netnses = append(netnses, c.netns)
	}
	for _, c := range cs {
		netnses = append(netnses, c.netns)
		for i, n := range nodes {
			want[labelString(map[string]string{
				"job": "container_vnic", "instance": vnicTargets[i], "node": n, "netns": c.netns,
				"container_ifname": c.ifname, "container_ifindex": strconv.Itoa(c.ctrIndex),
				"host_ifname": c.host, "host_ifindex": strconv.Itoa(c.hostIndex),
			})] = true
		}
	}
	for _, o := range own {
		q := fmt.Sprintf(`%s{netns=~"%s"}`, o.counter, strings.Join(netnses, "|"))
		p.poll(o.counter+" of "+strings.Join(netnses, ", "), func() (bool, string) {
			got := map[string]bool{}
			for _, s := range p.query(q) {
				delete(s.Metric, "__name__")
				got[labelString(s.Metric)] = true
			}
			return maps.Equal(got, want), fmt.Sprintf("%s\ngot  %s\nwant %s", q, strings.Join(keys(got), "\n     "), strings.Join(keys(want), "\n     "))
		})
	}
}

// ownCounters returns the exporter's counters of c's vNIC on the first
// node, by metric name.
func (p *promAPI) ownCounters(c *container) map[string]float64 {
	p.t.Helper()
	out := map[string]float64{}
	for _, o := range own {
		for _, s := range p.query(fmt.Sprintf(`%s{node=%q,netns=%q,container_ifname=%q}`, o.counter, nodes[0], c.netns, c.ifname)) {
			out[o.counter] = s.Value
		}
	}
	return out
}

// checkOwn waits until every counter of c's vNIC, both ends, has grown by
// at least the datagrams sent each way, and until every rate rule over
// them, times its 5m window, accounts for what was sent: at least the bytes
// and packets sent, and not much more.
func (p *promAPI) checkOwn(c *container, before map[string]float64) {
	p.t.Helper()
	least := func(name string) float64 {
		if strings.Contains(name, "bytes") {
			return datagrams * frameSize
		}
		return datagrams
	}
	p.poll("the exporter's counters of "+c.host+" to grow with the traffic sent", func() (bool, string) {
		now := p.ownCounters(c)
		if len(now) != len(own) {
			return false, fmt.Sprintf("counters %v", now)
		}
		for name, v := range now {
			if v-before[name] < least(name) {
				return false, fmt.Sprintf("%s grew by %v, want at least %v (before %v, now %v)", name, v-before[name], least(name), before, now)
			}
		}
		var parts []string
		for _, o := range own {
			parts = append(parts, fmt.Sprintf("%s +%v", strings.TrimSuffix(strings.TrimPrefix(o.counter, "container_vnic_"), "_total"), now[o.counter]-before[o.counter]))
		}
		p.t.Logf("%s, exporter's own counters after %d datagrams of %d bytes (%d on the wire) each way: %s", c.host, datagrams, payloadSize, frameSize, strings.Join(parts, ", "))
		return true, ""
	})
	p.poll("the rate rules of "+c.host+" to account for the traffic sent", func() (bool, string) {
		var parts []string
		for _, o := range own {
			got := p.query(fmt.Sprintf(`%s{node=%q,netns=%q,container_ifname=%q} * 300`, o.rate, nodes[0], c.netns, c.ifname))
			if len(got) != 1 {
				return false, fmt.Sprintf("%s: %d series", o.rate, len(got))
			}
			// Background (neighbour discovery, the handshake datagrams)
			// stays within the slack; rate()'s extrapolation over a young
			// series shrinks as it ages: poll until it is within 20%.
			v, lo := got[0].Value, least(o.rate)
			hi := 1.2*lo + 20*lo/datagrams
			if v < lo || v > hi {
				return false, fmt.Sprintf("%s x 300s = %v, want between %v and %v", o.rate, v, lo, hi)
			}
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimSuffix(strings.TrimPrefix(o.rate, "vnic:container_vnic_"), ":rate5m"), v))
		}
		p.t.Logf("%s, rate rules x 5m: %s (sent %d bytes, %d packets each way)", c.host, strings.Join(parts, ", "), datagrams*frameSize, datagrams)
		return true, ""
	})
}

// oneSeriesOver fails unless q has had exactly one series per node over
// the last window.
func (p *promAPI) oneSeriesOver(q string, window time.Duration) {
	p.t.Helper()
	got := p.query(fmt.Sprintf(`count by (node) (last_over_time(%s[%ds]))`, q, int(window.Seconds())))
	if len(got) != len(nodes) {
		p.t.Fatalf("%s over %v: %v, want one series on each of %d nodes", q, window, got, len(nodes))
	}
	for _, s := range got {
		if s.Value != 1 {
			p.t.Errorf("%s over the last %v: %v series on node %s, want 1 (a pid change split it)", q, window, s.Value, s.Metric["node"])
		}
	}
}
