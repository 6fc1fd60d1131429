// Command watchlatency measures `psnic watch`: the time from just before
// `ip link add HOST type veth peer name ... netns NS` to the "added" line for
// HOST on psnic watch's stdout, repeated; prints the distribution in ms.
//
//	watchlatency -psnic ./psnic -netns PID -prefix vf1a2bw -n 50
//
// NS (a netns name or the PID of a process in it) must hold a process.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"time"
)

func main() {
	psnic := flag.String("psnic", "psnic", "psnic binary")
	netns := flag.String("netns", "", "netns name, or PID of a process in the netns")
	n := flag.Int("n", 50, "samples")
	prefix := flag.String("prefix", "wlat", "name prefix of the host interfaces it adds (PREFIX0, PREFIX1, ...): one nothing else on the host uses")
	flag.Parse()
	if *netns == "" {
		fmt.Fprintln(os.Stderr, "usage: watchlatency -netns NAME [-psnic PATH] [-prefix NAME] [-n SAMPLES]")
		os.Exit(2)
	}
	cmd := exec.Command(*psnic, "watch", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	defer cmd.Process.Kill()
	added := make(chan string, 1024)
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
			if json.Unmarshal(s.Bytes(), &c) == nil && c.Event == "added" {
				added <- c.HostIfname
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
		fail(fmt.Errorf("no snapshot from psnic watch"))
	}
	time.Sleep(500 * time.Millisecond) // the snapshot is out
	var ms []float64
	for i := 0; i < *n; i++ {
		host := fmt.Sprintf("%s%d", *prefix, i)
		start := time.Now()
		if o, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", fmt.Sprintf("wl%d", i), "netns", *netns).CombinedOutput(); err != nil {
			fail(fmt.Errorf("ip link add: %v: %s", err, o))
		}
	wait:
		for {
			select {
			case h := <-added:
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
	sort.Float64s(ms)
	q := func(p float64) float64 { return ms[int(p*float64(len(ms)-1))] }
	fmt.Printf("watch latency ms (n=%d): min %.1f p25 %.1f median %.1f p75 %.1f p90 %.1f max %.1f\n",
		len(ms), ms[0], q(0.25), q(0.5), q(0.75), q(0.9), ms[len(ms)-1])
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "watchlatency:", err)
	os.Exit(1)
}
