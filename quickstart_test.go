package containervnicexporter_test

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// The README's quick start, run as written on a clone of this checkout: its
// shell blocks build both commands, make a namespace with a veth and start
// the exporter; its console block's commands, run from the second terminal,
// print what it shows (issue 21: psnic was never built, and a host without
// containers showed nothing). Only the namespace's name (other tests run
// beside) and the exporter's port are changed.
func TestQuickStart(t *testing.T) {
	netnstest.RequireRoot(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := strings.CutPrefix(string(readme)[strings.Index(string(readme), "## Quick start"):], "## Quick start")
	if !ok {
		t.Fatal("README has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")

	name := "qs" + netnstest.Suffix()
	addr := freeAddr(t)
	demo := strings.NewReplacer("demo", name, "localhost:10054", addr)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})

	clone := cloneWorkingTree(t)
	var exporter *exec.Cmd
	blocks := regexp.MustCompile("(?s)```(sh|console)\n(.*?)```").FindAllStringSubmatch(section, -1)
	for _, b := range blocks {
		if b[1] != "sh" {
			continue
		}
		for _, line := range strings.Split(b[2], "\n") {
			command, _, _ := strings.Cut(line, "  #") // a comment after the command
			command = demo.Replace(strings.TrimSpace(command))
			switch {
			case command == "":
			case strings.HasPrefix(command, "./container_vnic_exporter"): // stays in the foreground
				exporter = exec.Command("bash", "-c", "exec "+command+" --web.listen-address="+addr)
				exporter.Dir = clone
				if err := exporter.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = exporter.Process.Signal(syscall.SIGTERM); _ = exporter.Wait() })
			case strings.HasSuffix(command, "&"): // left running: no pipe to wait on
				background := exec.Command("bash", "-c", command)
				background.Dir = clone
				if err := background.Run(); err != nil {
					t.Fatalf("%s: %v", command, err)
				}
			default:
				run(t, clone, nil, "bash", "-c", command)
			}
		}
	}
	if exporter == nil {
		t.Fatal("the quick start never starts the exporter")
	}
	netnstest.Eventually(t, 30*time.Second, "the exporter to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	// The second terminal: "# command", then what it prints.
	numbers := regexp.MustCompile(`="\d+"`)
	checked := 0
	for _, b := range blocks {
		if b[1] != "console" {
			continue
		}
		var command string
		var want []string
		check := func() {
			if command == "" {
				return
			}
			out := run(t, clone, nil, "bash", "-c", command)
			for _, w := range want { // netns and pid are the machine's
				re := regexp.MustCompile("(?m)^" + numbers.ReplaceAllString(regexp.QuoteMeta(w), `="\d+"`) + "$")
				if !re.MatchString(out) {
					t.Errorf("%s printed\n%s\nwant a line like %q", command, out, w)
				}
			}
			if !strings.Contains(out, "veth-"+name) {
				t.Errorf("%s printed\n%s\nnothing about veth-%s", command, out, name)
			}
			checked++
		}
		for _, line := range strings.Split(strings.TrimSpace(b[2]), "\n") {
			if c, ok := strings.CutPrefix(line, "# "); ok {
				check()
				c, _, _ = strings.Cut(c, "  #")
				command, want = demo.Replace(strings.TrimSpace(c)), nil
			} else {
				want = append(want, demo.Replace(line))
			}
		}
		check()
	}
	if checked < 2 {
		t.Errorf("%d commands checked, want the curl and psnic of the second terminal", checked)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
