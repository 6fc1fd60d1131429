// Command ebpfcount is the worked example of an eBPF attacher driven by the
// vNIC change stream, as a Go program using vnicwatch directly (no
// psnic subprocess): it attaches a small counting program to the host end
// of every container veth, through a BPF link with TCX (kernel 6.6+), on
// both directions, and moves with the containers.
//
//	ebpfcount [--host-ifname GLOB]... [--interval 10s]
//
// For each "present" or "added" veth it attaches the program at ingress and
// egress; for "changed" it re-attaches only when the host end is another
// interface; for "removed" it prints the vNIC's final counts and detaches.
// Counts are kept per vNIC and summed per container (its container id, or
// its network namespace when it has none), so a container that moved from
// one veth to another keeps its total. On SIGTERM or SIGINT it prints every
// count, detaches everything and exits 0.
//
// Directions are the host end's: "ingress" is what the container sent,
// "egress" what was sent to it. The program lets every packet through
// (TCX_NEXT): it only counts.
//
// Output, one line each:
//
//	attached HOST ifindex=N netns=INO container_ifname=NAME
//	detached HOST ingress=PKTS/BYTES egress=PKTS/BYTES
//	counts HOST ingress=PKTS/BYTES egress=PKTS/BYTES
//	container KEY ingress=PKTS/BYTES egress=PKTS/BYTES vnics=N
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

type patterns []string

func (p *patterns) String() string     { return strings.Join(*p, ",") }
func (p *patterns) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var hostNames patterns
	flag.Var(&hostNames, "host-ifname", "only host ends matching this shell pattern (repeatable)")
	procfs := flag.String("path.procfs", "/proc", "procfs mountpoint")
	interval := flag.Duration("interval", 0, "print the counts this often (0: on detach and at exit only)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Stdout, *procfs, vnicwatch.Filter{Kinds: []string{"veth"}, HostIfnames: hostNames}, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "ebpfcount:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, procfs string, filter vnicwatch.Filter, interval time.Duration) error {
	if err := filter.Check(); err != nil {
		return err
	}
	counts, progs, err := load()
	if err != nil {
		return fmt.Errorf("loading the counting program: %w (needs root, or CAP_BPF and CAP_NET_ADMIN)", err)
	}
	defer counts.Close()
	defer progs[ingress].Close()
	defer progs[egress].Close()
	s, err := vnicwatch.Open(vnicwatch.Options{ProcfsPath: procfs,
		Report: func(err error) { fmt.Fprintln(os.Stderr, "ebpfcount:", err) }})
	if err != nil {
		return err
	}
	defer s.Close()

	a := &attacher{out: out, counts: counts, progs: progs, attached: map[vnicwatch.Key]*attachment{}, totals: map[string]*total{}}
	defer a.detachAll()
	if interval > 0 {
		go func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					a.print()
				}
			}
		}()
	}
	return s.Run(ctx, func(c vnicwatch.Change) {
		if c, ok := filter.Apply(c); ok {
			a.apply(c)
		}
	})
}

// Directions, as the map key numbers them.
const (
	ingress = 0
	egress  = 1
)

// key and value of the counts map.
type countKey struct {
	Ifindex uint32
	Dir     uint32
}

type countValue struct {
	Packets uint64
	Bytes   uint64
}

// __sk_buff field offsets (include/uapi/linux/bpf.h).
const (
	skbLen     = 0
	skbIfindex = 40
)

const tcxNext = -1 // TCX_NEXT: let the next program, or the stack, decide

// load creates the counts map and one program per direction. Each adds one
// packet and skb->len bytes to the entry of its (ifindex, direction); the
// entry is created at attach time, so a packet seen before that is not
// counted, and the program needs no update helper.
func load() (*ebpf.Map, [2]*ebpf.Program, error) {
	var progs [2]*ebpf.Program
	counts, err := ebpf.NewMap(&ebpf.MapSpec{Name: "vnic_counts", Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 8192})
	if err != nil {
		return nil, progs, err
	}
	for dir := range progs {
		progs[dir], err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         []string{"vnic_count_in", "vnic_count_out"}[dir],
			Type:         ebpf.SchedCLS,
			License:      "Apache-2.0",
			Instructions: program(counts.FD(), dir),
		})
		if err != nil {
			for _, p := range progs {
				if p != nil {
					p.Close()
				}
			}
			counts.Close()
			return nil, progs, err
		}
	}
	return counts, progs, nil
}

func program(mapFD, dir int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R7, asm.R1, skbLen, asm.Word),
		asm.LoadMem(asm.R2, asm.R1, skbIfindex, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.Word),
		asm.StoreImm(asm.RFP, -4, int64(dir), asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.AddAtomic.Mem(asm.R0, asm.R7, asm.DWord, 8),
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("out"),
		asm.Return(),
	}
}

type attachment struct {
	row   vnicwatch.Row
	links [2]link.Link
}

type total struct {
	counts [2]countValue
	vnics  int
}

// attacher is used by the stream's goroutine and the printing one.
type attacher struct {
	mu       sync.Mutex
	out      io.Writer
	counts   *ebpf.Map
	progs    [2]*ebpf.Program
	attached map[vnicwatch.Key]*attachment
	totals   map[string]*total // by container
}

func (a *attacher) apply(c vnicwatch.Change) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := vnicwatch.Key{Netns: c.Netns, Index: c.ContainerIfindex}
	switch c.Event {
	case vnicwatch.Present, vnicwatch.Added:
		a.attach(k, c.Row)
	case vnicwatch.Changed:
		if at := a.attached[k]; at != nil && at.row.HostIfindex == c.HostIfindex {
			at.row = c.Row // renamed, or another PID: the attachment stands
			return
		}
		a.detach(k)
		a.attach(k, c.Row)
	case vnicwatch.Removed:
		a.detach(k)
	}
}

func (a *attacher) attach(k vnicwatch.Key, r vnicwatch.Row) {
	if a.attached[k] != nil {
		a.detach(k)
	}
	at := &attachment{row: r}
	for dir, attach := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		if err := a.counts.Update(countKey{uint32(r.HostIfindex), uint32(dir)}, countValue{}, ebpf.UpdateAny); err != nil {
			fmt.Fprintf(os.Stderr, "ebpfcount: %s: %v\n", r.HostIfname, err)
			a.release(at)
			return
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: r.HostIfindex, Program: a.progs[dir], Attach: attach})
		if err != nil {
			// Gone meanwhile, most likely: its removal follows.
			fmt.Fprintf(os.Stderr, "ebpfcount: attaching to %s: %v\n", r.HostIfname, err)
			a.release(at)
			return
		}
		at.links[dir] = l
	}
	a.attached[k] = at
	t := a.total(r)
	t.vnics++
	fmt.Fprintf(a.out, "attached %s ifindex=%d netns=%d container_ifname=%s\n", r.HostIfname, r.HostIfindex, r.Netns, r.ContainerIfname)
}

// read returns the counts of a host interface.
func (a *attacher) read(ifindex int) [2]countValue {
	var v [2]countValue
	for dir := range v {
		_ = a.counts.Lookup(countKey{uint32(ifindex), uint32(dir)}, &v[dir])
	}
	return v
}

func (a *attacher) detach(k vnicwatch.Key) {
	at := a.attached[k]
	if at == nil {
		return
	}
	delete(a.attached, k)
	v := a.read(at.row.HostIfindex)
	t := a.total(at.row)
	for dir := range v {
		t.counts[dir].Packets += v[dir].Packets
		t.counts[dir].Bytes += v[dir].Bytes
	}
	a.release(at)
	fmt.Fprintf(a.out, "detached %s %s\n", at.row.HostIfname, format(v))
	fmt.Fprintf(a.out, "container %s %s vnics=%d\n", containerKey(at.row), format(t.counts), t.vnics)
}

// release closes an attachment's links (detaching the programs) and drops
// its entries.
func (a *attacher) release(at *attachment) {
	for dir, l := range at.links {
		if l != nil {
			l.Close()
		}
		_ = a.counts.Delete(countKey{uint32(at.row.HostIfindex), uint32(dir)})
	}
}

func (a *attacher) total(r vnicwatch.Row) *total {
	key := containerKey(r)
	t := a.totals[key]
	if t == nil {
		t = &total{}
		a.totals[key] = t
	}
	return t
}

// containerKey names a container: its id, or its namespace.
func containerKey(r vnicwatch.Row) string {
	if r.ContainerID != "" {
		return r.ContainerID
	}
	return "netns:" + strconv.FormatUint(r.Netns, 10)
}

// print prints the counts of every attached vNIC.
func (a *attacher) print() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, at := range a.sorted() {
		fmt.Fprintf(a.out, "counts %s %s\n", at.row.HostIfname, format(a.read(at.row.HostIfindex)))
	}
}

func (a *attacher) sorted() []*attachment {
	var all []*attachment
	for _, at := range a.attached {
		all = append(all, at)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].row.HostIfname < all[j].row.HostIfname })
	return all
}

// detachAll prints the final counts and detaches everything.
func (a *attacher) detachAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, at := range a.sorted() {
		a.detach(vnicwatch.Key{Netns: at.row.Netns, Index: at.row.ContainerIfindex})
	}
}

func format(v [2]countValue) string {
	return fmt.Sprintf("ingress=%d/%d egress=%d/%d", v[ingress].Packets, v[ingress].Bytes, v[egress].Packets, v[egress].Bytes)
}
