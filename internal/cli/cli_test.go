package cli

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// testApp declares one flag of each kind, as psnic and psnic watch do.
type testApp struct {
	app     *App
	out     *bytes.Buffer
	output  *string
	all     *bool
	procfs  *string
	kinds   *[]string
	timeout *time.Duration
	buffer  *int
	args    *[]string
}

func newTestApp() *testApp {
	t := &testApp{out: &bytes.Buffer{}}
	t.app = New("cmd", "Does things.")
	t.app.UsageWriter(t.out)
	t.app.HelpFlag.Short('h')
	t.output = t.app.Flag("output", "Format.").Short('o').Default("text").Enum("text", "json")
	t.all = t.app.Flag("all", "Everything.").Bool()
	t.procfs = t.app.Flag("path.procfs", "procfs.").Default("/proc").String()
	t.kinds = t.app.Flag("kind", "Kinds (repeatable).").PlaceHolder("KIND").Default("veth").Strings()
	t.timeout = t.app.Flag("timeout", "Timeout.").Default("10s").Duration()
	t.buffer = t.app.Flag("buffer", "Bytes.").Default("4096").Int()
	t.args = t.app.Arg("pid", "Process IDs.").Strings()
	t.app.Version(func() string { return "cmd, version 1.2.3" })
	return t
}

func TestParse(t *testing.T) {
	type want struct {
		output, procfs string
		all            bool
		kinds, args    []string
		timeout        time.Duration
		buffer         int
	}
	defaults := want{output: "text", procfs: "/proc", kinds: []string{"veth"}, timeout: 10 * time.Second, buffer: 4096}
	with := func(f func(*want)) want { w := defaults; f(&w); return w }
	for _, tc := range []struct {
		args []string
		want want
	}{
		{nil, defaults},
		{[]string{"12", "34"}, with(func(w *want) { w.args = []string{"12", "34"} })},
		{[]string{"-o", "json", "12"}, with(func(w *want) { w.output = "json"; w.args = []string{"12"} })},
		{[]string{"-ojson"}, with(func(w *want) { w.output = "json" })},
		{[]string{"--output=json"}, with(func(w *want) { w.output = "json" })},
		{[]string{"12", "--output", "json", "34"}, with(func(w *want) { w.output = "json"; w.args = []string{"12", "34"} })},
		{[]string{"--all"}, with(func(w *want) { w.all = true })},
		{[]string{"--all", "--no-all"}, defaults},
		{[]string{"--all=false"}, defaults},
		{[]string{"--path.procfs", "/host/proc"}, with(func(w *want) { w.procfs = "/host/proc" })},
		{[]string{"--path.procfs=/a", "--path.procfs=/b"}, with(func(w *want) { w.procfs = "/b" })},
		// A repeatable flag given replaces its default, then accumulates.
		{[]string{"--kind", "macvlan", "--kind=vlan"}, with(func(w *want) { w.kinds = []string{"macvlan", "vlan"} })},
		{[]string{"--timeout=300ms", "--buffer", "8"}, with(func(w *want) { w.timeout = 300 * time.Millisecond; w.buffer = 8 })},
		// After "--" everything is positional, dashes included; "-" alone always is.
		{[]string{"--", "-7", "--all"}, with(func(w *want) { w.args = []string{"-7", "--all"} })},
		{[]string{"-"}, with(func(w *want) { w.args = []string{"-"} })},
		{[]string{"--path.procfs", "--all"}, with(func(w *want) { w.procfs = "--all" })},
	} {
		a := newTestApp()
		if err := a.app.Parse(tc.args); err != nil {
			t.Errorf("Parse(%q): %v", tc.args, err)
			continue
		}
		got := want{*a.output, *a.procfs, *a.all, *a.kinds, *a.args, *a.timeout, *a.buffer}
		if got.output != tc.want.output || got.procfs != tc.want.procfs || got.all != tc.want.all ||
			!slices.Equal(got.kinds, tc.want.kinds) || !slices.Equal(got.args, tc.want.args) ||
			got.timeout != tc.want.timeout || got.buffer != tc.want.buffer {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
		if a.out.Len() != 0 {
			t.Errorf("Parse(%q) wrote %q", tc.args, a.out)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown long flag '--bogus'"},
		{[]string{"--no-output"}, "unknown long flag '--no-output'"},
		{[]string{"-x"}, "unknown short flag '-x'"},
		{[]string{"-7"}, "unknown short flag '-7'"},
		{[]string{"-hx"}, "unknown short flag '-hx'"},
		{[]string{"-o", "yaml"}, "invalid value \"yaml\" for flag '--output': enum value must be one of text,json, got 'yaml'"},
		{[]string{"--output"}, "expected argument for flag '--output'"},
		{[]string{"12", "-o"}, "expected argument for flag '-o'"},
		{[]string{"--buffer=many"}, "invalid value \"many\" for flag '--buffer': not an integer"},
		{[]string{"--timeout", "soon"}, "invalid value \"soon\" for flag '--timeout': not a duration (e.g. 300ms, 10s, 1m)"},
		{[]string{"--all=maybe"}, "invalid value \"maybe\" for flag '--all': not a boolean"},
	} {
		a := newTestApp()
		err := a.app.Parse(tc.args)
		if err == nil || err.Error() != tc.want || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
	// Without declared arguments a positional one is an error.
	a := New("cmd", "")
	if err := a.Parse([]string{"12"}); err == nil || err.Error() != "unexpected 12" {
		t.Errorf("Parse without Arg: %v, want unexpected 12", err)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"12", "--help", "--bogus"}} {
		a := newTestApp()
		if err := a.app.Parse(args); !errors.Is(err, ErrExit) {
			t.Errorf("Parse(%q) = %v, want ErrExit", args, err)
		}
		want := `usage: cmd [<flags>] [<pid>...]

Does things.

Flags:
  -h, --help                 Show context-sensitive help.
  -o, --output="text"        Format.
      --all                  Everything.
      --path.procfs="/proc"  procfs.
      --kind=KIND            Kinds (repeatable).
      --timeout="10s"        Timeout.
      --buffer="4096"        Bytes.
      --version              Show application version.

Args:
  [<pid>]  Process IDs.
`
		if a.out.String() != want {
			t.Errorf("Parse(%q) printed\n%s\nwant\n%s", args, a.out, want)
		}
	}
	a := newTestApp()
	if err := a.app.Parse([]string{"--version"}); !errors.Is(err, ErrExit) || a.out.String() != "cmd, version 1.2.3\n" {
		t.Errorf("--version: %v, printed %q", err, a.out)
	}
	// The version text is made only when asked for.
	b := New("cmd", "")
	b.Version(func() string { t.Error("version text made without --version"); return "" })
	if err := b.Parse(nil); err != nil {
		t.Error(err)
	}
}
