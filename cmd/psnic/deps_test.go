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
func TestPsnicLinksNoTemplates(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		// encoding/json: its init and the reflection it pages in cost 6-7
		// page faults a start, and psnic was its only importer (jsonout.go).
		case "text/template", "html/template", "github.com/alecthomas/kingpin/v2", "github.com/prometheus/common/version",
			"encoding/json":
			t.Errorf("psnic links %s", pkg)
		}
	}
}
