package vnic

import (
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// Where fresh host counters can come from, measured. RTM_GETSTATS cannot
// be aimed at another namespace (the kernel answers for the socket's own),
// so a container's counters come from RTM_GETLINK aimed at its nsid
// (IFLA_TARGET_NETNSID), whose replies carry IFLA_STATS64 anyway. For the
// host end both are possible, and RTM_GETSTATS is the cheaper: the cached
// host links keep their pairing, only their counters are read again.
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
	b.Run("RTM_GETLINK/host", func(b *testing.B) {
		defer netnstest.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := r.nl.Links(noNSID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RTM_GETSTATS/host", func(b *testing.B) {
		defer netnstest.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := r.nl.HostStats(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RTM_GETLINK/aimed-nsid", func(b *testing.B) {
		defer netnstest.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := r.nl.Links(c.nsid); err != nil {
				b.Fatal(err)
			}
		}
	})
}
