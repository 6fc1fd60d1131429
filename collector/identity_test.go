package collector

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// A container's process moved from docker-A.scope to docker-B.scope is
// labelled B from the next scrape on, and A again when moved back (issue
// 21: its identity was read once and every later scrape said A). Real
// cgroups, in the hierarchy cgroupid reads first.
func TestCollectorIdentityFollowsCgroupMove(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNetns(t, "cvcg")
	host := "cvcg" + netnstest.Suffix()
	ns.Veth(host, "eth0")
	pid := ns.Spawn()
	a, b := netnstest.ContainerID(), netnstest.ContainerID()
	dirs := map[string]string{
		a: netnstest.Cgroup(t, pid, "docker-"+a+".scope"),
		b: netnstest.Cgroup(t, pid, "docker-"+b+".scope"),
	}

	root := netnstest.LinkedProcfs(t, pid)
	col := newCollector(t, root).WithIdentity(cgroupid.NewLookup(root).Identity)
	for _, id := range []string{a, b, a} {
		netnstest.MoveToCgroup(t, dirs[id], pid)
		want := infoHelp + fmt.Sprintf(
			`container_vnic_info{container_id=%q,container_ifname="eth0",host_ifname=%q,netns=%q,pid="%d",pod_uid="",runtime="docker"} 1`+"\n",
			id, host, netnstest.NetnsLabel(t, pid), pid)
		if err := testutil.CollectAndCompare(col, strings.NewReader(want), "container_vnic_info"); err != nil {
			t.Fatalf("after moving %d to %s: %v", pid, dirs[id], err)
		}
	}
}
