package main

import (
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// A process in docker-B.scope made below docker-A.scope (what a container
// allowed to make sub-cgroups can do) is labelled A by default, and B only
// with --collector.container-identity.nested (issue 21: B, the victim, by
// default). Real cgroups, the real binary.
func TestServeIdentityNesting(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvsi")
	host := "cvsi" + netnstest.Suffix()
	ns.Veth(host, "eth0")
	pid := ns.Spawn()
	a, b := netnstest.ContainerID(), netnstest.ContainerID()
	netnstest.MoveToCgroup(t, netnstest.Cgroup(t, pid, "docker-"+a+".scope", "docker-"+b+".scope"), pid)
	root := netnstest.LinkedProcfs(t, pid)
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--collector.container-identity"}, a},
		{[]string{"--collector.container-identity", "--collector.container-identity.nested"}, b},
	} {
		p := startExporter(t, append(tc.flags, "--path.procfs="+root)...)
		info := seriesLabels(p.scrape(t), "container_vnic_info")
		if len(info) != 1 {
			t.Fatalf("%v: container_vnic_info %v, want one series", tc.flags, info)
		}
		if labels := info[0]; labels["host_ifname"] != host || labels["container_id"] != tc.want || labels["runtime"] != "docker" {
			t.Errorf("%v: labels %v, want host_ifname %s, container_id %s, runtime docker", tc.flags, labels, host, tc.want)
		}
	}
}
