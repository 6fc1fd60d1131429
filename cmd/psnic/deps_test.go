package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// psnic starts once per call, so what it links is paid at every start:
// text/template (kingpin's usage, prometheus/common/version's --version)
// calls methods by reflection, which keeps every exported method of every
// reachable type in the binary (7.5 MB against 4.2 MB, and ~1 ms of start-up
// here; docs/benchmarks.md). The exporter keeps kingpin; psnic must not.
// Nor gRPC and the CRI API, which only the exporter's --collector.kubernetes
// needs (internal/kube).
func TestPsnicLinksNoTemplates(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		// encoding/json: its init and the reflection it pages in cost 6-7
		// page faults a start, and psnic was its only importer (jsonout.go).
		case pkg == "text/template", pkg == "html/template", pkg == "github.com/alecthomas/kingpin/v2", pkg == "github.com/prometheus/common/version",
			pkg == "encoding/json", strings.HasPrefix(pkg, "google.golang.org/grpc"), strings.HasPrefix(pkg, "k8s.io/"):
			t.Errorf("psnic links %s", pkg)
		// Each package brings an initialiser that runs at every start
		// (docs/psnic.md, "Start-up"): these standard ones are large.
		case pkg == "net", strings.HasPrefix(pkg, "net/"), strings.HasPrefix(pkg, "crypto/"), pkg == "regexp", pkg == "log/slog",
			strings.HasPrefix(pkg, "compress/"), strings.HasPrefix(pkg, "archive/"):
			t.Errorf("psnic links %s", pkg)
		// Outside the standard library, only these: a new one is a new
		// start-up cost to measure first.
		case strings.Contains(pkg, ".") && !strings.HasPrefix(pkg, "vendor/") && !psnicModules[pkg]:
			t.Errorf("psnic links %s, not in psnicModules (measure its start-up cost, then add it)", pkg)
		}
	}
}

var psnicModules = map[string]bool{
	"github.com/container-vnic/container_vnic_exporter":                     true,
	"github.com/container-vnic/container_vnic_exporter/cmd/psnic":           true,
	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid":   true,
	"github.com/container-vnic/container_vnic_exporter/internal/procevents": true,
	"github.com/container-vnic/container_vnic_exporter/internal/rtnl":       true,
	"github.com/container-vnic/container_vnic_exporter/internal/vnic":       true,
	"github.com/container-vnic/container_vnic_exporter/vnicwatch":           true,
	"golang.org/x/sys/unix": true,
}

// maxPsnicBytes bounds psnic as `go build` makes it (as bench/run.sh builds
// it): 3.73 MB when set, against 1.82 MB for a Go program that does nothing.
// Linked code that never runs costs little at start-up (splitting `psnic
// watch` into a binary of its own took 0.5 MB off and moved the start by
// 0.01-0.02x of that program, within noise: docs/psnic.md, "Start-up"), but
// what grows the binary this much is a package, and its initialiser runs at
// every start: say what it is and why psnic needs it before raising this.
const maxPsnicBytes = 3_900_000

func TestPsnicBinarySize(t *testing.T) {
	fi, err := os.Stat(psnicBin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxPsnicBytes {
		t.Errorf("psnic is %d bytes, more than %d: what made it grow? (docs/psnic.md, \"Start-up\")", fi.Size(), maxPsnicBytes)
	}
}
