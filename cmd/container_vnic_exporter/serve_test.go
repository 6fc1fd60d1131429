package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

var (
	serveBinOnce sync.Once
	serveBin     string
	serveBinErr  error
)

// exporterBinary builds the exporter once per test run.
func exporterBinary(t *testing.T) string {
	t.Helper()
	serveBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cve-serve-test")
		if err != nil {
			serveBinErr = err
			return
		}
		serveBin = filepath.Join(dir, "container_vnic_exporter")
		if out, err := exec.Command("go", "build", "-o", serveBin, ".").CombinedOutput(); err != nil {
			serveBinErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if serveBinErr != nil {
		t.Fatal(serveBinErr)
	}
	return serveBin
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// exporterProcess is the real binary, started for one test.
type exporterProcess struct {
	addr   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	exited chan error
}

func startExporter(t *testing.T, args ...string) *exporterProcess {
	t.Helper()
	return startExporterVia(t, nil, args...)
}

// startExporterVia starts the exporter through a wrapper command (such as
// setpriv or unshare) given with its arguments.
func startExporterVia(t *testing.T, wrapper []string, args ...string) *exporterProcess {
	t.Helper()
	p := &exporterProcess{addr: freeLoopbackAddr(t), stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	argv := append(append(append([]string{}, wrapper...), exporterBinary(t), "--web.listen-address="+p.addr), args...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		if t.Failed() {
			t.Logf("exporter (%v) stderr:\n%s", err, p.stderr)
		}
	})
	netnstest.Eventually(t, 10*time.Second, "exporter to listen", func() bool {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func (p *exporterProcess) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := scrapeFamilies(http.DefaultClient, "http://"+p.addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// infoSeries returns the container_vnic_info series of a scrape as
// "host_ifname container_ifname pid netns" strings, restricted to host
// interfaces with the given prefix (other tests and containers may run).
func infoSeries(families map[string]*dto.MetricFamily, prefix string) map[string]bool {
	out := map[string]bool{}
	f := families["container_vnic_info"]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if strings.HasPrefix(l["host_ifname"], prefix) {
			out[fmt.Sprintf("%s %s %s %s", l["host_ifname"], l["container_ifname"], l["pid"], l["netns"])] = true
		}
	}
	return out
}

// The real binary on a loopback port: series appear, change and disappear
// as namespaces come and go, and SIGTERM shuts it down cleanly.
func TestServeFollowsNamespaces(t *testing.T) {
	netnstest.RequireRoot(t)
	p := startExporter(t)
	prefix := "cvs" + netnstest.Suffix()[:3]

	a := netnstest.NewNetns(t, "cvsa")
	a.Veth(prefix+"a", "eth0")
	pidA := a.Spawn()
	nsA := netnstest.NetnsLabel(t, pidA)
	got := infoSeries(p.scrape(t), prefix)
	want := map[string]bool{fmt.Sprintf("%sa eth0 %d %s", prefix, pidA, nsA): true}
	if !maps.Equal(got, want) {
		t.Fatalf("after creating a: %v, want %v", got, want)
	}

	b := netnstest.NewNetns(t, "cvsb")
	b.Veth(prefix+"b", "eth0")
	pidB := b.Spawn()
	netnstest.IP(t, "link", "set", prefix+"a", "name", prefix+"r")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", prefix+"r").Run() })
	got = infoSeries(p.scrape(t), prefix)
	want = map[string]bool{
		fmt.Sprintf("%sr eth0 %d %s", prefix, pidA, nsA):                           true,
		fmt.Sprintf("%sb eth0 %d %s", prefix, pidB, netnstest.NetnsLabel(t, pidB)): true,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("after creating b and renaming a: %v, want %v", got, want)
	}

	// Kill b's process and drop its name: the namespace and its veth go.
	if err := syscall.Kill(pidB, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	netnstest.IP(t, "netns", "del", b.Name)
	netnstest.Eventually(t, 10*time.Second, "b's series to disappear", func() bool {
		got = infoSeries(p.scrape(t), prefix)
		return maps.Equal(got, map[string]bool{fmt.Sprintf("%sr eth0 %d %s", prefix, pidA, nsA): true})
	})

	families := p.scrape(t)
	for _, name := range []string{"container_vnic_scrape_success", "container_vnic_exporter_build_info", "go_goroutines", "process_open_fds"} {
		if families[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if v := families["container_vnic_scrape_success"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("container_vnic_scrape_success = %v, want 1", v)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
}

func TestServeDisableExporterMetrics(t *testing.T) {
	netnstest.RequireRoot(t)
	p := startExporter(t, "--web.disable-exporter-metrics", "--web.telemetry-path=/metrics")
	families := p.scrape(t)
	for name := range families {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			t.Errorf("%s present with --web.disable-exporter-metrics", name)
		}
	}
	if families["container_vnic_scrape_success"] == nil {
		t.Error("container_vnic_scrape_success missing")
	}
	resp, err := http.Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`href="/metrics"`)) {
		t.Errorf("landing page: %s, missing link to /metrics:\n%s", resp.Status, body)
	}
}

// failedStart runs the exporter with args and returns its level=ERROR log
// lines; ok is false, and t failed, unless it exited 1 within 10 s (it fails
// before it serves: milliseconds).
func failedStart(t *testing.T, args ...string) (errLines []string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exporterBinary(t), append(args, "--web.listen-address="+freeLoopbackAddr(t))...).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Errorf("%q: %v, want exit 1\n%s", args, err, out)
		return nil, false
	}
	for s := bufio.NewScanner(bytes.NewReader(out)); s.Scan(); {
		if strings.Contains(s.Text(), "level=ERROR") {
			errLines = append(errLines, s.Text())
		}
	}
	return errLines, true
}

// A bad --path.procfs fails at startup with one clear line and exit 1.
func TestServeBadProcfs(t *testing.T) {
	netnstest.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// /proc/sys is on a procfs, but holds no process directories.
	for _, path := range []string{"/nonexistent", file, "/proc/sys"} {
		errLines, ok := failedStart(t, "--path.procfs="+path)
		if ok && (len(errLines) != 1 || !strings.Contains(errLines[0], path) || !strings.Contains(errLines[0], "--path.procfs")) {
			t.Errorf("--path.procfs=%s: want one error line naming the path and the flag, got %q", path, errLines)
		}
	}
}

// A --kubernetes.cri-timeout that is not positive, a negative
// --kubernetes.refresh-interval (whether --collector.kubernetes is on or
// not) or --web.timeout-offset, and a --web.telemetry-path that is no plain
// path, fail at startup with one line naming the flag, and exit 1. A runtime
// that is not there is no start-up error (internal/kube's tests,
// TestCRIPods).
func TestServeBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--collector.kubernetes", "--kubernetes.cri-timeout=0s"}, "--kubernetes.cri-timeout"},
		{[]string{"--kubernetes.cri-timeout=-1s"}, "--kubernetes.cri-timeout"},
		{[]string{"--kubernetes.refresh-interval=-1s"}, "--kubernetes.refresh-interval"},
		{[]string{"--web.timeout-offset=-5s"}, "--web.timeout-offset"},
		// ServeMux would panic on these, or read a method or a wildcard.
		{[]string{"--web.telemetry-path="}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path=metrics"}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path=/a b"}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path=POST /m"}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path=/{x}"}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path=/a//b"}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path=/x/../metrics"}, "--web.telemetry-path"},
	} {
		errLines, ok := failedStart(t, tc.args...)
		if ok && (len(errLines) != 1 || !strings.Contains(errLines[0], tc.flag)) {
			t.Errorf("%q: want one error line naming %s, got %q", tc.args, tc.flag, errLines)
		}
	}
}

// SIGTERM with a scrape that cannot finish (its client reads nothing):
// the exporter closes it 10 s on and exits 0, as it does when it drains
// (it exited 1).
func TestServeSIGTERMClientNotReading(t *testing.T) {
	p := startExporter(t)
	conn := netnstest.DialNotReading(t, p.addr)
	defer conn.Close()
	// More scrapes than the kernel buffers take, however few vNICs.
	if _, err := io.WriteString(conn, strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 2000)); err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.TCPAddr)
	// Blocked writing: the bytes it has queued for the client stop
	// growing. (Between two scrapes, it would close the connection at
	// once on SIGTERM, not take another.)
	last, same := int64(-1), 0
	netnstest.Eventually(t, 30*time.Second, "the exporter to be blocked writing to the client", func() bool {
		n := sendQueued(t, p.addr, local.Port)
		if n > 0 && n == last {
			same++
		} else {
			same = 0
		}
		last = n
		time.Sleep(100 * time.Millisecond)
		return same >= 10 // a second unchanged: not a scrape still being made
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the clean-up
		if err != nil || !strings.Contains(p.stderr.String(), "closing the connections of scrapes still being written") {
			t.Fatalf("exit after SIGTERM: %v, want 0 after closing the stuck scrape\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after SIGTERM")
	}
}

// sendQueued returns the bytes queued to send on the server's end (addr)
// of the loopback connection from clientPort, from /proc/net/tcp.
func sendQueued(t *testing.T, addr string, clientPort int) int64 {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	srvPort, _ := strconv.Atoi(port)
	local, remote := fmt.Sprintf(":%04X", srvPort), fmt.Sprintf(":%04X", clientPort)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasSuffix(f[1], local) && strings.HasSuffix(f[2], remote) {
			tx, _, _ := strings.Cut(f[4], ":")
			n, _ := strconv.ParseInt(tx, 16, 64)
			return n
		}
	}
	return 0
}

// A host veth whose name has a backslash, valid UTF-8, comes out of the
// real binary, parsed by Prometheus' text parser, exactly as the kernel
// has it, so it joins with node_exporter's device label (issue 21: the
// value was `cbbs\\x...`).
func TestServeBackslashName(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvsk")
	host := `cbbs\x` + netnstest.Suffix()
	ns.Veth(host, "eth0")
	if _, err := os.Stat("/sys/class/net/" + host); err != nil {
		t.Fatalf("the kernel has no link %q: %v", host, err)
	}
	pid := ns.Spawn()
	p := startExporter(t, "--path.procfs="+netnstest.LinkedProcfs(t, pid))
	got := infoSeries(p.scrape(t), "cbbs")
	want := map[string]bool{fmt.Sprintf("%s eth0 %d %s", host, pid, netnstest.NetnsLabel(t, pid)): true}
	if !maps.Equal(got, want) {
		t.Fatalf("series %v, want %v", got, want)
	}
}
