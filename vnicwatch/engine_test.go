package vnicwatch

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/procevents"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

const (
	hostIno  = 1
	hostNSID = 0 // the id the host gives itself
)

// fake is a host in memory: namespaces by inode, each with an id and
// vNICs, and which namespace each process is in. It counts the work asked
// of it, to prove the engine's work does not grow with the host.
type fake struct {
	nsid  map[uint64]int
	vnics map[uint64][]vnic.VNIC
	procs map[int]uint64 // pid -> netns inode
	calls map[string]int
	left  vnic.Snapshot // Failed, Blind and Walk for ResolveAll to say
}

func newFake() *fake {
	return &fake{nsid: map[uint64]int{}, vnics: map[uint64][]vnic.VNIC{}, procs: map[int]uint64{}, calls: map[string]int{}}
}

func (f *fake) processes() map[uint64][]int {
	m := map[uint64][]int{}
	for pid, ino := range f.procs {
		if ino != hostIno {
			m[ino] = append(m[ino], pid)
		}
	}
	for _, pids := range m {
		sort.Ints(pids)
	}
	return m
}

func (f *fake) ResolveAll() (vnic.Snapshot, error) {
	f.calls["all"]++
	f.calls["walk"]++
	procs := f.processes()
	s := vnic.Snapshot{Processes: procs, Failed: f.left.Failed, Blind: f.left.Blind, Walk: f.left.Walk}
	for ino, pids := range procs {
		s.Namespaces = append(s.Namespaces, vnic.Netns{Inode: ino, PID: pids[0], VNICs: f.vnics[ino]})
	}
	return s, nil
}

func (f *fake) NSIDs() map[uint64]int { return f.nsid }

func (f *fake) ResolveNamespace(pid int, inode uint64) (int, []vnic.VNIC, error) {
	f.calls["namespace"]++
	if f.procs[pid] != inode {
		return 0, nil, &vnic.Error{PID: pid, Cause: vnic.CauseVanished}
	}
	return f.nsid[inode], f.vnics[inode], nil
}

func (f *fake) NetnsOf(pid int) (uint64, error) {
	f.calls["readlink"]++
	if ino, ok := f.procs[pid]; ok {
		return ino, nil
	}
	return 0, &vnic.Error{PID: pid, Cause: vnic.CauseNoProcess}
}

// Oldest: in the fake, PIDs are handed out in start order.
func (f *fake) Oldest(pids []int) int {
	f.calls["oldest"]++
	return slices.Min(pids)
}

func (f *fake) IsHost(from int) bool { return from == hostNSID || from == vnic.NoNSID }
func (f *fake) HostNetns() uint64    { return hostIno }

func (f *fake) Identity(_ uint64, pid int) cgroupid.Identity {
	return cgroupid.Identity{Runtime: "podman", ContainerID: string(rune('a' + pid%26))}
}

func veth(index int, container, host string, hostIndex int) vnic.VNIC {
	return vnic.VNIC{ContainerIfname: container, ContainerIfindex: index, HostIfname: host, HostIfindex: hostIndex, Kind: "veth"}
}

// fleet is a fake host with namespaces 100+i (id i+1), each with process
// 1000+i and veth "h<i>" (host ifindex 500+i), and host processes 1..9.
func fleet(n int) *fake {
	f := newFake()
	for pid := 1; pid < 10; pid++ {
		f.procs[pid] = hostIno
	}
	for i := 0; i < n; i++ {
		ino := uint64(100 + i)
		f.nsid[ino] = i + 1
		f.vnics[ino] = []vnic.VNIC{veth(2, "eth0", "h"+string(rune('a'+i%26)), 500+i)}
		f.procs[1000+i] = ino
	}
	return f
}

func started(t *testing.T, f *fake) *engine {
	t.Helper()
	e := newEngine(f, func(err error) { t.Errorf("reported: %v", err) })
	if err := e.full(); err != nil {
		t.Fatal(err)
	}
	e.take()
	f.calls = map[string]int{}
	return e
}

func events(cs []Change) []string {
	var out []string
	for _, c := range cs {
		s := string(c.Event) + " " + c.HostIfname
		if c.Old != nil && c.Old.PID != c.PID {
			s += " pid"
		}
		out = append(out, s)
	}
	return out
}

func TestEngineStart(t *testing.T) {
	f := fleet(3)
	e := newEngine(f, func(err error) { t.Error(err) })
	if err := e.full(); err != nil {
		t.Fatal(err)
	}
	got := e.take()
	if want := []string{"added ha", "added hb", "added hc"}; !reflect.DeepEqual(events(got), want) {
		t.Fatalf("got %v, want %v", events(got), want)
	}
	if r := got[1]; r.PID != 1001 || r.Netns != 101 || r.Runtime != "podman" || r.ContainerID != "n" {
		t.Fatalf("row %+v: want pid 1001, netns 101 and the identity of pid 1001", r)
	}
}

// What each event costs, whatever the number of namespaces: the calls it
// makes to the kernel, and the changes it yields.
func TestEngineEvents(t *testing.T) {
	for _, n := range []int{3, 1000} {
		for _, tc := range []struct {
			name  string
			setup func(f *fake)
			apply func(e *engine)
			want  []string
			calls map[string]int
		}{
			{"exec on the host", nil, func(e *engine) { e.process(procevents.Event{Type: procevents.Exec, PID: 5, TGID: 5}) },
				nil, map[string]int{"readlink": 1}},
			{"exec in a known namespace", func(f *fake) { f.procs[3000] = 100 },
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exec, PID: 3000, TGID: 3000}) },
				nil, map[string]int{"readlink": 1}},
			{"fork on the host", nil,
				func(e *engine) { e.process(procevents.Event{Type: procevents.Fork, Parent: 5, PID: 6, TGID: 6}) },
				nil, map[string]int{}},
			{"a thread exits", nil,
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exit, PID: 7002, TGID: 1000}) },
				nil, map[string]int{}},
			{"host process exits", nil,
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exit, PID: 5, TGID: 5}) },
				nil, map[string]int{}},
			// Links made first, then a process joins: the namespace is
			// resolved, and only it.
			{"a process brings a new namespace", func(f *fake) {
				f.procs[4000] = 9000
				f.nsid[9000] = 77
				f.vnics[9000] = []vnic.VNIC{veth(2, "eth0", "new", 900)}
			}, func(e *engine) {
				e.process(procevents.Event{Type: procevents.Exec, PID: 4000, TGID: 4000})
				e.flush()
			}, []string{"added new"}, map[string]int{"readlink": 1, "namespace": 1}},
			{"a link event in a namespace", func(f *fake) { f.vnics[101][0].ContainerIfname = "net0" }, func(e *engine) {
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: 2})
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: 2}) // coalesced
				e.flush()
			}, []string{"changed hb"}, map[string]int{"namespace": 1}},
			{"host end renamed", func(f *fake) { f.vnics[102][0].HostIfname = "renamed" }, func(e *engine) {
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: hostNSID,
					Link: vnic.Link{Index: 502, Name: "renamed", Kind: "veth", PeerNSID: 3, PeerIndex: 2}})
				e.flush()
			}, []string{"changed renamed"}, map[string]int{"namespace": 1}},
			{"a host link of no container", nil, func(e *engine) {
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: vnic.NoNSID, Link: vnic.Link{Index: 7, Name: "eth9", PeerNSID: vnic.NoNSID}})
				e.flush()
			}, nil, map[string]int{}},
			{"a link event in an unknown namespace", nil, func(e *engine) {
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: 5555})
				e.flush()
			}, nil, map[string]int{}},
			// Another namespace deleting its id for something is not the
			// end of the namespace the host numbers the same.
			{"RTM_DELNSID from another namespace", nil, func(e *engine) {
				e.notification(vnic.Notification{Type: unix.RTM_DELNSID, From: 2, NSID: 1})
				e.flush()
			}, nil, map[string]int{}},
			{"RTM_DELNSID from the host", func(f *fake) { delete(f.procs, 1000) }, func(e *engine) {
				e.notification(vnic.Notification{Type: unix.RTM_DELNSID, From: hostNSID, NSID: 1})
				e.flush()
			}, []string{"removed ha"}, map[string]int{"namespace": 1}},
			// An id deleted, then given to a namespace a process event
			// attached before the deletion was read: that one stays.
			{"RTM_DELNSID of an id given again", func(f *fake) {
				f.procs[4000] = 9000
				f.nsid[9000] = 1 // namespace 100, id 1, is gone (its exit is not read yet)
				f.vnics[9000] = []vnic.VNIC{veth(2, "eth0", "new", 900)}
				delete(f.procs, 1000)
			}, func(e *engine) {
				e.process(procevents.Event{Type: procevents.Exec, PID: 4000, TGID: 4000})
				e.flush()
				e.notification(vnic.Notification{Type: unix.RTM_DELNSID, From: hostNSID, NSID: 1})
				e.flush()
			}, []string{"added new"}, map[string]int{"readlink": 1, "namespace": 2}},
			{"the last process exits", nil,
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exit, PID: 1000, TGID: 1000}) },
				[]string{"removed ha"}, map[string]int{}},
			// A process the walk named by a thread (its main thread exited
			// alone) goes with that thread's exit.
			{"the thread a namespace is named by exits", nil,
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exit, PID: 1000, TGID: 900}) },
				[]string{"removed ha"}, map[string]int{}},
			// A child forked in a namespace is tracked; when the process the
			// namespace is named by exits, the next oldest takes the name.
			{"the labelled process exits, a child remains", func(f *fake) { f.procs[5000] = 100 }, func(e *engine) {
				e.process(procevents.Event{Type: procevents.Fork, Parent: 1000, PID: 5000, TGID: 5000})
				delete(e.b.(*fake).procs, 1000)
				e.process(procevents.Event{Type: procevents.Exit, PID: 1000, TGID: 1000})
			}, []string{"changed ha pid"}, map[string]int{"readlink": 2, "oldest": 1}},
			// The next oldest has gone too (its exit is queued): the name
			// skips it.
			{"the label passes over a process that is gone", func(f *fake) {
				f.procs[5000] = 100
				f.procs[6000] = 100
			}, func(e *engine) {
				e.process(procevents.Event{Type: procevents.Fork, Parent: 1000, PID: 5000, TGID: 5000})
				e.process(procevents.Event{Type: procevents.Fork, Parent: 1000, PID: 6000, TGID: 6000})
				delete(e.b.(*fake).procs, 5000)
				delete(e.b.(*fake).procs, 1000)
				e.process(procevents.Event{Type: procevents.Exit, PID: 1000, TGID: 1000})
				if n := e.ns[100]; n == nil || n.pid != 6000 {
					panic("label not on 6000")
				}
				e.process(procevents.Event{Type: procevents.Exit, PID: 5000, TGID: 5000})
			}, []string{"changed ha pid"}, map[string]int{"readlink": 4, "oldest": 2}},
			// A link event finds the namespace's named process gone (its exit
			// not read yet): the name passes on, then the namespace is asked.
			{"a link event after the named process left", func(f *fake) { f.procs[5000] = 100 }, func(e *engine) {
				e.process(procevents.Event{Type: procevents.Fork, Parent: 1000, PID: 5000, TGID: 5000})
				delete(e.b.(*fake).procs, 1000)
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: 1})
				e.flush()
			}, []string{"changed ha pid"}, map[string]int{"readlink": 2, "oldest": 1, "namespace": 2}},
			// A newcomer with a lower PID (PIDs wrap) does not take the name.
			{"a lower PID joins", func(f *fake) { f.procs[50] = 100 },
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exec, PID: 50, TGID: 50}) },
				nil, map[string]int{"readlink": 1}},
			{"a process leaves for the host", func(f *fake) { f.procs[1000] = hostIno },
				func(e *engine) { e.process(procevents.Event{Type: procevents.Exec, PID: 1000, TGID: 1000}) },
				[]string{"removed ha"}, map[string]int{"readlink": 1}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := fleet(n)
				e := started(t, f)
				if tc.setup != nil {
					tc.setup(f)
				}
				tc.apply(e)
				if got := events(e.take()); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("N=%d: changes %v, want %v", n, got, tc.want)
				}
				if !reflect.DeepEqual(f.calls, tc.calls) {
					t.Errorf("N=%d: calls %v, want %v", n, f.calls, tc.calls)
				}
			})
		}
	}
}

// A namespace that fails to resolve in a resync keeps its vNICs: no
// removed/added pair for a passing error.
func TestEngineUnresolvedKeepsRows(t *testing.T) {
	f := fleet(2)
	e := started(t, f)
	flaky := &unresolving{fake: f, inode: 100}
	e.b = flaky
	if err := e.full(); err != nil {
		t.Fatal(err)
	}
	if got := e.take(); len(got) != 0 {
		t.Fatalf("changes %v, want none", events(got))
	}
	if len(e.rows()) != 2 {
		t.Fatalf("rows %v", e.rows())
	}
}

type unresolving struct {
	*fake
	inode uint64
}

func (u *unresolving) ResolveAll() (vnic.Snapshot, error) {
	s, err := u.fake.ResolveAll()
	var kept []vnic.Netns
	for _, ns := range s.Namespaces {
		if ns.Inode == u.inode {
			s.Unresolved = append(s.Unresolved, ns.Inode)
			continue
		}
		kept = append(kept, ns)
	}
	s.Namespaces = kept
	return s, err
}

// A netlink failure on an event is reported and changes nothing.
func TestEngineRefreshFailure(t *testing.T) {
	f := fleet(2)
	var reported []error
	e := newEngine(&failing{f}, func(err error) { reported = append(reported, err) })
	if err := e.full(); err != nil {
		t.Fatal(err)
	}
	e.take()
	e.notification(vnic.Notification{Type: unix.RTM_DELLINK, From: 1})
	e.flush()
	if got := e.take(); len(got) != 0 || len(reported) != 1 {
		t.Fatalf("changes %v, reported %v", events(got), reported)
	}
}

type failing struct{ *fake }

func (failing) ResolveNamespace(pid int, _ uint64) (int, []vnic.VNIC, error) {
	return 0, nil, &vnic.Error{PID: pid, Cause: vnic.CauseNetlink, Err: errors.New("EBUSY")}
}

// The engine's own work per event, with the kernel's answers faked: flat in
// the number of namespaces (the real readlink and netlink calls come on
// top; bench/watchlatency measures the whole).
func BenchmarkEngineEvent(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		f := fleet(n)
		e := newEngine(f, func(err error) { b.Fatal(err) })
		if err := e.full(); err != nil {
			b.Fatal(err)
		}
		e.take()
		b.Run(fmt.Sprintf("exec_exit_host/N=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				pid := 100000 + i%1000
				f.procs[pid] = hostIno
				e.process(procevents.Event{Type: procevents.Fork, Parent: 5, PID: pid, TGID: pid})
				e.process(procevents.Event{Type: procevents.Exec, PID: pid, TGID: pid})
				e.process(procevents.Event{Type: procevents.Exit, PID: pid, TGID: pid})
			}
		})
		b.Run(fmt.Sprintf("link_event/N=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				e.notification(vnic.Notification{Type: unix.RTM_NEWLINK, From: 1 + i%n})
				e.flush()
				e.take()
			}
		})
	}
}

// A full resolution that left namespaces out says so, once a cause, and
// the stream goes on with what it has.
func TestEngineReportsIncomplete(t *testing.T) {
	f := fleet(3)
	f.left = vnic.Snapshot{
		Failed: map[vnic.Cause]int{vnic.CausePermission: 2, vnic.CauseProcfs: 1},
		Blind:  true,
		Walk:   vnic.WalkStats{Processes: 12, Skipped: map[vnic.Cause]int{vnic.CauseNoPtrace: 5, vnic.CauseProcfs: 1}},
	}
	var got []string
	e := newEngine(f, func(err error) {
		if !errors.Is(err, ErrIncomplete) {
			t.Errorf("reported %v, want ErrIncomplete", err)
		}
		got = append(got, err.Error())
	})
	if err := e.full(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"incomplete: 2 namespace(s) not resolved: " + string(vnic.CausePermission),
		"incomplete: 1 namespace(s) not resolved: " + string(vnic.CauseProcfs),
		"incomplete: 5 of 12 processes skipped (" + string(vnic.CauseNoPtrace) + "): permission denied without CAP_SYS_PTRACE, so their namespaces are missing (run as root, or grant CAP_SYS_PTRACE)",
		"incomplete: 1 of 12 processes skipped (" + string(vnic.CauseProcfs) + "): their ns/net could not be read as a network namespace link (check --path.procfs)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reported %q, want %q", got, want)
	}
	if n := len(e.take()); n != 3 {
		t.Fatalf("%d present lines, want the 3 resolved", n)
	}
	// The same causes again at a resync, whatever the counts, are not
	// repeated; a cause more or less is.
	got = nil
	f.left.Failed[vnic.CausePermission] = 7
	f.left.Walk.Processes = 13
	if err := e.full(); err != nil || len(got) != 0 {
		t.Fatalf("second resolution: %v, reported %q; want nothing new", err, got)
	}
	delete(f.left.Failed, vnic.CauseProcfs)
	if err := e.full(); err != nil || len(got) != 3 || got[0] != "incomplete: 7 namespace(s) not resolved: "+string(vnic.CausePermission) {
		t.Fatalf("third resolution: %v, reported %q; want the remaining causes again", err, got)
	}
}
