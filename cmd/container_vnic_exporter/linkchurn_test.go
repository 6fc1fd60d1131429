package main

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// linkChurnDuration is how long the link-churn tests run: 20 s, or
// LINKCHURN_SECONDS for a soak.
func linkChurnDuration(t *testing.T) time.Duration {
	if s := os.Getenv("LINKCHURN_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("LINKCHURN_SECONDS=%q: %v", s, err)
		}
		return time.Duration(n) * time.Second
	}
	return 20 * time.Second
}

// While three `ip -batch` loops add and delete 50 veth pairs each on the
// host, every scrape answers every container, with no netlink error: a busy
// node's host link dumps come back interrupted, and that must cost no
// scrape (issue 13: 3 of 300 scrapes lost every series).
func TestLinkChurnLosesNoScrape(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := "cvlc" + netnstest.Suffix()
	want := map[string]bool{}
	for i := range 3 {
		ns := netnstest.NewNetns(t, "cvlc")
		host := fmt.Sprintf("%s%d", prefix, i)
		ns.Veth(host, "eth0")
		pid := ns.Spawn()
		want[fmt.Sprintf("%s eth0 %d %s", host, pid, netnstest.NetnsLabel(t, pid))] = true
	}
	p := startExporter(t)
	url := "http://" + p.addr + "/metrics"
	if got := infoSeries(p.scrape(t), prefix); !maps.Equal(got, want) {
		t.Fatalf("before the churn: %v, want %v", got, want)
	}

	stop := netnstest.HostLinkChurn(t, 3, 50)
	client := &http.Client{Timeout: 30 * time.Second}
	scrapes, lost := 0, 0
	for deadline := time.Now().Add(linkChurnDuration(t)); time.Now().Before(deadline); scrapes++ {
		families, err := scrapeFamilies(client, url)
		if err == nil {
			if got := infoSeries(families, prefix); !maps.Equal(got, want) {
				err = fmt.Errorf("series %v, want %v", got, want)
			} else if v, ok := gaugeValue(families, "container_vnic_scrape_errors", "cause", "netlink"); !ok || v != 0 {
				// Only netlink errors are the churn's: other tests'
				// containers, caught while their runtime sets them up,
				// may refuse even root for a moment (permission_denied).
				err = fmt.Errorf("container_vnic_scrape_errors{cause=\"netlink\"} = %v (present %v)", v, ok)
			}
		}
		if err != nil {
			lost++
			if lost <= 5 {
				t.Errorf("scrape %d: %v", scrapes+1, err)
			}
		}
	}
	batches := stop()
	t.Logf("%d scrapes during %d ip -batch runs of 50 veth pairs each: %d lost", scrapes, batches, lost)
	if batches < 3 {
		t.Fatalf("only %d batches ran: no churn to speak of", batches)
	}
}
