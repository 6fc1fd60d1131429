// Package cli parses psnic's command lines: long flags (--name=value,
// --name value, --no-name for booleans), short flags (-o json, -ojson),
// positional arguments anywhere, "--" to end flags, --help and --version.
//
// It follows kingpin's calls and messages, which the exporter keeps, but
// links no text/template or reflection: kingpin's templates keep every
// exported method of every reachable type in the binary, and a one-shot
// command pays for that size at every start (see docs/benchmarks.md).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// App is one command: its flags, its positional arguments and its help.
type App struct {
	Name       string // as given to New, e.g. "psnic watch"
	help       string
	flags      []*Flag
	arg        *Arg
	usage, err io.Writer
	version    func() string
	// HelpFlag is --help; HelpFlag.Short('h') adds -h.
	HelpFlag *Flag
}

// New makes a command with a --help flag.
func New(name, help string) *App {
	a := &App{Name: name, help: help, usage: os.Stdout, err: os.Stderr}
	a.HelpFlag = a.Flag("help", "Show context-sensitive help.")
	a.HelpFlag.Bool()
	return a
}

// UsageWriter is where --help and --version write (stdout by default).
func (a *App) UsageWriter(w io.Writer) *App { a.usage = w; return a }

// ErrorWriter is kept for kingpin's shape: Parse returns errors, it does
// not print them.
func (a *App) ErrorWriter(w io.Writer) *App { a.err = w; return a }

// Version adds --version, printing what v returns (called only then).
func (a *App) Version(v func() string) *App {
	a.version = v
	a.Flag("version", "Show application version.").Bool()
	return a
}

// Flag declares --name; finish it with a value method (String, Bool, ...).
func (a *App) Flag(name, help string) *Flag {
	f := &Flag{name: name, help: help}
	a.flags = append(a.flags, f)
	return f
}

// Arg declares the positional arguments (one kind per command).
func (a *App) Arg(name, help string) *Arg {
	a.arg = &Arg{name: name, help: help}
	return a.arg
}

// ErrExit is returned by Parse once --help or --version has been answered:
// the command should exit 0.
var ErrExit = errors.New("answered --help or --version")

// Parse reads args (without the program name). Errors are one line, in
// kingpin's words, e.g. "unknown long flag '--bogus'".
func (a *App) Parse(args []string) error {
	set := map[*Flag]bool{}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			f, negated := a.long(name)
			if f == nil {
				return fmt.Errorf("unknown long flag '--%s'", name)
			}
			switch {
			case f.isBool && hasValue:
				b, err := strconv.ParseBool(value)
				if err != nil {
					return fmt.Errorf("invalid value %q for flag '--%s': not a boolean", value, f.name)
				}
				value = strconv.FormatBool(b != negated)
			case f.isBool:
				value = strconv.FormatBool(!negated)
			case !hasValue:
				if i+1 == len(args) {
					return fmt.Errorf("expected argument for flag '--%s'", f.name)
				}
				i++
				value = args[i]
			}
			if err := a.apply(f, value, set); err != nil {
				return err
			}
		case len(arg) > 1 && arg[0] == '-':
			f := a.short(rune(arg[1]))
			if f == nil {
				return fmt.Errorf("unknown short flag '-%c'", arg[1])
			}
			value := arg[2:]
			switch {
			case f.isBool && value != "":
				return fmt.Errorf("unknown short flag '-%s'", arg[1:])
			case f.isBool:
				value = "true"
			case value == "":
				if i+1 == len(args) {
					return fmt.Errorf("expected argument for flag '-%c'", f.shortName)
				}
				i++
				value = args[i]
			}
			if err := a.apply(f, value, set); err != nil {
				return err
			}
		default:
			positional = append(positional, arg)
		}
		if set[a.HelpFlag] {
			fmt.Fprint(a.usage, a.Usage())
			return ErrExit
		}
		if a.version != nil && set[a.flag("version")] {
			fmt.Fprintln(a.usage, a.version())
			return ErrExit
		}
	}
	for _, f := range a.flags {
		if !set[f] && f.defaults != nil {
			for _, d := range f.defaults {
				if err := f.set(d); err != nil {
					return fmt.Errorf("default of '--%s': %w", f.name, err)
				}
			}
		}
	}
	if len(positional) > 0 {
		if a.arg == nil || a.arg.values == nil {
			return fmt.Errorf("unexpected %s", positional[0])
		}
		*a.arg.values = positional
	}
	return nil
}

func (a *App) apply(f *Flag, value string, set map[*Flag]bool) error {
	if !set[f] && f.reset != nil {
		f.reset() // a repeated flag replaces its default
	}
	set[f] = true
	if err := f.set(value); err != nil {
		return fmt.Errorf("invalid value %q for flag '--%s': %w", value, f.name, err)
	}
	return nil
}

// long finds --name, or --no-name of a boolean flag.
func (a *App) long(name string) (f *Flag, negated bool) {
	if f := a.flag(name); f != nil {
		return f, false
	}
	if rest, ok := strings.CutPrefix(name, "no-"); ok {
		if f := a.flag(rest); f != nil && f.isBool {
			return f, true
		}
	}
	return nil, false
}

func (a *App) flag(name string) *Flag {
	for _, f := range a.flags {
		if f.name == name && f.set != nil {
			return f
		}
	}
	return nil
}

func (a *App) short(r rune) *Flag {
	for _, f := range a.flags {
		if f.shortName == r && r != 0 && f.set != nil {
			return f
		}
	}
	return nil
}

// Usage is the --help text.
func (a *App) Usage() string {
	var b strings.Builder
	b.WriteString("usage: " + a.Name + " [<flags>]")
	if a.arg != nil {
		b.WriteString(" [<" + a.arg.name + ">...]")
	}
	b.WriteString("\n\n" + a.help + "\n\nFlags:\n")
	left := make([]string, len(a.flags))
	width := 0
	for i, f := range a.flags {
		s := "    "
		if f.shortName != 0 {
			s = "-" + string(f.shortName) + ", "
		}
		s += "--" + f.name
		switch {
		case f.isBool:
		case f.placeholder != "":
			s += "=" + f.placeholder
		case len(f.defaults) == 1:
			s += "=" + strconv.Quote(f.defaults[0])
		default:
			s += "=" + strings.ToUpper(f.name)
		}
		left[i] = s
		width = max(width, len(s))
	}
	for i, f := range a.flags {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, left[i], f.help)
	}
	if a.arg != nil {
		fmt.Fprintf(&b, "\nArgs:\n  [<%s>]  %s\n", a.arg.name, a.arg.help)
	}
	return b.String()
}

// Flag is one flag being declared.
type Flag struct {
	name, help  string
	shortName   rune
	defaults    []string
	placeholder string
	isBool      bool
	set         func(string) error
	reset       func()
}

// Short adds a one-letter form, -r.
func (f *Flag) Short(r rune) *Flag { f.shortName = r; return f }

// Default is the value when the flag is not given.
func (f *Flag) Default(values ...string) *Flag { f.defaults = values; return f }

// PlaceHolder names the value in --help.
func (f *Flag) PlaceHolder(p string) *Flag { f.placeholder = p; return f }

// String is a flag with a text value; given again, the last one counts.
func (f *Flag) String() *string {
	v := new(string)
	f.set = func(s string) error { *v = s; return nil }
	return v
}

// Strings is a repeatable flag; each use adds a value.
func (f *Flag) Strings() *[]string {
	v := new([]string)
	f.set = func(s string) error { *v = append(*v, s); return nil }
	f.reset = func() { *v = nil }
	return v
}

// Enum is a flag whose value must be one of options.
func (f *Flag) Enum(options ...string) *string {
	v := new(string)
	f.set = func(s string) error {
		for _, o := range options {
			if s == o {
				*v = s
				return nil
			}
		}
		return fmt.Errorf("enum value must be one of %s, got '%s'", strings.Join(options, ","), s)
	}
	return v
}

// Bool is a flag without a value: --name, or --no-name.
func (f *Flag) Bool() *bool {
	v := new(bool)
	f.isBool = true
	f.set = func(s string) error {
		b, err := strconv.ParseBool(s)
		*v = b
		return err
	}
	return v
}

// Int is a flag with a decimal integer value.
func (f *Flag) Int() *int {
	v := new(int)
	f.set = func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("not an integer")
		}
		*v = n
		return nil
	}
	return v
}

// Duration is a flag with a Go duration value, e.g. 300ms or 1m30s.
func (f *Flag) Duration() *time.Duration {
	v := new(time.Duration)
	f.set = func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("not a duration (e.g. 300ms, 10s, 1m)")
		}
		*v = d
		return nil
	}
	return v
}

// Arg is the positional arguments being declared.
type Arg struct {
	name, help string
	values     *[]string
}

// Strings collects every positional argument.
func (a *Arg) Strings() *[]string {
	a.values = new([]string)
	return a.values
}
