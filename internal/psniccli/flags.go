// Package psniccli is what psnic's two binaries share: `psnic` (PID and
// --all) and `psnic-watch` (`psnic watch`, which psnic runs in its place).
// Their flags, exit codes and JSON are one.
package psniccli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// Exit codes, documented in --help and docs/psnic.md.
const (
	ExitOK     = 0 // every PID resolved; a watch stopped by SIGTERM or SIGINT
	ExitFailed = 1 // at least one PID could not be resolved; a watch cannot get notifications
	ExitUsage  = 2 // bad flags or arguments
)

// NewFailed is the exit code for a resolver that could not be made: a bad
// --path.procfs is a usage error, anything else a failure.
func NewFailed(err error) int {
	if errors.Is(err, vnic.ErrProcfs) {
		return ExitUsage
	}
	return ExitFailed
}

// Command lines are parsed by the standard flag package: measured, it costs
// psnic's start-up nothing that the hand-written parser it replaced saved
// (docs/benchmarks.md), while kingpin, which the exporter keeps, links
// text/template (see deps_test.go).

// FlagSet is a command's flags and its --help.
type FlagSet struct {
	*flag.FlagSet
	help func()
}

// NewFlagSet makes a flag set whose errors are returned, not printed, and
// whose --help prints help and the flags to stdout.
func NewFlagSet(name, help string, stdout io.Writer) FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // on errors too: ParseFlags says what went wrong in one line
	return FlagSet{fs, func() {
		fmt.Fprintf(stdout, "usage: %s [flags]\n\n%s\n\nFlags (-name or --name):\n", name, help)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}}
}

// ParseFlags parses args with fs, flags and positional arguments in any
// order ("--" ends the flags). done is true when the command must end now
// with code: a usage error (one line on stderr), or --help answered.
func ParseFlags(fs FlagSet, args []string, stderr io.Writer) (positional []string, code int, done bool) {
	for {
		switch err := fs.Parse(args); {
		case err == flag.ErrHelp:
			fs.help()
			return nil, ExitOK, true
		case err != nil:
			fmt.Fprintf(stderr, "%s: %v (see %s --help)\n", fs.Name(), err, fs.Name())
			return nil, ExitUsage, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, ExitOK, false
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(positional, rest...), ExitOK, false
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// OneOf is a flag whose value must be one of a few words.
type OneOf struct {
	Value   string
	Allowed []string
}

// String is the value (flag.Value).
func (o *OneOf) String() string { return o.Value }

// Set takes v if it is one of the allowed words (flag.Value).
func (o *OneOf) Set(v string) error {
	for _, a := range o.Allowed {
		if v == a {
			o.Value = v
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(o.Allowed, ", "))
}

// List is a repeatable string flag.
type List []string

// String is the values, comma-separated (flag.Value).
func (l *List) String() string { return strings.Join(*l, ",") }

// Set appends v (flag.Value).
func (l *List) Set(v string) error { *l = append(*l, v); return nil }
