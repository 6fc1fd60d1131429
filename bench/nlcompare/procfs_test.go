package nlcompare

import (
	"testing"

	"github.com/prometheus/procfs"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// BenchmarkProcfsWalk groups every process of this machine by network
// namespace through github.com/prometheus/procfs (AllProcs, then each
// process's Namespaces), as the design card proposed. Compare with the
// project's own walk (one readdir, one readlinkat of PID/ns/net each),
// on the same machine and fixture:
//
//	bench/fixture.sh up /tmp/fx 1000
//	go test -run '^$' -bench 'Machine/walk' -benchmem ./internal/vnic/
//	(cd bench/nlcompare && go test -run '^$' -bench ProcfsWalk -benchmem)
//	bench/fixture.sh down /tmp/fx
func BenchmarkProcfsWalk(b *testing.B) {
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		b.Fatal(err)
	}
	stop := netnstest.ReportCPU(b)
	defer stop()
	for i := 0; i < b.N; i++ {
		procs, err := fs.AllProcs()
		if err != nil {
			b.Fatal(err)
		}
		byNetns := map[uint32][]int{}
		for _, p := range procs {
			ns, err := p.Namespaces()
			if err != nil {
				continue // gone, or not ours to read
			}
			if net, ok := ns["net"]; ok {
				byNetns[net.Inode] = append(byNetns[net.Inode], p.PID)
			}
		}
		if len(byNetns) == 0 {
			b.Fatal("no namespace found")
		}
	}
}
