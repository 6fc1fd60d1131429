package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	values := map[string]string{"node": "a", "netns": "4026531840"}
	for _, tc := range []struct{ in, want string }{
		{`rate(x{node=~"$node"}[$__rate_interval])`, `rate(x{node=~"a"}[1m])`},
		{`x{node="${node}", netns="[[netns]]"}`, `x{node="a", netns="4026531840"}`},
		{`x{node="${node:regex}"}`, `x{node="a"}`},
		{`x{other="$other"}`, `x{other="$other"}`},
		{`sum(x)`, `sum(x)`},
	} {
		if got := expand(tc.in, values, "1m"); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDashboardProblems(t *testing.T) {
	bad := `{"uid": "u", "title": "T", "schemaVersion": 39,
	  "templating": {"list": [{"name": "node", "type": "query", "query": "up"}]},
	  "panels": [
	    {"id": 1, "type": "timeseries", "title": "a", "datasource": {"uid": "prom"}, "gridPos": {"h": 8, "w": 12},
	     "targets": [{"refId": "A", "expr": "x{netns=\"$netns\"}"}]},
	    {"id": 1, "type": "stat", "title": "b", "datasource": {"uid": "${datasource}"},
	     "targets": []}
	  ]}`
	d, err := parseDashboard([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(d.problems(), "\n")
	for _, want := range []string{
		`variable node: query "up" is not label_values`,
		"no datasource variable",
		`panel "a": data source {"uid": "prom"}`,
		`panel "a" target A: unknown variable $netns`,
		`panel "b": id 1 used twice`,
		`panel "b": no gridPos`,
		`panel "b": no query`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

// dashboardFiles returns the dashboards shipped in examples/grafana,
// failing t when there are none.
func dashboardFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "examples", "grafana", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboard in examples/grafana")
	}
	return files
}

// Every shipped dashboard is well formed; its queries run in TestEndToEnd.
func TestShippedDashboards(t *testing.T) {
	for _, f := range dashboardFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseDashboard(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, p := range d.problems() {
			t.Errorf("%s: %s", f, p)
		}
		if len(d.queries()) == 0 {
			t.Errorf("%s: no queries", f)
		}
		var titles []string
		for _, p := range d.allPanels() {
			titles = append(titles, p.Title)
		}
		if slices.Contains(titles, "") {
			t.Errorf("%s: a panel without a title", f)
		}
	}
}
