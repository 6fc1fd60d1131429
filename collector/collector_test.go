package collector

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

func newCollector(t *testing.T, root string) *Collector {
	t.Helper()
	netnstest.RequireRoot(t)
	r, err := vnic.New(vnic.Options{ProcfsPath: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return New(r, promslog.NewNopLogger())
}

const selfMetricsHelp = `
# HELP container_vnic_namespaces Network namespaces other than the host's held by processes, seen in the last scrape.
# TYPE container_vnic_namespaces gauge
# HELP container_vnic_namespaces_without_vnic Network namespaces seen in the last scrape that have no interface paired with a host interface.
# TYPE container_vnic_namespaces_without_vnic gauge
# HELP container_vnic_processes_skipped Processes whose network namespace could not be read in the last scrape, by cause: no_cap_sys_ptrace (the exporter lacks CAP_SYS_PTRACE: namespaces are missing), protected (refused even with it: no capability helps), procfs, process_vanished (normal churn).
# TYPE container_vnic_processes_skipped gauge
# HELP container_vnic_scrape_errors Container network namespaces found but not resolved in the last scrape, by cause.
# TYPE container_vnic_scrape_errors gauge
# HELP container_vnic_scrape_success 1 if every container network namespace found was resolved, 0 if the walk failed, any namespace could not be resolved, or processes were skipped for lack of CAP_SYS_PTRACE.
# TYPE container_vnic_scrape_success gauge
`

const infoHelp = `# HELP container_vnic_info A container-side network interface and the host interface it is paired with (value is always 1).
# TYPE container_vnic_info gauge
`

// The hard cases on real namespaces: two veths in one namespace, many
// processes sharing a namespace, a lo-only namespace, a container-to-
// container veth whose indexes mirror a host pair exactly, a macvlan, a
// host process and a PID that no longer exists.
func TestCollectorHardCases(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.NewNetns(t, "cvca")
	hostIdx := 20000 + rand.IntN(30000)
	hostA := "cvca" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", hostA, "index", strconv.Itoa(hostIdx), "type", "veth",
		"peer", "name", "eth0", "netns", a.Name, "index", "7")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostA).Run() })
	hostA2 := "cvcb" + netnstest.Suffix()
	a.Veth(hostA2, "net1")
	pidsA := []int{a.Spawn(), a.Spawn(), a.Spawn()}

	// b:7 <-> c:hostIdx mirrors host:hostIdx <-> a:7.
	b := netnstest.NewNetns(t, "cvcb")
	c := netnstest.NewNetns(t, "cvcc")
	netnstest.IP(t, "link", "add", "xb", "netns", b.Name, "index", "7", "type", "veth",
		"peer", "name", "xc", "netns", c.Name, "index", strconv.Itoa(hostIdx))
	lo := netnstest.NewNetns(t, "cvcl")

	m := netnstest.NewNetns(t, "cvcm")
	bridge := "cvbr" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	mv := "cvmv" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", mv, "link", bridge, "type", "macvlan", "mode", "bridge")
	netnstest.IP(t, "link", "set", mv, "netns", m.Name)
	m.IP("link", "set", mv, "name", "mv0")

	pidB, pidC, pidLo, pidM := b.Spawn(), c.Spawn(), lo.Spawn(), m.Spawn()
	pidHost := netnstest.Spawn(t, "")
	gone := 4194000 + rand.IntN(300) // above pid_max's default: never a live PID here
	root := netnstest.LinkedProcfs(t, append(pidsA, pidB, pidC, pidLo, pidM, pidHost, gone)...)
	col := newCollector(t, root)

	lowestA := min(pidsA[0], pidsA[1], pidsA[2])
	nsA, nsM := netnstest.NetnsLabel(t, lowestA), netnstest.NetnsLabel(t, pidM)
	info := []string{
		fmt.Sprintf(`container_vnic_info{container_ifname="eth0",host_ifname=%q,netns=%q,pid="%d"} 1`, hostA, nsA, lowestA),
		fmt.Sprintf(`container_vnic_info{container_ifname="net1",host_ifname=%q,netns=%q,pid="%d"} 1`, hostA2, nsA, lowestA),
	}
	parent := fmt.Sprintf(`# HELP container_vnic_parent_info A container-side interface stacked on a host interface (macvlan, ipvlan, vlan...): the host interface is its parent, not its peer (value is always 1).
# TYPE container_vnic_parent_info gauge
container_vnic_parent_info{container_ifname="mv0",host_ifname=%q,kind="macvlan",netns=%q,pid="%d"} 1
`, bridge, nsM, pidM)
	want := infoHelp + strings.Join(info, "\n") + "\n" + parent + selfMetricsHelp + `
container_vnic_namespaces 5
container_vnic_namespaces_without_vnic 3
container_vnic_processes_skipped{cause="no_cap_sys_ptrace"} 0
container_vnic_processes_skipped{cause="process_vanished"} 1
container_vnic_processes_skipped{cause="procfs"} 0
container_vnic_processes_skipped{cause="protected"} 0
container_vnic_scrape_errors{cause="netlink"} 0
container_vnic_scrape_errors{cause="permission_denied"} 0
container_vnic_scrape_errors{cause="procfs"} 0
container_vnic_scrape_success 1
`
	names := []string{"container_vnic_info", "container_vnic_parent_info", "container_vnic_namespaces", "container_vnic_namespaces_without_vnic",
		"container_vnic_processes_skipped", "container_vnic_scrape_errors", "container_vnic_scrape_success"}
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(col, "container_vnic_scrape_duration_seconds"); n != 1 {
		t.Fatalf("scrape_duration_seconds: %d series, want 1", n)
	}
}

// Between two scrapes: a namespace appears, one is renamed on both sides,
// one disappears. Each shows on the very next scrape.
func TestCollectorFollowsChanges(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.NewNetns(t, "cvca")
	hostA := "cvca" + netnstest.Suffix()
	a.Veth(hostA, "eth0")
	pidA := a.Spawn()
	b := netnstest.NewNetns(t, "cvcb")
	hostB := "cvcb" + netnstest.Suffix()
	b.Veth(hostB, "eth0")
	pidB := b.Spawn()
	root := netnstest.LinkedProcfs(t, pidA)
	col := newCollector(t, root)
	series := func(pid int, ns, host, cont string) string {
		return fmt.Sprintf(`container_vnic_info{container_ifname=%q,host_ifname=%q,netns=%q,pid="%d"} 1`, cont, host, ns, pid)
	}
	check := func(lines ...string) {
		t.Helper()
		if err := testutil.CollectAndCompare(col, strings.NewReader(infoHelp+strings.Join(lines, "\n")+"\n"), "container_vnic_info"); err != nil {
			t.Fatal(err)
		}
	}
	nsA, nsB := netnstest.NetnsLabel(t, pidA), netnstest.NetnsLabel(t, pidB)
	check(series(pidA, nsA, hostA, "eth0"))

	// b's process appears in procfs.
	if err := os.Symlink(fmt.Sprintf("/proc/%d", pidB), filepath.Join(root, strconv.Itoa(pidB))); err != nil {
		t.Fatal(err)
	}
	check(series(pidA, nsA, hostA, "eth0"), series(pidB, nsB, hostB, "eth0"))

	// Rename both ends of a's pair.
	renamed := "cvcr" + netnstest.Suffix()
	netnstest.IP(t, "link", "set", hostA, "down")
	netnstest.IP(t, "link", "set", hostA, "name", renamed)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", renamed).Run() })
	a.IP("link", "set", "eth0", "down")
	a.IP("link", "set", "eth0", "name", "net9")
	check(series(pidA, nsA, renamed, "net9"), series(pidB, nsB, hostB, "eth0"))

	// b's veth is deleted: its namespace stays, without a vNIC.
	netnstest.IP(t, "link", "del", hostB)
	check(series(pidA, nsA, renamed, "net9"))
}

// Ten concurrent scrapes return the same, correct exposition.
func TestCollectorConcurrentScrapes(t *testing.T) {
	netnstest.RequireRoot(t)
	var pids []int
	var want []string
	for i := 0; i < 3; i++ {
		ns := netnstest.NewNetns(t, "cvcp")
		host := "cvcp" + netnstest.Suffix()
		ns.Veth(host, "eth0")
		pid := ns.Spawn()
		pids = append(pids, pid)
		want = append(want, fmt.Sprintf(`container_vnic_info{container_ifname="eth0",host_ifname=%q,netns=%q,pid="%d"} 1`,
			host, netnstest.NetnsLabel(t, pid), pid))
	}
	col := newCollector(t, netnstest.LinkedProcfs(t, pids...))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- testutil.GatherAndCompare(reg, strings.NewReader(infoHelp+strings.Join(want, "\n")+"\n"), "container_vnic_info")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCollectorLint(t *testing.T) {
	netnstest.RequireRoot(t)
	col := newCollector(t, netnstest.LinkedProcfs(t, os.Getpid())) // a process, or the walk fails
	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Legal but unusual interface names (dots, dashes, a quote, a backslash,
// UTF-8, 15 bytes) come out exactly, backslash included, and the
// exposition stays valid.
func TestCollectorUnusualNames(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvcu")
	host := "c.v-" + netnstest.Suffix() + "_x.y-" // 15 bytes
	ns.Veth(host, "eth0")
	container := `q"b\é.-_` + "9"
	ns.IP("link", "set", "eth0", "down")
	ns.IP("link", "set", "eth0", "name", container)
	pid := ns.Spawn()
	col := newCollector(t, netnstest.LinkedProcfs(t, pid))

	want := infoHelp + fmt.Sprintf(`container_vnic_info{container_ifname="q\"b\\é.-_9",host_ifname=%q,netns=%q,pid="%d"} 1`+"\n",
		host, netnstest.NetnsLabel(t, pid), pid)
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_info"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// A name that is not UTF-8 (legal: any byte but '/', ':' and whitespace)
// must not crash the exporter: its invalid bytes come out as :NN.
func TestCollectorNonUTF8Name(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvc8")
	host := "cvc8" + netnstest.Suffix()
	ns.Veth(host, "eth0")
	ns.IP("link", "set", "eth0", "down")
	ns.IP("link", "set", "eth0", "name", "e\xff")
	pid := ns.Spawn()
	col := newCollector(t, netnstest.LinkedProcfs(t, pid))
	want := infoHelp + fmt.Sprintf(`container_vnic_info{container_ifname="e:ff",host_ifname=%q,netns=%q,pid="%d"} 1`+"\n",
		host, netnstest.NetnsLabel(t, pid), pid)
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_info"); err != nil {
		t.Fatal(err)
	}
}
