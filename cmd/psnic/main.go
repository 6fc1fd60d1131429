// Command psnic prints the host-side virtual NICs of processes' network
// namespaces.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	containervnicexporter "github.com/container-vnic/container_vnic_exporter"
	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

// Exit codes, documented in --help and docs/psnic.md.
const (
	exitOK       = 0         // every PID resolved
	exitFailed   = 1         // at least one PID could not be resolved
	exitUsage    = 2         // bad flags or arguments
	maxPID       = 1<<22 - 1 // PID_MAX_LIMIT is 1<<22: the highest PID is one less
	helpExitText = `Prints the host-side virtual NIC (veth, or the parent of a macvlan) of each
interface of a process's network namespace.

  psnic PID          one host ifname per line
  psnic PID PID...   "PID HOST_IFNAME" per line
  psnic --all        every namespace other than the host's, once each
  psnic watch        a stream of changes (see psnic watch --help)

Exit status: 0 every PID resolved; 1 at least one PID failed (one line on
stderr each, naming the PID and the cause); 2 usage error.
Needs root, or CAP_SYS_PTRACE (to open other processes' namespaces) and
CAP_NET_ADMIN (to query them).`
)

// row is one line of output: a container interface and its host end, and
// the container the PID is in (empty where its cgroup layout is unknown).
type row = vnicwatch.Row

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "watch" {
		return runWatch(args[1:], stdout, stderr)
	}
	fs := newFlagSet("psnic", helpExitText, stdout)
	output := &oneOf{"text", []string{"text", "json"}}
	fs.Var(output, "o", "Output format: text or json.")
	fs.Var(output, "output", "Output format: text or json (-o).")
	all := fs.Bool("all", false, "Resolve every network namespace other than the host's.")
	procfs := fs.String("path.procfs", "/proc", "procfs mountpoint.")
	version := fs.Bool("version", false, "Show the version and exit.")
	pidsText, code, done := parseFlags(fs, args, stderr)
	if done {
		return code
	}
	if *version {
		fmt.Fprintln(stdout, containervnicexporter.Print("psnic"))
		return exitOK
	}
	pids, err := parsePIDs(pidsText)
	if err != nil {
		fmt.Fprintf(stderr, "psnic: %v\n", err)
		return exitUsage
	}
	if *all == (len(pids) > 0) {
		fmt.Fprintln(stderr, "psnic: give either PIDs or --all (see psnic --help)")
		return exitUsage
	}
	// One answer, not a series of scrapes: no notification cache.
	r, err := vnic.New(vnic.Options{ProcfsPath: *procfs, NoCache: true})
	if err != nil {
		fmt.Fprintf(stderr, "psnic: %v\n", err)
		return newFailed(err)
	}
	defer r.Close()

	// The text output has no column for the container: reading cgroups for
	// it would be start-up time spent on nothing.
	var identity *cgroupid.Lookup
	if output.value == "json" {
		identity = cgroupid.NewLookup(*procfs)
	}
	var rows []row
	if *all {
		rows, code = resolveAll(r, identity, stderr)
	} else {
		rows, code = resolvePIDs(r, pids, identity, stderr)
	}
	if err := write(stdout, rows, output.value, *all || len(pids) > 1); err != nil {
		fmt.Fprintf(stderr, "psnic: writing output: %v\n", err)
		return exitFailed
	}
	return code
}

// resolveAll resolves every namespace but the host's (--all), saying on
// stderr what could not be resolved. It and resolvePIDs are functions of
// their own, not branches of run, so that neither's locals sit on the
// other's stack: run's frame is below every link parsed, and a stack deeper
// than the goroutine's first one costs a copy and fresh pages at every
// start (docs/psnic.md, "Start-up").
func resolveAll(r *vnic.Resolver, identity *cgroupid.Lookup, stderr io.Writer) (rows []row, code int) {
	snap, err := r.ResolveAll()
	if err != nil {
		fmt.Fprintf(stderr, "psnic: %v\n", err)
		return nil, exitFailed
	}
	for _, ns := range snap.Namespaces {
		rows = appendRows(rows, ns, identity)
	}
	for _, o := range snap.Omissions() {
		fmt.Fprintf(stderr, "psnic: %s\n", o.Text)
		code = exitFailed
	}
	if n := snap.Walk.Skipped[vnic.CauseProtected]; n > 0 { // not a failure: nothing would help
		fmt.Fprintf(stderr, "psnic: %d of %d processes skipped (%s): refused although psnic holds CAP_SYS_PTRACE (a security module, or an outer user namespace; no capability helps)\n",
			n, snap.Walk.Processes, vnic.CauseProtected)
	}
	return rows, code
}

// resolvePIDs resolves each PID, one line on stderr for each that fails.
func resolvePIDs(r *vnic.Resolver, pids []int, identity *cgroupid.Lookup, stderr io.Writer) (rows []row, code int) {
	for _, pid := range pids {
		ns, err := r.ResolvePID(pid)
		if err != nil {
			fmt.Fprintf(stderr, "psnic: %v\n", err)
			code = exitFailed
			continue
		}
		rows = appendRows(rows, ns, identity)
	}
	return rows, code
}

// newFailed is the exit code for a resolver that could not be made: a bad
// --path.procfs is a usage error, anything else a failure.
func newFailed(err error) int {
	if errors.Is(err, vnic.ErrProcfs) {
		return exitUsage
	}
	return exitFailed
}

// parsePIDs checks every argument is a PID; repeated PIDs are resolved once.
// A PID is ASCII decimal digits, leading zeros allowed (05 is 5, as kill(1)
// reads it). A plus sign, a space, a base prefix or any other byte make it
// "not a number"; a minus before digits is a number, out of range.
func parsePIDs(args []string) ([]int, error) {
	var pids []int
	for _, a := range args {
		if !decimal(strings.TrimPrefix(a, "-")) {
			return nil, fmt.Errorf("pid %q: not a number (give decimal process IDs: digits only)", a)
		}
		pid, err := strconv.Atoi(a)
		if err != nil || pid <= 0 || pid > maxPID {
			return nil, fmt.Errorf("pid %q: out of range (PIDs run from 1 to %d)", a, maxPID)
		}
		if !slices.Contains(pids, pid) { // a command line is short: no map to build
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// decimal reports whether s is one or more ASCII digits.
func decimal(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func appendRows(rows []row, ns vnic.Netns, identity *cgroupid.Lookup) []row {
	// A process gone since it was resolved has no identity left to tell.
	var id cgroupid.Identity
	if identity != nil {
		pid := ns.PID
		if ns.Thread != 0 { // its main thread exited: the container's cgroup is its thread's
			pid = ns.Thread
		}
		id, _ = identity.Identity(ns.Inode, pid)
	}
	for _, v := range ns.VNICs {
		rows = append(rows, vnicwatch.NewRow(ns.Inode, ns.PID, v, id))
	}
	return rows
}

func write(w io.Writer, rows []row, format string, prefixPID bool) error {
	if format == "json" {
		out := make([]row, 0, len(rows))
		for _, r := range rows {
			out = append(out, r.Escaped())
		}
		_, err := w.Write(appendRowsJSON(nil, out))
		return err
	}
	for _, r := range rows {
		line := r.HostIfname
		if prefixPID {
			line = strconv.Itoa(r.PID) + " " + line
		}
		if r.Kind != "veth" {
			// A stacked link's host end is its parent, the host's shared
			// interface, not the container's own: never a bare name.
			line += " (" + r.Kind + " parent)"
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}
