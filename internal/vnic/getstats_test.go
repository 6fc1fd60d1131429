package vnic

import (
	"encoding/binary"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// statsRequest is an RTM_GETSTATS dump asking for IFLA_STATS_LINK_64 only
// (struct if_stats_msg: family, two pads, ifindex, filter_mask), with the
// attributes given.
func (r *rtnl) statsDump(attrs ...nl.NetlinkRequestData) (int, error) {
	req := r.request(unix.RTM_GETSTATS, unix.NLM_F_DUMP)
	msg := make([]byte, 12)
	binary.NativeEndian.PutUint32(msg[8:], 1<<(unix.IFLA_STATS_LINK_64-1))
	req.AddRawData(msg)
	for _, a := range attrs {
		req.AddData(a)
	}
	n := 0
	err := execute(req, unix.RTM_NEWSTATS, func([]byte) bool { n++; return true })
	return n, err
}

// Where fresh counters can come from, measured (not a test of ours: a
// record of the kernel's behaviour and cost). RTM_GETSTATS has no way to be
// aimed at another namespace: it answers for the socket's own, so a
// container's counters can only come from RTM_GETLINK aimed at its nsid
// (IFLA_TARGET_NETNSID), whose replies carry IFLA_STATS64 anyway. For the
// host end, both are possible; the link dump is needed for pairing all the
// same.
//
//	go test -run '^$' -bench HostCounters -benchmem ./internal/vnic/
func BenchmarkHostCounters(b *testing.B) {
	netnstest.RequireRoot(b)
	fleet := netnstest.Fleet(b, 100, 1)
	r := benchResolver(b, Options{Counters: true})
	snap, err := r.ResolveAll()
	if err != nil || len(snap.Namespaces) < len(fleet) {
		b.Fatalf("%d namespaces, %v", len(snap.Namespaces), err)
	}
	c := r.cache.byInode[snap.Namespaces[0].Inode]
	host, _ := r.nl.statsDump()
	aimed, aimedErr := r.nl.statsDump(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(c.nsid))))
	b.Logf("RTM_GETSTATS: %d host links; aimed at nsid %d: %d replies, error %v (the host's links again, or a refusal: never the namespace's)",
		host, c.nsid, aimed, aimedErr)
	b.Run("RTM_GETLINK/host", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := r.nl.links(noNSID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RTM_GETSTATS/host", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := r.nl.statsDump(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RTM_GETLINK/aimed-nsid/nl", func(b *testing.B) {
		defer reportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := r.nl.links(c.nsid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RTM_GETLINK/aimed-nsid/dumper", func(b *testing.B) {
		defer reportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := r.dump.links(c.nsid); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU reports the process's CPU time (user and system) per op: on a
// machine shared with other work, wall time mostly measures the wait for
// a CPU.
func reportCPU(b *testing.B) func() {
	var start unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &start)
	return func() {
		var end unix.Rusage
		_ = unix.Getrusage(unix.RUSAGE_SELF, &end)
		us := func(r unix.Rusage) float64 {
			return float64(r.Utime.Sec+r.Stime.Sec)*1e6 + float64(r.Utime.Usec+r.Stime.Usec)
		}
		b.ReportMetric((us(end)-us(start))/float64(b.N), "cpu-us/op")
	}
}
