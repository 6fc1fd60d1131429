package main

import (
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
		}
	}
}
