package collector

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/promslog"
	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// statFiles are the sysfs counters, in counterFields' order.
var statFiles = []string{"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped"}

func newCounterCollector(t *testing.T, root string) *Collector {
	t.Helper()
	netnstest.RequireRoot(t)
	r, err := vnic.New(vnic.Options{ProcfsPath: root, Counters: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return New(r, promslog.NewNopLogger())
}

// kernelCounters reads an interface's counters from sysfs: inside netns
// (through `ip netns exec`, which mounts that namespace's sysfs) or, for
// an empty netns, in the host.
func kernelCounters(t *testing.T, netns, ifname string) []uint64 {
	t.Helper()
	script := "cd /sys/class/net/" + ifname + "/statistics && cat " + strings.Join(statFiles, " ")
	var out []byte
	var err error
	if netns == "" {
		out, err = exec.Command("sh", "-c", script).Output()
	} else {
		out, err = exec.Command("ip", "netns", "exec", netns, "sh", "-c", script).Output()
	}
	if err != nil {
		t.Fatalf("reading counters of %s in %q: %v", ifname, netns, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != len(statFiles) {
		t.Fatalf("counters of %s in %q: %q", ifname, netns, out)
	}
	vals := make([]uint64, len(fields))
	for i, f := range fields {
		if vals[i], err = strconv.ParseUint(f, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	return vals
}

// exported gathers col and returns, per family prefix ("", "host_",
// "parent_") and interface name (container_ifname for "", host_ifname
// otherwise), the eight counters in counterFields' order, and each
// series' label set.
type exportedIf struct {
	vals   []uint64
	labels map[string]string
}

// gatherPedantic gathers col through a pedantic registry, which checks
// every metric against its description.
func gatherPedantic(t *testing.T, col *Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func exported(t *testing.T, col *Collector) map[string]exportedIf {
	t.Helper()
	mfs := gatherPedantic(t, col)
	got := map[string]exportedIf{}
	for _, mf := range mfs {
		for _, prefix := range []string{"", "host_", "parent_"} {
			for i, f := range counterFields {
				if mf.GetName() != namespace+"_"+prefix+f.name+"_total" {
					continue
				}
				if mf.GetType() != dto.MetricType_COUNTER {
					t.Errorf("%s is a %v", mf.GetName(), mf.GetType())
				}
				for _, m := range mf.GetMetric() {
					labels := map[string]string{}
					for _, l := range m.GetLabel() {
						labels[l.GetName()] = l.GetValue()
					}
					name := labels["container_ifname"]
					if prefix != "" {
						name = labels["host_ifname"]
					}
					key := prefix + name
					e := got[key]
					if e.vals == nil {
						e = exportedIf{vals: make([]uint64, len(counterFields)), labels: labels}
					}
					e.vals[i] = uint64(m.GetCounter().GetValue())
					got[key] = e
				}
			}
		}
	}
	return got
}

// quiet turns IPv6 off on an interface, in netns or the host, before it
// goes up: no router solicitation or MLD report then moves its counters.
// A kernel without IPv6 has no such noise to turn off.
func quiet(t *testing.T, netns, ifname string) {
	t.Helper()
	knob := "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6"
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		return
	}
	if netns == "" {
		if err := os.WriteFile(knob, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	// /proc/sys/net is the namespace's for a process inside it.
	if out, err := exec.Command("ip", "netns", "exec", netns, "sh", "-c", "echo 1 >"+knob).CombinedOutput(); err != nil {
		t.Fatalf("%s in %s: %v: %s", knob, netns, err, out)
	}
}

// quietVeth makes a veth pair like Netns.Veth, with IPv6 off on both ends.
func quietVeth(t *testing.T, ns *netnstest.Netns, host, cont string) {
	t.Helper()
	netnstest.IP(t, "link", "add", host, "type", "veth", "peer", "name", cont, "netns", ns.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	quiet(t, "", host)
	quiet(t, ns.Name, cont)
	netnstest.IP(t, "link", "set", host, "up")
	ns.IP("link", "set", cont, "up")
}

// sendUDP sends n datagrams of payload bytes from inside netns out of
// ifname, to a 169.254 address whose neighbour entry is a MAC nobody has:
// the far end counts them and drops them, nothing is forwarded anywhere.
func sendUDP(t *testing.T, netns, ifname string, n, payload int) {
	t.Helper()
	subnet := fmt.Sprintf("169.254.%d", 1+rand.IntN(250))
	netnstest.IP(t, "-n", netns, "addr", "add", subnet+".1/24", "dev", ifname)
	netnstest.IP(t, "-n", netns, "neigh", "replace", subnet+".2", "lladdr", "02:00:00:00:00:01", "dev", ifname, "nud", "permanent")
	script := fmt.Sprintf(`for i in $(seq %d); do printf '%%0%dd' 0 >/dev/udp/%s.2/9; done`, n, payload, subnet)
	untilSent(t, netns, ifname, n, func() {
		if out, err := exec.Command("ip", "netns", "exec", netns, "bash", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("sending from %s in %s: %v: %s", ifname, netns, err, out)
		}
	})
}

// sendFrames sends n raw Ethernet frames of size bytes (a local
// experimental ethertype, to a MAC nobody has) out of host interface
// ifname, so that its veth peer receives them and drops them.
func sendFrames(t *testing.T, ifname string, n, size int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	frame := make([]byte, size)
	copy(frame, []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x03, 0x88, 0xb5})
	addr := &unix.SockaddrLinklayer{Ifindex: ifindexOf(t, ifname), Halen: 6}
	copy(addr.Addr[:], frame[:6])
	untilSent(t, "", ifname, n, func() {
		for i := 0; i < n; i++ {
			if err := unix.Sendto(fd, frame, 0, addr); err != nil {
				t.Fatalf("sending on %s: %v", ifname, err)
			}
		}
	})
}

// untilSent calls send, which sends n packets out of ifname (inside netns,
// or in the host for ""), and returns once the kernel has counted n more
// sent (tx_packets), calling send again when it has not within a second:
// an interface just brought up drops what it is given, uncounted, until
// the kernel attaches its queue on the carrier-on event, which comes
// asynchronously after `ip link set up` returned. Tests expect at least
// what they sent, so a second batch does no harm.
func untilSent(t *testing.T, netns, ifname string, n int, send func()) {
	t.Helper()
	want := kernelCounters(t, netns, ifname)[3] + uint64(n) // [3]: tx_packets
	for deadline := time.Now().Add(20 * time.Second); ; {
		send()
		for again := time.Now().Add(time.Second); time.Now().Before(again); time.Sleep(10 * time.Millisecond) {
			if kernelCounters(t, netns, ifname)[3] >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sending %d packets out of %s in %q: not counted sent in 20 s of trying", n, ifname, netns)
		}
	}
}

// Every exported counter equals the kernel's, for: two veths in one
// namespace, a veth renamed on both ends, and a macvlan with its host
// parent. With the interfaces quiet (IPv6 off, no addresses in the host)
// the kernel is read before and after the scrape; the three must agree.
func TestCountersExact(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.NewNetns(t, "cvxa")
	hostA1, hostA2 := "cvxa"+netnstest.Suffix(), "cvxb"+netnstest.Suffix()
	quietVeth(t, a, hostA1, "eth0")
	quietVeth(t, a, hostA2, "net1")

	b := netnstest.NewNetns(t, "cvxr")
	hostB := "cvxr" + netnstest.Suffix()
	quietVeth(t, b, hostB, "eth0")
	renamed := "cvxn" + netnstest.Suffix()
	netnstest.IP(t, "link", "set", hostB, "down")
	netnstest.IP(t, "link", "set", hostB, "name", renamed)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", renamed).Run() })
	netnstest.IP(t, "link", "set", renamed, "up")
	b.IP("link", "set", "eth0", "down")
	b.IP("link", "set", "eth0", "name", "ren0")
	b.IP("link", "set", "ren0", "up")

	m := netnstest.NewNetns(t, "cvxm")
	bridge := "cvxbr" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	quiet(t, "", bridge)
	netnstest.IP(t, "link", "set", bridge, "up")
	mv := "cvxm" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", mv, "link", bridge, "type", "macvlan", "mode", "bridge")
	netnstest.IP(t, "link", "set", mv, "netns", m.Name)
	m.IP("link", "set", mv, "name", "mv0")
	quiet(t, m.Name, "mv0")
	m.IP("link", "set", "mv0", "up")

	// Traffic in both directions, a different amount on each interface,
	// so that a counter read from the wrong interface or field shows.
	sendUDP(t, a.Name, "eth0", 11, 100)
	sendUDP(t, a.Name, "net1", 13, 200)
	sendUDP(t, b.Name, "ren0", 17, 300)
	sendUDP(t, m.Name, "mv0", 19, 400)
	sendFrames(t, hostA1, 5, 60)
	sendFrames(t, hostA2, 7, 90)
	sendFrames(t, renamed, 3, 120)

	pids := []int{a.Spawn(), b.Spawn(), m.Spawn()}
	col := newCounterCollector(t, netnstest.LinkedProcfs(t, pids...))

	type end struct {
		key, netns, ifname string // key: exported's; netns "" for the host
		minTx, minRx       uint64 // packets the test sent each way
	}
	ends := []end{
		{"eth0", a.Name, "eth0", 11, 5}, {"net1", a.Name, "net1", 13, 7},
		{"ren0", b.Name, "ren0", 17, 3}, {"mv0", m.Name, "mv0", 19, 0},
		{"host_" + hostA1, "", hostA1, 5, 11}, {"host_" + hostA2, "", hostA2, 7, 13},
		{"host_" + renamed, "", renamed, 3, 17}, {"parent_" + bridge, "", bridge, 19, 0},
	}
	var last string
	defer func() {
		if t.Failed() {
			t.Log("last difference: ", last)
		}
	}()
	netnstest.Eventually(t, 20*time.Second, "exported counters equal to the kernel's", func() bool {
		before := map[string][]uint64{}
		for _, e := range ends {
			before[e.key] = kernelCounters(t, e.netns, e.ifname)
		}
		got := exported(t, col)
		last = ""
		for _, e := range ends {
			after := kernelCounters(t, e.netns, e.ifname)
			x, ok := got[e.key]
			switch {
			case !ok:
				last += fmt.Sprintf("%s: not exported; ", e.key)
			case fmt.Sprint(before[e.key]) != fmt.Sprint(after):
				last += fmt.Sprintf("%s: moved during the scrape; ", e.key)
			case fmt.Sprint(x.vals) != fmt.Sprint(after):
				last += fmt.Sprintf("%s: exported %v, kernel %v; ", e.key, x.vals, after)
			}
		}
		return last == ""
	})
	got := exported(t, col)
	for _, e := range ends {
		v := got[e.key].vals
		if v[3] < e.minTx || v[2] < e.minRx { // tx_packets, rx_packets
			t.Errorf("%s: %d packets sent, %d received; the test sent %d and %d", e.key, v[3], v[2], e.minTx, e.minRx)
		}
	}
	// Every vNIC's two ends, and the parent once, nothing else: the
	// macvlan's host end is its parent, never in the host_ family.
	if len(got) != len(ends) {
		t.Errorf("exported %d interfaces, want %d: %v", len(got), len(ends), got)
	}
	nsA := netnstest.NetnsLabel(t, pids[0])
	want := map[string]string{"netns": nsA, "container_ifname": "eth0", "container_ifindex": nsIfindex(t, a.Name, "eth0"),
		"host_ifname": hostA1, "host_ifindex": hostIfindex(t, hostA1)}
	if fmt.Sprint(got["host_"+hostA1].labels) != fmt.Sprint(want) || fmt.Sprint(got["eth0"].labels) != fmt.Sprint(want) {
		t.Errorf("labels: container end %v, host end %v; want %v", got["eth0"].labels, got["host_"+hostA1].labels, want)
	}
	t.Logf("%d interfaces exact (%d container ends, %d host ends, 1 parent), %d counters each", len(ends), 4, 3, len(counterFields))
}

// With the cache on, every scrape still reads fresh counters: traffic
// sent between two scrapes shows in the second, on both ends.
func TestCountersFreshEveryScrape(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.NewNetns(t, "cvxf")
	host := "cvxf" + netnstest.Suffix()
	quietVeth(t, a, host, "eth0")
	col := newCounterCollector(t, netnstest.LinkedProcfs(t, a.Spawn()))
	for i := 0; i < 3; i++ {
		received := kernelCounters(t, a.Name, "eth0")[2] + 7
		before := exported(t, col)
		sendFrames(t, host, 7, 100)
		// The container end may count them in a softirq (NAPI), after the
		// sender did: each scrape must show what the kernel shows then.
		netnstest.Eventually(t, 20*time.Second, "the kernel to count 7 frames received on eth0", func() bool {
			return kernelCounters(t, a.Name, "eth0")[2] >= received
		})
		after := exported(t, col)
		cont, hostEnd := after["eth0"].vals[2]-before["eth0"].vals[2], after["host_"+host].vals[3]-before["host_"+host].vals[3]
		if cont < 7 || hostEnd < 7 {
			t.Fatalf("scrape %d: 7 frames sent, container end received %d more, host end sent %d more", i, cont, hostEnd)
		}
	}
}

// nsIfindex reads an interface's ifindex inside netns from its sysfs (ip's
// own output may carry a warning about the peer's namespace).
func nsIfindex(t *testing.T, netns, ifname string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", netns, "cat", "/sys/class/net/"+ifname+"/ifindex").Output()
	if err != nil {
		t.Fatalf("ifindex of %s in %s: %v", ifname, netns, err)
	}
	return strings.TrimSpace(string(out))
}

func hostIfindex(t *testing.T, ifname string) string {
	t.Helper()
	return strconv.Itoa(ifindexOf(t, ifname))
}

func ifindexOf(t *testing.T, ifname string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}

// sysfsState reads an interface's MTU, operstate and carrier from sysfs,
// as node_exporter does: inside netns, or in the host for "". The carrier
// of an interface that is down is unreadable there: "".
func sysfsState(t *testing.T, netns, ifname string) (mtu, operstate, carrier string) {
	t.Helper()
	script := "cd /sys/class/net/" + ifname + " && cat mtu operstate && (cat carrier 2>/dev/null || echo -)"
	cmd := exec.Command("sh", "-c", script)
	if netns != "" {
		cmd = exec.Command("ip", "netns", "exec", netns, "sh", "-c", script)
	}
	out, err := cmd.Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 3 {
		t.Fatalf("state of %s in %q: %v %q", ifname, netns, err, out)
	}
	if f[2] == "-" {
		f[2] = ""
	}
	return f[0], f[1], f[2]
}

// The state gauges of both ends are what sysfs (and so node_exporter)
// says: a different MTU on each end of a veth, a container end whose host
// peer is down (no carrier, operstate lowerlayerdown or down), and a
// macvlan and its parent.
func TestLinkStateExact(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.NewNetns(t, "cvsa")
	hostA := "cvsa" + netnstest.Suffix()
	quietVeth(t, a, hostA, "eth0")
	netnstest.IP(t, "link", "set", hostA, "mtu", "9000")
	a.IP("link", "set", "eth0", "mtu", "1280")

	b := netnstest.NewNetns(t, "cvsb")
	hostB := "cvsb" + netnstest.Suffix()
	quietVeth(t, b, hostB, "eth0")
	netnstest.IP(t, "link", "set", hostB, "down")

	m := netnstest.NewNetns(t, "cvsm")
	bridge := "cvsbr" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", bridge, "mtu", "1400", "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	netnstest.IP(t, "link", "set", bridge, "up")
	mv := "cvsm" + netnstest.Suffix()
	netnstest.IP(t, "link", "add", mv, "link", bridge, "type", "macvlan", "mode", "bridge")
	netnstest.IP(t, "link", "set", mv, "netns", m.Name)
	m.IP("link", "set", mv, "name", "mv0")
	m.IP("link", "set", "mv0", "up")

	ends := []struct{ family, key, netns, ifname string }{
		{"container_vnic", a.Name, a.Name, "eth0"},
		{"container_vnic_host", hostA, "", hostA},
		{"container_vnic", b.Name, b.Name, "eth0"},
		{"container_vnic_host", hostB, "", hostB},
		{"container_vnic", m.Name, m.Name, "mv0"},
		{"container_vnic_parent", bridge, "", bridge},
	}
	// The kernel sets operstate from carrier a moment later (linkwatch):
	// wait until every end's agree.
	netnstest.Eventually(t, 10*time.Second, "operstates to follow carriers", func() bool {
		for _, e := range ends {
			_, operstate, carrier := sysfsState(t, e.netns, e.ifname)
			// A bridge without ports stays "unknown" for good.
			if (carrier == "1") != (operstate == "up" || operstate == "unknown") {
				return false
			}
		}
		return true
	})
	col := newCounterCollector(t, netnstest.LinkedProcfs(t, a.Spawn(), b.Spawn(), m.Spawn()))
	got := map[string]float64{} // family{ifname} -> value
	for _, mf := range gatherPedantic(t, col) {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			ifname := labels["host_ifname"]
			if !strings.Contains(mf.GetName(), "_host_") && !strings.Contains(mf.GetName(), "_parent_") {
				ifname = labels["netns"] + "/" + labels["container_ifname"]
			}
			got[mf.GetName()+"{"+ifname+"}"] = m.GetGauge().GetValue()
		}
	}
	for _, tc := range ends {
		key := tc.key
		if tc.family == "container_vnic" {
			key = nsInode(t, tc.netns) + "/" + tc.ifname
		}
		mtu, operstate, carrier := sysfsState(t, tc.netns, tc.ifname)
		up := "0"
		if operstate == "up" {
			up = "1"
		}
		check := func(suffix, want string) {
			v, ok := got[tc.family+"_"+suffix+"{"+key+"}"]
			if !ok {
				t.Errorf("no %s_%s for %s", tc.family, suffix, key)
				return
			}
			if want != "" && strconv.FormatFloat(v, 'f', -1, 64) != want {
				t.Errorf("%s_%s{%s} = %v, sysfs says %s", tc.family, suffix, key, v, want)
			}
		}
		check("mtu_bytes", mtu)
		check("up", up)
		check("carrier", carrier) // sysfs has no carrier for a link that is down: then only present
	}
	if v := got["container_vnic_carrier{"+nsInode(t, b.Name)+"/eth0}"]; v != 0 {
		t.Errorf("the container end of a veth whose host end is down has carrier %v, want 0", v)
	}
}

// nsInode is the inode of a named network namespace, as the netns label
// gives it.
func nsInode(t *testing.T, name string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(st.Ino, 10)
}
