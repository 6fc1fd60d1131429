package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// churnSeconds is how long TestChurn churns: 30 s by default (CI), longer
// with CHURN_SECONDS=600 for a soak.
func churnSeconds(t *testing.T) time.Duration {
	if v := os.Getenv("CHURN_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CHURN_SECONDS=%q: want a positive number of seconds", v)
		}
		return time.Duration(n) * time.Second
	}
	return 30 * time.Second
}

// container is one namespace the churner made: the ground truth a series
// is checked against.
type container struct {
	host, netns string
	pid         int
	born        time.Time // its process is in the namespace (sleep exec'd)
	killed      time.Time // removal began (zero while alive)
	dead        time.Time // process reaped
}

type truth struct {
	mu   sync.Mutex
	byIf map[string]*container // by host ifname, never reused
}

// set records a change to the truth under its lock.
func (g *truth) set(f func()) {
	g.mu.Lock()
	f()
	g.mu.Unlock()
}

// check compares one scrape, taken between start and end, with the truth:
// every series of ours, info or counter, must be a container alive at some
// point of the scrape, with exactly its pid (info) and netns; every
// container alive through the whole scrape must be there.
func (g *truth) check(prefix string, series, counters []map[string]string, start, end time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	for _, l := range series {
		host := l["host_ifname"]
		if !strings.HasPrefix(host, prefix) {
			continue
		}
		c := g.byIf[host]
		if c == nil {
			return fmt.Errorf("series for %s, which the churner never made: %v", host, l)
		}
		if l["container_ifname"] != "eth0" || l["pid"] != strconv.Itoa(c.pid) || l["netns"] != c.netns {
			return fmt.Errorf("wrong pairing %v, truth: pid %d netns %s eth0", l, c.pid, c.netns)
		}
		if !c.dead.IsZero() && c.dead.Before(start) {
			return fmt.Errorf("series %v for a container dead before the scrape", l)
		}
		seen[host] = true
	}
	for _, l := range counters {
		host := l["host_ifname"]
		if !strings.HasPrefix(host, prefix) {
			continue
		}
		c := g.byIf[host]
		switch {
		case c == nil:
			return fmt.Errorf("counter for %s, which the churner never made: %v", host, l)
		case l["container_ifname"] != "eth0" || l["netns"] != c.netns:
			return fmt.Errorf("counter %v, truth: netns %s eth0", l, c.netns)
		case !c.dead.IsZero() && c.dead.Before(start):
			return fmt.Errorf("counter %v for a container dead before the scrape", l)
		}
	}
	for host, c := range g.byIf {
		if !c.born.IsZero() && c.born.Before(start) && (c.killed.IsZero() || c.killed.After(end)) && !seen[host] {
			return fmt.Errorf("container %s (pid %d) alive through the scrape is missing", host, c.pid)
		}
	}
	return nil
}

// processStats reads what must not leak from the exporter process.
func processStats(t *testing.T, pid int) (fds, threads, hwmKB int) {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Threads:" {
			threads, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwmKB, _ = strconv.Atoi(f[1])
		}
	}
	return len(entries), threads, hwmKB
}

func goroutines(t *testing.T, p *exporterProcess) int {
	t.Helper()
	f := p.scrape(t)["go_goroutines"]
	if f == nil {
		t.Fatal("no go_goroutines")
	}
	return int(f.GetMetric()[0].GetGauge().GetValue())
}

// Namespaces and their processes come and go continuously while ten
// scrapers hit /metrics: every scrape must succeed and be exactly right,
// and nothing may leak once the churn stops.
func TestChurn(t *testing.T) {
	netnstest.RequireRoot(t)
	duration := churnSeconds(t)
	p := startExporter(t)
	pid := p.cmd.Process.Pid
	url := "http://" + p.addr + "/metrics"
	prefix := "cvch" + netnstest.Suffix()[:4]
	g := &truth{byIf: map[string]*container{}}

	// Warm up with the same concurrency, so that the baseline counts the
	// threads and buffers ten scrapers need anyway.
	var warm sync.WaitGroup
	for i := 0; i < 10; i++ {
		warm.Add(1)
		go func() {
			defer warm.Done()
			for j := 0; j < 5; j++ {
				p.scrape(t)
			}
		}()
	}
	warm.Wait()
	http.DefaultClient.CloseIdleConnections()
	baseGoroutines := goroutines(t, p)
	http.DefaultClient.CloseIdleConnections()
	baseFDs, baseThreads, _ := processStats(t, pid)

	stop := make(chan struct{})
	var churner sync.WaitGroup
	var made atomic.Int64
	var removed int
	churnErr := make(chan error, 1)
	churner.Add(1)
	go func() {
		defer churner.Done()
		var alive []*container
		var procs = map[*container]*exec.Cmd{}
		remove := func(c *container) error {
			g.set(func() { c.killed = time.Now() })
			cmd := procs[c]
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			g.set(func() { c.dead = time.Now() })
			delete(procs, c)
			removed++
			return exec.Command("ip", "netns", "del", c.netnsName()).Run()
		}
		defer func() {
			for _, c := range alive {
				_ = remove(c)
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, cmd, err := makeContainer(g, prefix, i)
			if cmd != nil {
				procs[c] = cmd
				alive = append(alive, c)
			}
			if err != nil {
				churnErr <- err
				return
			}
			made.Add(1)
			if len(alive) > 8 {
				if err := remove(alive[0]); err != nil {
					churnErr <- err
					return
				}
				alive = alive[1:]
			}
		}
	}()

	const scrapers = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	scrapes, failures := 0, []string{}
	var done []scraped
	// Run for the duration, and on a slow machine until enough happened to
	// prove anything (20 namespaces, 10 scrapes), within ten times that.
	deadline, limit := time.Now().Add(duration), time.Now().Add(10*duration)
	running := func() bool {
		now := time.Now()
		if now.Before(deadline) {
			return true
		}
		mu.Lock()
		enough := scrapes >= 10 && made.Load() >= 20
		mu.Unlock()
		return !enough && now.Before(limit)
	}
	for i := 0; i < scrapers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			defer client.CloseIdleConnections()
			for running() {
				start := time.Now()
				sc, err := scrapeInfo(client, url, prefix)
				end := time.Now()
				if err == nil {
					// A scrape that arrives while a resolution runs shares it
					// (collector/flight.go): its answer may be as old as that
					// resolution, plus encoding, before the scrape began.
					sc.start, sc.end = start.Add(-sc.resolution-sharedSlack), end
					err = g.check(prefix, sc.info, sc.counterLabels, sc.start, end)
				}
				mu.Lock()
				if err == nil {
					done = append(done, sc)
				}
				scrapes++
				if err != nil && len(failures) < 10 {
					failures = append(failures, err.Error())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	churner.Wait()
	select {
	case err := <-churnErr:
		t.Fatalf("churner: %v", err)
	default:
	}
	for _, f := range failures {
		t.Error(f)
	}
	checked, err := monotonic(done)
	if err != nil {
		t.Error(err)
	}

	// Once the churn stops and its namespaces are gone, the exporter is
	// back where it started.
	netnstest.Eventually(t, 20*time.Second, "churned veths to go", func() bool {
		out, _ := exec.Command("ip", "-o", "link").Output()
		return !strings.Contains(string(out), prefix)
	})
	var fds, threads, hwm, gr int
	netnstest.Eventually(t, 10*time.Second, "fds and goroutines back to their starting level", func() bool {
		http.DefaultClient.CloseIdleConnections()
		gr = goroutines(t, p)
		http.DefaultClient.CloseIdleConnections()
		fds, threads, hwm = processStats(t, pid)
		return fds <= baseFDs && gr <= baseGoroutines
	})
	// Go keeps the OS threads it made for blocking syscalls: up to one per
	// scrape in flight (each reads /proc for process_* on its own). A leak,
	// one per scrape, would show as thousands.
	if threads > baseThreads+scrapers {
		t.Errorf("threads grew from %d to %d", baseThreads, threads)
	}
	t.Logf("churn %v: %d scrapes by 10 scrapers, %d namespaces made, %d removed; %d counter samples checked monotonic; peak RSS %.1f MB; "+
		"fds %d -> %d, goroutines %d -> %d, threads %d -> %d",
		duration, scrapes, made.Load(), removed, checked, float64(hwm)/1024, baseFDs, fds, baseGoroutines, gr, baseThreads, threads)
	if scrapes < 10 || made.Load() < 20 {
		t.Errorf("too little happened in %v: %d scrapes, %d namespaces", 10*duration, scrapes, made.Load())
	}
}

func (c *container) netnsName() string { return c.host + "n" }

// makeContainer makes one namespace with a veth and a process in it. The
// process is started and recorded in g under g's lock, so a scrape that
// sees it is checked against its record.
func makeContainer(g *truth, prefix string, i int) (*container, *exec.Cmd, error) {
	host := fmt.Sprintf("%s%d", prefix, i)
	c := &container{host: host}
	name := c.netnsName()
	for _, args := range [][]string{
		{"netns", "add", name},
		{"link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"link", "set", host, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		return nil, nil, err
	}
	c.netns = strconv.FormatUint(st.Ino, 10)
	// The container's first process sets eth0 up itself: `ip -n` would
	// enter the namespace as a process of its own, with a lower PID than
	// the container's, which the exporter would rightly report.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+name, "sh", "-c", "ip link set eth0 up && exec sleep 3600")
	var err error
	g.set(func() {
		if err = cmd.Start(); err == nil {
			c.pid = cmd.Process.Pid
			g.byIf[host] = c
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if err := netnstest.WaitExec(c.pid, "sleep", time.Minute); err != nil {
		return c, cmd, err
	}
	g.set(func() { c.born = time.Now() })
	return c, cmd, nil
}

// sharedSlack bounds the encoding and hand-over of a shared response, on
// top of the resolution time the response reports.
const sharedSlack = 100 * time.Millisecond

// counterFamilies are the exporter's counters of both ends of a vNIC.
var counterFamilies = func() []string {
	var out []string
	for _, end := range []string{"", "host_"} {
		for _, c := range []string{"receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets",
			"receive_errs", "transmit_errs", "receive_drop", "transmit_drop"} {
			out = append(out, "container_vnic_"+end+c+"_total")
		}
	}
	return out
}()

// scraped is one successful scrape: its container_vnic_info series, its
// counters of the churner's interfaces, and when its answer may have been
// resolved (start, already less the resolution and slack, and end).
type scraped struct {
	info          []map[string]string
	counterLabels []map[string]string
	counters      map[string]float64 // by family and label set
	resolution    time.Duration
	start, end    time.Time
}

// scrapeInfo GETs url and returns its container_vnic_info series, the
// counters of interfaces named with prefix, and the duration of the
// resolution that produced them, failing on anything but a 200 with a
// valid exposition.
func scrapeInfo(client *http.Client, url, prefix string) (scraped, error) {
	var sc scraped
	families, err := scrapeFamilies(client, url)
	if err != nil {
		return sc, err
	}
	labels := func(m *dto.Metric) map[string]string {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		return l
	}
	if f := families["container_vnic_info"]; f != nil {
		for _, m := range f.GetMetric() {
			sc.info = append(sc.info, labels(m))
		}
	}
	sc.counters = map[string]float64{}
	for _, name := range counterFamilies {
		f := families[name]
		if f == nil {
			continue // no vNIC at all at that moment
		}
		for _, m := range f.GetMetric() {
			l := labels(m)
			if !strings.HasPrefix(l["host_ifname"], prefix) {
				continue
			}
			sc.counterLabels = append(sc.counterLabels, l)
			sc.counters[name+fmt.Sprint(l)] = m.GetCounter().GetValue()
		}
	}
	if f := families["container_vnic_scrape_success"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() != 1 {
		return sc, fmt.Errorf("container_vnic_scrape_success is not 1")
	}
	f := families["container_vnic_scrape_duration_seconds"]
	if f == nil {
		return sc, fmt.Errorf("no container_vnic_scrape_duration_seconds")
	}
	sc.resolution = time.Duration(f.GetMetric()[0].GetGauge().GetValue() * float64(time.Second))
	return sc, nil
}

// monotonic checks that no counter series ever went backwards: a scrape
// whose answer was resolved after another scrape had ended must have, for
// every series the two share, a value at least as high. It returns how
// many samples it compared.
func monotonic(scrapes []scraped) (int, error) {
	byEnd := append([]scraped{}, scrapes...)
	sort.Slice(byEnd, func(i, j int) bool { return byEnd[i].end.Before(byEnd[j].end) })
	byStart := append([]scraped{}, scrapes...)
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].start.Before(byStart[j].start) })
	highest := map[string]float64{} // over the scrapes ended so far
	checked, next := 0, 0
	for _, s := range byStart {
		for ; next < len(byEnd) && byEnd[next].end.Before(s.start); next++ {
			for k, v := range byEnd[next].counters {
				highest[k] = max(highest[k], v)
			}
		}
		for k, v := range s.counters {
			if h, ok := highest[k]; ok {
				checked++
				if v < h {
					return checked, fmt.Errorf("counter %s went backwards: %v after %v", k, v, h)
				}
			}
		}
	}
	return checked, nil
}
