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
		}
	}
}

// Nor what only `psnic watch` runs: that is psnic-watch, a binary of its
// own (watch.go), and its process events, signal handling, hooks (os/exec)
// and the stream would be paged in at every start. What the binary holds is
// checked, not what `go list -deps` lists: psnic imports vnicwatch for its
// Row, and nothing of the stream comes with it.
func TestPsnicLinksNoWatch(t *testing.T) {
	out, err := exec.Command("go", "tool", "nm", psnicBin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool nm: %v\n%s", err, out)
	}
	linked := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		for _, pkg := range []string{"os/exec.", "os/signal.", "github.com/container-vnic/container_vnic_exporter/internal/procevents.",
			"github.com/container-vnic/container_vnic_exporter/vnicwatch.(*Stream)", "github.com/container-vnic/container_vnic_exporter/vnicwatch.Open"} {
			if strings.HasPrefix(f[len(f)-1], pkg) {
				linked[pkg]++
			}
		}
	}
	for pkg, n := range linked {
		t.Errorf("psnic links %d symbol(s) of %s (psnic watch's, psnic-watch's only)", n, strings.TrimSuffix(pkg, "."))
	}
	if !strings.Contains(string(out), " main.execWatch") {
		t.Error("no main.execWatch in psnic: the check above reads the wrong symbols")
	}
}

// maxPsnicBytes bounds the psnic binary as `go build` makes it (as the
// benchmark builds it): every 64 KiB of text and read-only data it runs
// through is a page fault of 11-15 µs on the VMs measured, so a regrowth
// shows here before it shows in docs/benchmarks.md. 3.24 MB when set (the
// watch split off: 3.73 MB before); a Go program that does nothing is 1.8 MB.
const maxPsnicBytes = 3_400_000

func TestPsnicBinarySize(t *testing.T) {
	fi, err := os.Stat(psnicBin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxPsnicBytes {
		t.Errorf("psnic is %d bytes, more than %d: what made it grow? (docs/psnic.md, \"Start-up\")", fi.Size(), maxPsnicBytes)
	}
}
