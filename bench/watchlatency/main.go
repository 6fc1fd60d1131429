// Command watchlatency measures `psnic watch` on this host: the latency from
// just before `ip link add HOST type veth peer name ... netns NS` to the
// "added" line for HOST on psnic watch's stdout, repeated (the distribution
// in ms); and, with -cpu D, the CPU time psnic watch uses while the host
// starts -rate short-lived processes a second for D, with no vNIC change.
//
//	watchlatency -psnic ./psnic -netns PID -n 50 [-cpu 60s -rate 200]
//	watchlatency -psnic ./psnic -fleet 1000 -n 50 -cpu 60s
//
// NS (a netns name or the PID of a process in it) must hold a process.
// -fleet N makes N namespaces of its own (one process and one veth each,
// names starting with "wl" and a random tag) and removes them at the end.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	psnic := flag.String("psnic", "psnic", "psnic binary")
	netns := flag.String("netns", "", "netns name, or PID of a process in the netns")
	fleetSize := flag.Int("fleet", 0, "make this many namespaces first (and use the first as -netns)")
	n := flag.Int("n", 50, "latency samples (0: none)")
	cpu := flag.Duration("cpu", 0, "measure psnic watch's CPU time for this long under process churn")
	rate := flag.Int("rate", 200, "short-lived processes started per second during -cpu")
	flag.Parse()
	if *netns == "" && *fleetSize == 0 {
		fmt.Fprintln(os.Stderr, "usage: watchlatency (-netns NAME | -fleet N) [-psnic PATH] [-n SAMPLES] [-cpu DURATION -rate N]")
		os.Exit(2)
	}
	if *fleetSize > 0 {
		f, err := makeFleet(*fleetSize)
		if err != nil {
			fail(err)
		}
		defer f.remove()
		atFail = f.remove
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		go func() { <-sigs; f.remove(); os.Exit(1) }()
		*netns = strconv.Itoa(f.pids[0])
	}
	w, err := startWatch(*psnic)
	if err != nil {
		fail(err)
	}
	defer func() {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		t := time.AfterFunc(10*time.Second, func() { _ = w.cmd.Process.Kill() })
		_ = w.cmd.Wait()
		t.Stop()
	}()
	label := ""
	if *fleetSize > 0 {
		label = fmt.Sprintf("N=%d: ", *fleetSize)
	}
	if *n > 0 {
		ms, ipMS := latency(w, *netns, *n)
		after := make([]float64, len(ms)) // from the end of the ip command
		for i := range ms {
			after[i] = ms[i] - ipMS[i]
		}
		for _, s := range [][]float64{ms, ipMS, after} {
			sort.Float64s(s)
		}
		q := func(s []float64, p float64) float64 { return s[int(p*float64(len(s)-1))] }
		fmt.Printf("%swatch latency ms (n=%d): min %.1f p25 %.1f median %.1f p75 %.1f p90 %.1f max %.1f; the ip command itself: median %.1f; after it returned: median %.1f p90 %.1f\n",
			label, len(ms), ms[0], q(ms, 0.25), q(ms, 0.5), q(ms, 0.75), q(ms, 0.9), ms[len(ms)-1], q(ipMS, 0.5), q(after, 0.5), q(after, 0.9))
	}
	if *cpu > 0 {
		// First without churn: on a shared host, what the host does
		// anyway is part of the figure, and this says how much.
		idle, _ := churn(w.cmd.Process.Pid, *cpu, 0)
		used, started := churn(w.cmd.Process.Pid, *cpu, *rate)
		pct := func(d time.Duration) float64 { return 100 * d.Seconds() / cpu.Seconds() }
		fmt.Printf("%swatch cpu under %d processes/s for %s (%d started): %.2f s = %.2f %% of one CPU (without them: %.2f %%)\n",
			label, *rate, *cpu, started, used.Seconds(), pct(used), pct(idle))
	}
}

type watch struct {
	cmd   *exec.Cmd
	added chan string
}

// startWatch starts psnic watch and returns once its snapshot is out.
func startWatch(psnic string) (*watch, error) {
	w := &watch{cmd: exec.Command(psnic, "watch", "-o", "json"), added: make(chan string, 1024)}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w.cmd.Stderr = os.Stderr
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		first := true
		for s.Scan() {
			var c struct {
				Event      string `json:"event"`
				HostIfname string `json:"host_ifname"`
			}
			if json.Unmarshal(s.Bytes(), &c) == nil && c.Event == "added" && strings.HasPrefix(c.HostIfname, "wlat") {
				// Never block: a full channel would stop psnic on its stdout.
				select {
				case w.added <- c.HostIfname:
				default:
				}
			}
			if first {
				close(ready)
				first = false
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("no snapshot from psnic watch")
	}
	time.Sleep(500 * time.Millisecond) // the rest of the snapshot is out
	return w, nil
}

// latency returns, per sample, the time to the line and the time the ip
// command took (a floor: the link exists only once ip has asked for it).
func latency(w *watch, netns string, n int) (ms, ipMS []float64) {
	tag := randomTag()
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("wlat%s%d", tag, i)
		start := time.Now()
		if o, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", fmt.Sprintf("wl%s%d", tag, i), "netns", netns).CombinedOutput(); err != nil {
			fail(fmt.Errorf("ip link add: %v: %s", err, o))
		}
		ipMS = append(ipMS, float64(time.Since(start).Microseconds())/1000)
	wait:
		for {
			select {
			case h := <-w.added:
				if h == host {
					break wait
				}
			case <-time.After(10 * time.Second):
				fail(fmt.Errorf("no added line for %s", host))
			}
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		_ = exec.Command("ip", "link", "del", host).Run()
		time.Sleep(50 * time.Millisecond)
	}
	return ms, ipMS
}

// churn starts rate short-lived processes a second for d and returns the
// CPU time (user + system) pid used meanwhile.
func churn(pid int, d time.Duration, rate int) (time.Duration, int) {
	before := cpuTime(pid)
	if rate == 0 {
		time.Sleep(d)
		return cpuTime(pid) - before, 0
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.After(d)
	var wg sync.WaitGroup
	started := 0
	for {
		select {
		case <-end:
			wg.Wait()
			return cpuTime(pid) - before, started
		case <-tick.C:
			cmd := exec.Command("/bin/true")
			if err := cmd.Start(); err != nil {
				fail(err)
			}
			started++
			wg.Add(1)
			go func() { defer wg.Done(); _ = cmd.Wait() }()
		}
	}
}

// cpuTime reads utime + stime of a process (all its threads) from
// /proc/PID/stat, in clock ticks of 10 ms.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

type fleet struct {
	names []string
	pids  []int
	once  sync.Once
}

// makeFleet makes n namespaces, each with a veth (container end eth0) and a
// sleeping process, in a few `ip -batch` calls.
func makeFleet(n int) (*fleet, error) {
	tag := randomTag()
	f := &fleet{}
	var ns, links strings.Builder
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("wl%s-%d", tag, i)
		f.names = append(f.names, name)
		fmt.Fprintf(&ns, "netns add %s\n", name)
		fmt.Fprintf(&links, "link add wl%sh%d type veth peer name eth0 netns %s\nlink set wl%sh%d up\n", tag, i, name, tag, i)
	}
	for _, b := range []string{ns.String(), links.String()} {
		cmd := exec.Command("ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			f.remove()
			return nil, fmt.Errorf("ip -batch: %v: %s", err, out)
		}
	}
	for _, name := range f.names {
		cmd := exec.Command("nsenter", "--net=/run/netns/"+name, "sleep", "infinity")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			f.remove()
			return nil, err
		}
		f.pids = append(f.pids, cmd.Process.Pid)
		go func() { _ = cmd.Wait() }()
	}
	// Wait until every process is in its namespace (nsenter has exec'd).
	for _, pid := range f.pids {
		for deadline := time.Now().Add(10 * time.Second); ; {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "sleep" {
				break
			}
			if time.Now().After(deadline) {
				f.remove()
				return nil, fmt.Errorf("process %d did not reach its namespace", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return f, nil
}

func (f *fleet) remove() {
	f.once.Do(func() {
		for _, pid := range f.pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		var del strings.Builder
		for _, name := range f.names {
			fmt.Fprintf(&del, "netns del %s\n", name)
		}
		cmd := exec.Command("ip", "-force", "-batch", "-")
		cmd.Stdin = strings.NewReader(del.String())
		_ = cmd.Run()
	})
}

func randomTag() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// atFail runs before fail exits (the fleet's removal).
var atFail = func() {}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "watchlatency:", err)
	atFail()
	os.Exit(1)
}
