// Command psnic prints the host-side virtual NICs of processes' network
// namespaces.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	containervnicexporter "github.com/container-vnic/container_vnic_exporter"
	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/cli"
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
	app := cli.New("psnic", helpExitText)
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	var (
		output   = app.Flag("output", "Output format: text or json.").Short('o').Default("text").Enum("text", "json")
		all      = app.Flag("all", "Resolve every network namespace other than the host's.").Bool()
		procfs   = app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").String()
		pidsText = app.Arg("pid", "Process IDs.").Strings()
	)
	app.Version(func() string { return containervnicexporter.Print("psnic") })
	if code, done := parse(app, args, stderr); done {
		return code
	}
	pids, err := parsePIDs(*pidsText)
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

	identity := cgroupid.NewLookup(*procfs)
	var rows []row
	code := exitOK
	if *all {
		snap, err := r.ResolveAll()
		if err != nil {
			fmt.Fprintf(stderr, "psnic: %v\n", err)
			return exitFailed
		}
		for _, ns := range snap.Namespaces {
			rows = appendRows(rows, ns, identity)
		}
		for cause, n := range snap.Failed {
			fmt.Fprintf(stderr, "psnic: %d namespace(s) not resolved: %s\n", n, cause)
			code = exitFailed
		}
		if snap.Blind {
			fmt.Fprintf(stderr, "psnic: %d of %d processes skipped (%s): permission denied without CAP_SYS_PTRACE, so their namespaces are missing (run as root, or grant CAP_SYS_PTRACE)\n",
				snap.Walk.Skipped[vnic.CauseNoPtrace], snap.Walk.Processes, vnic.CauseNoPtrace)
			code = exitFailed
		}
		if n := snap.Walk.Skipped[vnic.CauseProtected]; n > 0 { // not a failure: nothing would help
			fmt.Fprintf(stderr, "psnic: %d of %d processes skipped (%s): refused although psnic holds CAP_SYS_PTRACE (a security module, or an outer user namespace; no capability helps)\n",
				n, snap.Walk.Processes, vnic.CauseProtected)
		}
	} else {
		for _, pid := range pids {
			ns, err := r.ResolvePID(pid)
			if err != nil {
				fmt.Fprintf(stderr, "psnic: %v\n", err)
				code = exitFailed
				continue
			}
			rows = appendRows(rows, ns, identity)
		}
	}
	if err := write(stdout, rows, *output, *all || len(pids) > 1); err != nil {
		fmt.Fprintf(stderr, "psnic: writing output: %v\n", err)
		return exitFailed
	}
	return code
}

// newFailed is the exit code for a resolver that could not be made: a bad
// --path.procfs is a usage error, anything else a failure.
func newFailed(err error) int {
	if errors.Is(err, vnic.ErrProcfs) {
		return exitUsage
	}
	return exitFailed
}

// parse parses args with app. done is true when the command must end now,
// with code: a usage error, or --help or --version answered.
func parse(app *cli.App, args []string, stderr io.Writer) (code int, done bool) {
	app.HelpFlag.Short('h')
	switch err := app.Parse(args); {
	case errors.Is(err, cli.ErrExit):
		return exitOK, true
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v (see %s --help)\n", app.Name, err, app.Name)
		return exitUsage, true
	}
	return exitOK, false
}

// parsePIDs checks every argument is a PID; repeated PIDs are resolved once.
func parsePIDs(args []string) ([]int, error) {
	var pids []int
	seen := map[int]bool{}
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err != nil || pid <= 0 || pid > maxPID {
			if errors.Is(err, strconv.ErrRange) || err == nil {
				return nil, fmt.Errorf("pid %q: out of range (PIDs run from 1 to %d)", a, maxPID)
			}
			return nil, fmt.Errorf("pid %q: not a number (give decimal process IDs)", a)
		}
		if !seen[pid] {
			seen[pid] = true
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func appendRows(rows []row, ns vnic.Netns, identity *cgroupid.Lookup) []row {
	// A process gone since it was resolved has no identity left to tell.
	id, _ := identity.Identity(ns.Inode, ns.PID)
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
		rows = out
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	for _, r := range rows {
		var err error
		if prefixPID {
			_, err = fmt.Fprintf(w, "%d %s\n", r.PID, r.HostIfname)
		} else {
			_, err = fmt.Fprintln(w, r.HostIfname)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
