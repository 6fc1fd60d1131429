package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// checkDashboards runs every panel query of every shipped dashboard against
// the end-to-end test's Prometheus, with each template variable set to the
// first value its own query returns there, and requires data from each.
// The series each panel returned are logged.
func checkDashboards(t *testing.T, prom *promAPI) {
	for _, f := range dashboardFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseDashboard(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		values := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			selector, label, err := v.labelValues()
			if err != nil {
				t.Fatalf("%s: variable %s: %v", f, v.Name, err)
			}
			// Earlier variables narrow later ones, as in Grafana.
			selector = expand(selector, values, "1m")
			// The selector's series first: a scrape stores a series with
			// all its labels at once, so once it is there its label values
			// are too, and an empty answer means no series has the label.
			prom.poll("series of variable "+v.Name, func() (bool, string) {
				var series []map[string]string
				prom.get("/api/v1/series?match[]="+url.QueryEscape(selector), &series)
				return len(series) > 0, "no series match " + selector
			})
			var got []string
			prom.get("/api/v1/label/"+url.PathEscape(label)+"/values?match[]="+url.QueryEscape(selector), &got)
			switch {
			case len(got) > 0:
				sort.Strings(got)
				values[v.Name] = got[0]
				t.Logf("%s: $%s = %q (of %d values)", filepath.Base(f), v.Name, got[0], len(got))
			case v.IncludeAll && v.AllValue != "":
				// No series has the label (namespace and pod of containers
				// outside Kubernetes): Grafana offers All alone, which is
				// allValue. The panels must then still return data, so it
				// has to match the empty value.
				values[v.Name] = v.AllValue
				t.Logf("%s: $%s = All, %q (label_values(%s, %s) is empty)", filepath.Base(f), v.Name, v.AllValue, selector, label)
			default:
				t.Fatalf("%s: variable %s: label_values(%s, %s) is empty, and there is no All to choose", f, v.Name, selector, label)
			}
		}
		for _, q := range d.queries() {
			expr := expand(q.expr, values, "1m")
			var series []sample
			prom.poll("data for panel "+q.panel, func() (bool, string) {
				series = prom.query(expr)
				return len(series) > 0, "no series for " + expr
			})
			// The traffic panels must also show the traffic the test sent,
			// at both ends.
			if strings.HasPrefix(q.panel, "Into the container") || strings.HasPrefix(q.panel, "Out of the container") ||
				strings.HasPrefix(q.panel, "Top 10 pods by traffic") {
				prom.poll("traffic on panel "+q.panel+" "+q.refID, func() (bool, string) {
					for _, s := range prom.query(expr) {
						if s.Value > 0 {
							return true, ""
						}
					}
					return false, "every series of " + expr + " is 0"
				})
			}
			var shown []string
			for _, s := range series {
				shown = append(shown, labelString(s.Metric)+" "+strconv.FormatFloat(s.Value, 'g', 4, 64))
			}
			sort.Strings(shown)
			if len(shown) > 6 { // a busy host: the test's own are among them
				shown = append(shown[:6], fmt.Sprintf("and %d more", len(shown)-6))
			}
			t.Logf("panel %q %s: %d series: %s", q.panel, q.refID, len(series), strings.Join(shown, "; "))
		}
	}
}
