package vnic

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// The resolver never enters a namespace: after thousands of resolutions
// every thread of this process is still in the host's.
func TestNoThreadLeftInForeignNetns(t *testing.T) {
	r := newResolver(t)
	fleet := netnstest.Fleet(t, 5, 1)
	for i := 0; i < 2000; i++ {
		m := fleet[i%len(fleet)]
		if ns, err := r.ResolvePID(m.PIDs[0]); err != nil || ns.VNICs[0].HostIfname != m.Host {
			t.Fatalf("resolution %d: %+v, %v", i, ns, err)
		}
		if i%10 == 0 {
			if _, err := r.ResolveAll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no tasks: %v", err)
	}
	host := strconv.FormatUint(r.HostNetns(), 10)
	for _, task := range tasks {
		target, err := os.Readlink(task)
		if err != nil {
			t.Fatal(err)
		}
		if target != "net:["+host+"]" {
			t.Errorf("%s is in %s, not the host's net:[%s]", task, target, host)
		}
	}
}

// A procfs root with malformed entries: each is skipped and counted,
// nothing fails.
func TestWalkMalformedProcfs(t *testing.T) {
	netnstest.RequireRoot(t)
	root := t.TempDir()
	mk := func(path string) {
		if err := os.MkdirAll(filepath.Join(root, path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		if err := os.Symlink(target, filepath.Join(root, path)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/proc/self", filepath.Join(root, "self")); err != nil {
		t.Fatal(err)
	}
	mk("10/ns")
	link("garbage", "10/ns/net") // not a namespace link
	mk("11/ns")
	link("net:[0]", "11/ns/net") // inode 0
	mk("12/ns")
	if err := os.WriteFile(filepath.Join(root, "12/ns/net"), []byte("net:[1]"), 0o644); err != nil {
		t.Fatal(err) // a file, not a link
	}
	mk("13") // no ns directory: vanished
	mk("not-a-pid")
	if err := os.WriteFile(filepath.Join(root, "14"), nil, 0o644); err != nil {
		t.Fatal(err) // a file where a process directory should be
	}
	ns := netnstest.NewNetns(t, "cvw")
	ns.Veth(hostName("cvw"), "eth0")
	pid := ns.Spawn()
	link("/proc/"+strconv.Itoa(pid), strconv.Itoa(pid))

	r, err := New(Options{ProcfsPath: root})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snap, err := r.ResolveAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Namespaces) != 1 || len(snap.Namespaces[0].VNICs) != 1 || snap.Namespaces[0].PID != pid {
		t.Fatalf("namespaces %+v, want the one real process", snap.Namespaces)
	}
	if snap.Walk.Skipped[CauseProcfs] != 4 || snap.Walk.Skipped[CauseVanished] != 1 || snap.Walk.Processes != 6 {
		t.Fatalf("walk %+v, want 6 processes, 4 malformed (14 is a file) and 1 without ns/net", snap.Walk)
	}
	// ResolvePID on a malformed entry is an error naming the PID, not a crash.
	for _, pid := range []int{10, 11, 12, 13, 14} {
		if _, err := r.ResolvePID(pid); err == nil {
			t.Errorf("ResolvePID(%d) succeeded on a malformed entry", pid)
		}
	}
}
