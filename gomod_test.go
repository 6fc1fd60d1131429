package containervnicexporter_test

import (
	"go/version"
	"os/exec"
	"strings"
	"testing"
)

// go.mod asks for the oldest Go that builds the module: the highest `go`
// line among the modules it requires, which the toolchain will not go
// below (issue 21: it asked for the patch release it was developed on).
func TestGoModAsksForOldestGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{if .Main}}main {{end}}{{.Path}} {{.GoVersion}}", "all").Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	var main, floor, floorBy string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		switch {
		case f[0] == "main" && len(f) == 3:
			main = f[2]
		case len(f) == 2 && version.Compare("go"+f[1], "go"+floor) > 0:
			floor, floorBy = f[1], f[0]
		}
	}
	if main == "" || floor == "" {
		t.Fatalf("no go version of the main module or of its requirements in:\n%s", out)
	}
	if main != floor {
		t.Errorf("go.mod says go %s; the oldest Go its requirements allow is %s (%s): say that", main, floor, floorBy)
	}
}
