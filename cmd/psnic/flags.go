package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Command lines are parsed by the standard flag package: measured, it costs
// psnic's start-up nothing that the hand-written parser it replaced saved
// (docs/benchmarks.md), while kingpin, which the exporter keeps, links
// text/template (see deps_test.go).

// flagSet is a command's flags and its --help.
type flagSet struct {
	*flag.FlagSet
	help func()
}

// newFlagSet makes a flag set whose errors are returned, not printed, and
// whose --help prints help and the flags to stdout.
func newFlagSet(name, help string, stdout io.Writer) flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // on errors too: parseFlags says what went wrong in one line
	return flagSet{fs, func() {
		fmt.Fprintf(stdout, "usage: %s [flags]\n\n%s\n\nFlags (-name or --name):\n", name, help)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}}
}

// parseFlags parses args with fs, flags and positional arguments in any
// order ("--" ends the flags). done is true when the command must end now
// with code: a usage error (one line on stderr), or --help answered.
func parseFlags(fs flagSet, args []string, stderr io.Writer) (positional []string, code int, done bool) {
	for {
		switch err := fs.Parse(args); {
		case err == flag.ErrHelp:
			fs.help()
			return nil, exitOK, true
		case err != nil:
			fmt.Fprintf(stderr, "%s: %v (see %s --help)\n", fs.Name(), err, fs.Name())
			return nil, exitUsage, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, exitOK, false
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(positional, rest...), exitOK, false
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// oneOf is a flag whose value must be one of a few words.
type oneOf struct {
	value   string
	allowed []string
}

func (o *oneOf) String() string { return o.value }

func (o *oneOf) Set(v string) error {
	for _, a := range o.allowed {
		if v == a {
			o.value = v
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(o.allowed, ", "))
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }
