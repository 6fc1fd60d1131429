package collector

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// redirectPeer loads `r1 = ifindex; r2 = 0; call bpf_redirect_peer; exit`
// and attaches it at TCX ingress of host interface at, with a BPF link:
// every packet arriving there goes straight into the peer of ifindex's
// veth, as Cilium's and Calico's eBPF host routing do. Four instructions
// and two bpf(2) calls: no eBPF library in the exporter's module for them
// (examples/ebpfcount, a module of its own, uses cilium/ebpf).
func redirectPeer(t *testing.T, at, ifindex int) {
	t.Helper()
	const (
		mov64Imm       = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
		call           = 0x85 // BPF_JMP | BPF_CALL
		exit           = 0x95 // BPF_JMP | BPF_EXIT
		fnRedirectPeer = 155  // BPF_FUNC_redirect_peer
	)
	insn := func(code, dst uint8, imm int32) []byte {
		b := make([]byte, 8)
		b[0], b[1] = code, dst
		binary.NativeEndian.PutUint32(b[4:], uint32(imm))
		return b
	}
	insns := slices.Concat(insn(mov64Imm, 1, int32(ifindex)), insn(mov64Imm, 2, 0), insn(call, 0, fnRedirectPeer), insn(exit, 0, 0))
	license := []byte("GPL\x00")
	logBuf := make([]byte, 4096)
	load := make([]byte, 128) // union bpf_attr for BPF_PROG_LOAD; unused fields zero
	ne := binary.NativeEndian
	ne.PutUint32(load[0:], unix.BPF_PROG_TYPE_SCHED_CLS)
	ne.PutUint32(load[4:], uint32(len(insns)/8))
	ne.PutUint64(load[8:], uint64(uintptr(unsafe.Pointer(&insns[0]))))
	ne.PutUint64(load[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
	ne.PutUint32(load[24:], 1) // log_level
	ne.PutUint32(load[28:], uint32(len(logBuf)))
	ne.PutUint64(load[32:], uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
	copy(load[48:64], "cvx_redir_peer")
	prog, err := bpf(unix.BPF_PROG_LOAD, load)
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	if err != nil {
		t.Fatalf("loading the bpf_redirect_peer program: %v\n%s", err, bytes.TrimRight(logBuf, "\x00"))
	}
	t.Cleanup(func() { unix.Close(prog) })
	attach := make([]byte, 64) // union bpf_attr for BPF_LINK_CREATE
	ne.PutUint32(attach[0:], uint32(prog))
	ne.PutUint32(attach[4:], uint32(at)) // target_ifindex
	ne.PutUint32(attach[8:], unix.BPF_TCX_INGRESS)
	l, err := bpf(unix.BPF_LINK_CREATE, attach)
	if err != nil {
		t.Fatalf("attaching at TCX ingress of ifindex %d: %v", at, err)
	}
	t.Cleanup(func() { unix.Close(l) })
}

// bpf calls bpf(2) with attr and returns the file descriptor it made.
func bpf(cmd int, attr []byte) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
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
