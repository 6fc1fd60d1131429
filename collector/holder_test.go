package collector

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// infoPIDs gathers col and returns the pid label of each
// container_vnic_info series of namespace netns, by container_ifname.
func infoPIDs(t *testing.T, col *Collector, netns string) map[string]string {
	t.Helper()
	pids := map[string]string{}
	for _, mf := range gatherPedantic(t, col) {
		if mf.GetName() != "container_vnic_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["netns"] == netns {
				if old, dup := pids[l["container_ifname"]]; dup {
					t.Errorf("two series for %s: pid %s and %s", l["container_ifname"], old, l["pid"])
				}
				pids[l["container_ifname"]] = l["pid"]
			}
		}
	}
	return pids
}

// startBelow starts `sleep` in the namespace at nsPath with a PID lower
// than below, by writing just under it to /proc/sys/kernel/ns_last_pid, as
// PID wrap-around does on a busy host. Other processes fork at the same
// time: it tries again until it gets a lower PID.
// makeRoomBelow makes the next PIDs at least 1,000, so that startBelow
// finds room under them: just after PIDs wrapped (pid_max is 32,768 here),
// the next ones are the lowest free, and the test failed "too low".
func makeRoomBelow(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	if err != nil {
		t.Fatal(err)
	}
	if last, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && last >= 1000 {
		return
	}
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte("1000"), 0); err != nil {
		t.Fatalf("ns_last_pid: %v", err)
	}
}

func startBelow(t *testing.T, nsPath string, below int) int {
	t.Helper()
	if below < 400 {
		t.Fatalf("PID %d: too low to force one under it", below)
	}
	for try := 0; try < 100; try++ {
		// PIDs just under below may be taken (recent processes, a zombie
		// not yet reaped): the kernel then takes the next free one above,
		// so start lower on each try.
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(below-2-try)), 0); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
		cmd := exec.Command("nsenter", "--net="+nsPath, "sleep", "3600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid < below {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			return cmd.Process.Pid
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatalf("could not start a process with a PID under %d", below)
	return 0
}

// The pid label is the namespace's oldest process, kept while it lives: a
// process entering with a lower PID (nsenter, docker exec, a probe after
// PIDs wrapped) does not take it, nor split the series; when the holder
// exits, the next oldest takes over.
func TestStablePIDLabel(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvsp")
	host := "cvsp" + netnstest.Suffix()
	ns.Veth(host, "eth0")
	ns.Veth(host+"b", "net1")
	makeRoomBelow(t)
	holder := ns.Spawn()
	younger := ns.Spawn()
	// The real /proc: the walk must find the intruder by itself.
	col := newCollector(t, "/proc")
	label := netnstest.NetnsLabel(t, holder)
	want := func(pid int) map[string]string {
		return map[string]string{"eth0": strconv.Itoa(pid), "net1": strconv.Itoa(pid)}
	}
	check := func(when string, pid int) {
		t.Helper()
		if got := infoPIDs(t, col, label); fmt.Sprint(got) != fmt.Sprint(want(pid)) {
			t.Fatalf("%s: series %v, want %v", when, got, want(pid))
		}
	}
	check("first scrape", holder)

	intruder := startBelow(t, ns.Path(), min(holder, younger))
	netnstest.Eventually(t, 10*time.Second, "the intruder in the namespace", func() bool {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", intruder))
		return err == nil && l == "net:["+label+"]"
	})
	t.Logf("holder %d, younger %d, intruder %d (the lowest PID in the namespace now)", holder, younger, intruder)
	check("with a lower PID in the namespace", holder)

	if err := syscall.Kill(intruder, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	check("intruder gone", holder)

	// The holder exits: the oldest of those left is the younger sleeper,
	// not a newcomer with a lower PID.
	intruder2 := startBelow(t, ns.Path(), younger)
	netnstest.Eventually(t, 10*time.Second, "the second intruder in the namespace", func() bool {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", intruder2))
		return err == nil && l == "net:["+label+"]"
	})
	if err := syscall.Kill(holder, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 10*time.Second, "the holder out of the namespace", func() bool {
		_, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", holder)) // a zombie has none
		return err != nil
	})
	check("holder gone", younger)
}
