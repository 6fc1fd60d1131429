package vnicwatch

import (
	"os"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/procevents"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// What a short-lived process on the host costs the stream, with the real
// resolver: its fork (parent untracked: nothing), exec (one readlink of its
// ns/net) and exit (nothing). The process is this one, in the host's
// namespace, as most of a node's processes are.
func BenchmarkHostProcessEvents(b *testing.B) {
	netnstest.RequireRoot(b)
	r, err := vnic.New(vnic.Options{NoCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	e := newEngine(resolverBackend{r, cgroupid.NewLookup("/proc")}, func(err error) { b.Fatal(err) })
	pid := os.Getpid()
	for b.Loop() {
		e.process(procevents.Event{Type: procevents.Fork, Parent: 1, PID: pid, TGID: pid})
		e.process(procevents.Event{Type: procevents.Exec, PID: pid, TGID: pid})
		e.process(procevents.Event{Type: procevents.Exit, PID: pid, TGID: pid})
	}
	if len(e.ns) != 0 {
		b.Fatalf("host process tracked: %v", e.ns)
	}
}
