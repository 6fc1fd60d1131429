package containervnicexporter_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	containervnicexporter "github.com/container-vnic/container_vnic_exporter"
	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

func TestVersionIsTheVersionFile(t *testing.T) {
	b, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(b))
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`).MatchString(want) {
		t.Fatalf("VERSION holds %q, not a semantic version", want)
	}
	if got := containervnicexporter.Version(); got != want {
		t.Errorf("Version() = %q, VERSION holds %q", got, want)
	}
}

// Every documented way of building reports VERSION and the git revision: a
// plain `go build` (Go's default -buildvcs=auto, as on a user's machine),
// `go run -buildvcs=true` and `make build` (the release
// build, also the image's binaries). It builds in a clone of this checkout
// with the working tree's files copied over, so uncommitted changes are
// built too and the revision is HEAD's, "-modified" when they differ.
func TestBuildsReportVersionAndRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the commands three times")
	}
	for _, tool := range []string{"git", "go", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: %v", tool, err)
		}
	}
	version := containervnicexporter.Version()
	clone := cloneWorkingTree(t)
	head := strings.TrimSpace(run(t, clone, nil, "git", "rev-parse", "HEAD"))
	revision := head
	if strings.TrimSpace(run(t, clone, nil, "git", "status", "--porcelain")) != "" {
		revision += "-modified"
	}
	// This machine's go env may turn VCS stamping off; a user's does not.
	userEnv := []string{"GOFLAGS=-buildvcs=auto", "CGO_ENABLED=0"}
	want := regexp.MustCompile(`(?m)^psnic, version ` + regexp.QuoteMeta(version) +
		` \(branch: [^,]*, revision: ` + regexp.QuoteMeta(revision) + `\)$`)

	bin := t.TempDir()
	run(t, clone, userEnv, "go", "build", "-o", bin+"/", "./cmd/psnic", "./cmd/container_vnic_exporter")
	if out := run(t, clone, nil, filepath.Join(bin, "psnic"), "--version"); !want.MatchString(out) {
		t.Errorf("go build: psnic --version printed\n%s\nwant version %s, revision %s", out, version, revision)
	}
	checkBuildInfo(t, "go build", filepath.Join(bin, "container_vnic_exporter"), version, revision)

	if out := run(t, clone, userEnv, "go", "run", "-buildvcs=true", "./cmd/psnic", "--version"); !want.MatchString(out) {
		t.Errorf("go run -buildvcs=true: psnic --version printed\n%s\nwant version %s, revision %s", out, version, revision)
	}

	release := t.TempDir()
	run(t, clone, nil, "make", "build", "BUILD="+release)
	out := run(t, clone, nil, filepath.Join(release, "psnic"), "--version")
	if !want.MatchString(out) || !strings.Contains(out, "tags:             netgo") {
		t.Errorf("make build: psnic --version printed\n%s\nwant version %s, revision %s, tags netgo", out, version, revision)
	}
	if strings.Contains(out, "build date:       \n") {
		t.Errorf("make build: no build date in\n%s", out)
	}
	checkBuildInfo(t, "make build", filepath.Join(release, "container_vnic_exporter"), version, revision)
}

// The build flags are written once, in .promu.yml: the Makefile writes none
// of its own and `make build` passes exactly .promu.yml's -X variables, each
// filled in, and its tags.
func TestMakefileTakesBuildFlagsFromPromu(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make not found: %v", err)
	}
	promu, err := os.ReadFile(".promu.yml")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	xvar := regexp.MustCompile(`-X (\S+?)=(\S*)`)
	var want []string
	for _, m := range xvar.FindAllSubmatch(promu, -1) {
		want = append(want, string(m[1]))
	}
	tags := regexp.MustCompile(`(?m)^      - (\S+)$`).FindAllSubmatch(promu, -1)
	if len(want) == 0 || len(tags) == 0 {
		t.Fatalf(".promu.yml has %d -X flags and %d tags, want some of each", len(want), len(tags))
	}
	if m := xvar.Find(mk); m != nil {
		t.Errorf("the Makefile writes its own ldflag %q: it belongs in .promu.yml", m)
	}
	var wantTags []string
	for _, tag := range tags {
		wantTags = append(wantTags, string(tag[1]))
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(string(tag[1])) + `\b`).Match(mk) {
			t.Errorf("the Makefile names the tag %s: tags belong in .promu.yml", tag[1])
		}
	}

	cmdline := run(t, ".", nil, "make", "--no-print-directory", "-n", "build", "BUILD="+t.TempDir())
	var got []string
	for _, m := range xvar.FindAllStringSubmatch(cmdline, -1) {
		got = append(got, m[1])
		if m[2] == "" || strings.Contains(m[2], "{{") {
			t.Errorf("make build sets %s to %q, want a value", m[1], m[2])
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("make build sets %q, .promu.yml %q", got, want)
	}
	if tagFlag := "-tags '" + strings.Join(wantTags, ",") + "'"; !strings.Contains(cmdline, tagFlag) {
		t.Errorf("make build runs\n%s\nwant %s", cmdline, tagFlag)
	}
}

// The DaemonSet runs the image `make image` builds and `make push` pushes.
func TestDaemonSetNamesTheImageMakeBuilds(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile sets no default IMAGE")
	}
	want := string(m[1]) + ":v" + containervnicexporter.Version()
	ds, err := os.ReadFile(filepath.Join("examples", "kubernetes", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s*image:\s*(\S+)\s*$`).FindAllSubmatch(ds, -1)
	if len(images) != 1 || string(images[0][1]) != want {
		t.Errorf("daemonset.yaml images %q, want exactly %s (Makefile IMAGE:vVERSION)", images, want)
	}
}

func cloneWorkingTree(t *testing.T) string {
	t.Helper()
	top := strings.TrimSpace(run(t, ".", nil, "git", "rev-parse", "--show-toplevel"))
	clone := filepath.Join(t.TempDir(), "checkout")
	run(t, ".", nil, "git", "clone", "--quiet", "--shared", top, clone)
	files := run(t, top, nil, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, f := range strings.Split(strings.TrimRight(files, "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(top, f))
		if os.IsNotExist(err) { // deleted in the working tree
			os.Remove(filepath.Join(clone, f))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(top, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(clone, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(clone, f), b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return clone
}

// checkBuildInfo starts the exporter and looks for its build_info series.
func checkBuildInfo(t *testing.T, how, exporter, version, revision string) {
	t.Helper()
	netnstest.RequireRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(exporter, "--web.listen-address="+addr)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var body string
	netnstest.Eventually(t, 10*time.Second, how+": exporter to answer /metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	var line string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "container_vnic_exporter_build_info{") {
			line = l
		}
	}
	if !strings.Contains(line, `version="`+version+`"`) || !strings.Contains(line, `revision="`+revision+`"`) {
		t.Errorf("%s: build_info is %q, want version=%q revision=%q\nexporter stderr:\n%s", how, line, version, revision, stderr.String())
	}
}

// run runs a command in dir and returns its stdout and stderr together.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
