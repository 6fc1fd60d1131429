package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The shipped Grafana dashboards (examples/grafana/*.json), read without
// Grafana: the panels, their PromQL, and the template variables the PromQL
// uses. Only what the end-to-end test needs to run every panel's query
// against its Prometheus.

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource json.RawMessage           `json:"datasource"`
	GridPos    *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// query is one panel query: the panel's title and the target's expression.
type query struct{ panel, refID, expr string }

func parseDashboard(b []byte) (*dashboard, error) {
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// allPanels flattens rows.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// queries lists every target of every panel, in dashboard order.
func (d *dashboard) queries() []query {
	var qs []query
	for _, p := range d.allPanels() {
		for _, t := range p.Targets {
			qs = append(qs, query{panel: p.Title, refID: t.RefID, expr: t.Expr})
		}
	}
	return qs
}

// problems lists what would make the dashboard wrong to import or to use:
// panels without queries or without a place, duplicate ids, a data source
// other than the ${datasource} variable, queries naming variables that do
// not exist.
func (d *dashboard) problems() []string {
	var out []string
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		out = append(out, "uid, title and schemaVersion must be set")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" {
			if _, _, err := v.labelValues(); err != nil {
				out = append(out, fmt.Sprintf("variable %s: %v", v.Name, err))
			}
		}
	}
	if !vars["datasource"] {
		out = append(out, "no datasource variable: users pick their Prometheus")
	}
	ids := map[int]bool{}
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			out = append(out, fmt.Sprintf("panel %q: id %d used twice", p.Title, p.ID))
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			out = append(out, fmt.Sprintf("panel %q: no gridPos", p.Title))
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			out = append(out, fmt.Sprintf("panel %q: no query", p.Title))
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			out = append(out, fmt.Sprintf("panel %q: data source %s, want the ${datasource} variable", p.Title, p.Datasource))
		}
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				out = append(out, fmt.Sprintf("panel %q target %s: empty expression", p.Title, t.RefID))
			}
			for _, name := range referencedVariables(t.Expr) {
				if !vars[name] && !strings.HasPrefix(name, "__") {
					out = append(out, fmt.Sprintf("panel %q target %s: unknown variable $%s", p.Title, t.RefID, name))
				}
			}
		}
	}
	return out
}

var (
	variableRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)
	labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$`)
)

func referencedVariables(expr string) []string {
	seen := map[string]bool{}
	for _, m := range variableRef.FindAllStringSubmatch(expr, -1) {
		seen[m[1]+m[2]+m[3]] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// labelValues reads a query variable's label_values(SELECTOR, LABEL).
func (v variable) labelValues() (selector, label string, err error) {
	var q string
	if err := json.Unmarshal(v.Query, &q); err != nil {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &obj); err != nil {
			return "", "", fmt.Errorf("query neither a string nor {\"query\": ...}: %s", v.Query)
		}
		q = obj.Query
	}
	m := labelValues.FindStringSubmatch(q)
	if m == nil {
		return "", "", fmt.Errorf("query %q is not label_values(SELECTOR, LABEL)", q)
	}
	return m[1], m[2], nil
}

// expand substitutes template variables the way Grafana does for a single
// selected value: ${name}, $name and [[name]]; $__rate_interval and the
// other interval variables become rateInterval.
func expand(expr string, values map[string]string, rateInterval string) string {
	return variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		switch name {
		case "__rate_interval", "__interval", "__range":
			return rateInterval
		}
		if v, ok := values[name]; ok {
			return v
		}
		return ref
	})
}
