package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// --help and --version go to stdout with exit 0 (node_exporter's way), so
// `container_vnic_exporter --help | less` works; stderr stays empty.
func TestHelpAndVersionOnStdout(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"--help", "usage: container_vnic_exporter"},
		{"-h", "--path.procfs"},
		{"--version", "container_vnic_exporter, version "},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(exporterBinary(t), tc.flag)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: %v\nstderr: %s", tc.flag, err, stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("%s: stdout lacks %q:\n%s", tc.flag, tc.want, stdout.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("%s: stderr not empty:\n%s", tc.flag, stderr.String())
		}
	}
	// A usage error is still an error: stderr and a non-zero exit.
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(exporterBinary(t), "--no-such-flag")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Errorf("--no-such-flag: err %v, stderr %q, stdout %q; want an error naming the flag on stderr", err, stderr.String(), stdout.String())
	}
	// So is a value the series flags do not know: one line, exit 1.
	for _, arg := range []string{"--collector.counters.kinds=bytes,octets", "--collector.counters.ends=guest"} {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.Command(exporterBinary(t), "--web.listen-address=127.0.0.1:0", arg)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		bad := arg[strings.LastIndex(arg, ",")+1:]
		if bad == arg {
			bad = arg[strings.Index(arg, "=")+1:]
		}
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), `"`+bad+`"`) {
			t.Errorf("%s: err %v, stderr %q; want exit 1 naming %q", arg, err, stderr.String(), bad)
		}
	}
}

// Every link of the landing page that points at the exporter itself answers
// 200, with the default and with another metrics path.
func TestLandingPageLinksAnswer(t *testing.T) {
	netnstest.RequireRoot(t)
	href := regexp.MustCompile(`(?:href|src|action)="([^"]*)"`)
	for _, args := range [][]string{nil, {"--web.telemetry-path=/x/metrics"}} {
		p := startExporter(t, args...)
		base, err := url.Parse("http://" + p.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		page := get(t, base.String())
		links := href.FindAllStringSubmatch(page, -1)
		if len(links) == 0 {
			t.Fatalf("%v: no links on the landing page:\n%s", args, page)
		}
		for _, m := range links {
			u, err := base.Parse(m[1])
			if err != nil {
				t.Errorf("%v: link %q: %v", args, m[1], err)
				continue
			}
			if u.Host != base.Host {
				t.Errorf("%v: link %q leaves the exporter (a landing page works offline)", args, m[1])
				continue
			}
			get(t, u.String())
		}
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(body)
}
