package main

import (
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// The two reasons a process is skipped have their own causes (issue 21:
// both were permission_denied). Without CAP_SYS_PTRACE (dropped from the
// bounding set, root otherwise) the test's own container is skipped as
// no_cap_sys_ptrace and the scrape fails; in a user namespace of its own
// the exporter holds CAP_SYS_PTRACE there and the host's processes are
// refused all the same: protected, which no capability helps.
func TestServeSkipCauses(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvsp")
	ns.Veth("cvsp"+netnstest.Suffix(), "eth0")
	ns.Spawn()
	for _, tc := range []struct {
		name          string
		wrapper       []string
		cause, absent string
	}{
		{"no CAP_SYS_PTRACE", []string{"setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"}, "no_cap_sys_ptrace", "protected"},
		{"own user namespace", []string{"unshare", "--user", "--map-root-user"}, "protected", "no_cap_sys_ptrace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startExporterVia(t, tc.wrapper)
			families := p.scrape(t)
			skipped := seriesLabels(families, "container_vnic_processes_skipped")
			got, _ := gaugeValue(families, "container_vnic_processes_skipped", "cause", tc.cause)
			absent, ok := gaugeValue(families, "container_vnic_processes_skipped", "cause", tc.absent)
			if got < 1 || absent != 0 || !ok {
				t.Errorf("container_vnic_processes_skipped %s = %v, %s = %v; want at least 1 (the test's container), and 0", tc.cause, got, tc.absent, absent)
			}
			if _, ok := gaugeValue(families, "container_vnic_processes_skipped", "cause", "permission_denied"); ok {
				t.Errorf("container_vnic_processes_skipped %v still has permission_denied", skipped)
			}
			success := families["container_vnic_scrape_success"].GetMetric()[0].GetGauge().GetValue()
			if want := map[string]float64{"no_cap_sys_ptrace": 0, "protected": 1}[tc.cause]; success != want {
				t.Errorf("container_vnic_scrape_success = %v, want %v", success, want)
			}
		})
	}
}
