package collector

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// redirectPeer loads `r1 = ifindex; r2 = 0; call bpf_redirect_peer; exit`
// and attaches it at TCX ingress of host interface at, with a BPF link:
// every packet arriving there goes straight into the peer of ifindex's
// veth, as Cilium's and Calico's eBPF host routing do.
func redirectPeer(t *testing.T, at, ifindex int) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "cvx_redir_peer",
		Type: ebpf.SchedCLS,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R1, int32(ifindex)),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirectPeer.Call(),
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		t.Fatalf("loading the bpf_redirect_peer program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := link.AttachTCX(link.TCXOptions{Interface: at, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		t.Fatalf("attaching at TCX ingress of ifindex %d: %v", at, err)
	}
	t.Cleanup(func() { l.Close() })
}

// Under eBPF host routing traffic into a container never crosses the
// host-side veth: the container end's counters show it, the host end's do
// not. The scenario: a neighbour's host veth redirects everything it
// receives into the container with bpf_redirect_peer; the neighbour sends
// known datagrams to the container.
func TestCountersUnderRedirectPeer(t *testing.T) {
	netnstest.RequireRoot(t)
	c := netnstest.NewNetns(t, "cvxc")
	hostC := "cvxc" + netnstest.Suffix()
	quietVeth(t, c, hostC, "eth0")
	nb := netnstest.NewNetns(t, "cvxn")
	hostN := "cvxn" + netnstest.Suffix()
	quietVeth(t, nb, hostN, "nb0")

	// The container's address is a /32 with no route: it cannot answer,
	// so nothing leaves it. The neighbour reaches it by a static neighbour
	// entry (no ARP: the redirect is one-way).
	subnet := fmt.Sprintf("169.254.%d", 1+rand.IntN(250))
	c.IP("addr", "add", subnet+".1/32", "dev", "eth0")
	nb.IP("addr", "add", subnet+".2/32", "dev", "nb0")
	nb.IP("route", "add", subnet+".1/32", "dev", "nb0")
	mac, err := exec.Command("ip", "netns", "exec", c.Name, "cat", "/sys/class/net/eth0/address").Output()
	if err != nil {
		t.Fatal(err)
	}
	nb.IP("neigh", "replace", subnet+".1", "lladdr", strings.TrimSpace(string(mac)), "dev", "nb0", "nud", "permanent")
	redirectPeer(t, ifindexOf(t, hostN), ifindexOf(t, hostC))

	col := newCounterCollector(t, netnstest.LinkedProcfs(t, c.Spawn(), nb.Spawn()))
	before := exported(t, col)
	const n, payload = 100, 60
	frame := uint64(14 + 20 + 8 + payload) // Ethernet, IPv4, UDP headers
	script := fmt.Sprintf(`for i in $(seq %d); do printf '%%0%dd' 0 >/dev/udp/%s.1/9; done`, n, payload, subnet)
	if out, err := exec.Command("ip", "netns", "exec", nb.Name, "bash", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("sending from the neighbour: %v: %s", err, out)
	}
	after := exported(t, col)
	delta := func(key string, field int) uint64 { return after[key].vals[field] - before[key].vals[field] }
	contRx, contRxPackets := delta("eth0", 0), delta("eth0", 2)
	hostTx, hostTxPackets := delta("host_"+hostC, 1), delta("host_"+hostC, 3)
	t.Logf("%d datagrams of %d bytes sent: container end received %d bytes (%d packets), its host-side veth transmitted %d bytes (%d packets)",
		n, frame, contRx, contRxPackets, hostTx, hostTxPackets)
	if contRxPackets < n || contRx < n*frame {
		t.Errorf("container end received %d bytes in %d packets, want at least %d in %d", contRx, contRxPackets, n*frame, n)
	}
	if hostTx >= n*frame/2 || hostTxPackets >= n/2 {
		t.Errorf("host end transmitted %d bytes in %d packets: it should be blind to redirected traffic", hostTx, hostTxPackets)
	}
}
