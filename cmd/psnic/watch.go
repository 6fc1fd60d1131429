package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

const watchHelp = `Prints every container vNIC, then one line per change as it happens:
"present" for each vNIC at start, then "added", "changed" (renamed, peer
moved, oldest process changed) and "removed". Driven by link and namespace-id
notifications and process fork/exec/exit events (proc connector), each
re-resolving only the namespace it concerns; a periodic resync is the
backstop.

Filters (each may be repeated; a vNIC must match every kind of filter
given): --kind (link kind of the container end: veth, macvlan, macvtap,
ipvlan, ipvtap or vlan), --host-ifname and --container-ifname (shell patterns),
--runtime (docker, containerd, cri-o, podman; "" for none known). A vNIC
renamed into or out of a filter is "added" or "removed".

--exec CMD [ARGS...] comes last: every argument after CMD is CMD's. It runs
for each line, one at a time, with the change in the environment:
PSNIC_EVENT, PSNIC_TIME, PSNIC_PID, PSNIC_NETNS, PSNIC_CONTAINER_IFNAME,
PSNIC_CONTAINER_IFINDEX, PSNIC_HOST_IFNAME, PSNIC_HOST_IFINDEX, PSNIC_KIND,
PSNIC_CONTAINER_ID, PSNIC_POD_UID, PSNIC_RUNTIME, and for "changed"
PSNIC_OLD_HOST_IFNAME, PSNIC_OLD_CONTAINER_IFNAME, PSNIC_OLD_HOST_IFINDEX,
PSNIC_OLD_PID. With --exec, only veths are passed unless --kind or
--include-parents says otherwise: a stacked link's host end is a shared
interface (the host's NIC under a macvlan). A failing command is reported
on stderr and the stream goes on. The command's stdout and stderr go to
psnic's stderr (stdout is the stream). It runs in its own process group,
killed whole at --exec-timeout and when the watch stops.

SIGTERM or SIGINT stop it within about a second: the running command is
killed, queued changes are dropped (counted on stderr). Ends with exit
status 0 on SIGTERM or SIGINT; 1 when the notifications
cannot be had (needs CAP_NET_ADMIN and CAP_NET_BROADCAST); 2 on usage errors
(including an --exec command that cannot be run).`

// change is one line of the stream.
type change struct {
	Event string `json:"event"`
	Time  string `json:"time"`
	row
	Old *row `json:"old,omitempty"`
}

// splitExec takes "--exec CMD ARGS..." (or -exec, as every flag may have one
// dash) off the end of args: the flag parser would read ARGS as psnic's
// flags ("unknown short flag '-c'" for sh -c). A "--" right after CMD is
// dropped.
func splitExec(args []string) (rest []string, cmd string, cmdArgs []string, found bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		flag := a // -exec, or --exec with one dash taken off
		if strings.HasPrefix(flag, "--") {
			flag = flag[1:]
		}
		if v, ok := strings.CutPrefix(flag, "-exec="); ok {
			cmd, cmdArgs = v, args[i+1:]
		} else if flag == "-exec" && i+1 < len(args) {
			cmd, cmdArgs = args[i+1], args[i+2:]
		} else {
			continue
		}
		if len(cmdArgs) > 0 && cmdArgs[0] == "--" {
			cmdArgs = cmdArgs[1:]
		}
		return args[:i], cmd, cmdArgs, true
	}
	return args, "", nil, false
}

func runWatch(args []string, stdout, stderr io.Writer) int {
	args, execCmd, execArgs, withExec := splitExec(args)
	fs := newFlagSet("psnic watch", watchHelp, stdout)
	output := &oneOf{"json", []string{"text", "json"}}
	fs.Var(output, "o", "Output format: json or text.")
	fs.Var(output, "output", "Output format: json or text (-o).")
	procfs := fs.String("path.procfs", "/proc", "procfs mountpoint.")
	execTimeout := fs.Duration("exec-timeout", 10*time.Second, "Time a --exec command may take before it is killed.")
	resync := fs.Duration("resync-interval", 30*time.Second, "Full re-resolution even without events (a backstop).")
	eventBuffer := fs.Int("event-buffer", vnic.DefaultEventBuffer, "Receive buffer of the notification socket, bytes.")
	var kinds, hostNames, contNames, runtimes list
	fs.Var(&kinds, "kind", "Only vNICs whose container end is of this link kind (repeatable).")
	includeParents := fs.Bool("include-parents", false, "With --exec, pass stacked links too (their host end is a shared parent).")
	fs.Var(&hostNames, "host-ifname", "Only vNICs whose host end matches this shell pattern (repeatable).")
	fs.Var(&contNames, "container-ifname", "Only vNICs whose container end matches this shell pattern (repeatable).")
	fs.Var(&runtimes, "runtime", "Only vNICs of containers of this runtime (repeatable).")
	fs.String("exec", "", "`CMD [ARGS...]` to run for each change, with its arguments after it (comes last).")
	stray, code, done := parseFlags(fs, args, stderr)
	if done {
		return code
	}
	if len(stray) > 0 {
		fmt.Fprintf(stderr, "psnic watch: unexpected argument %q (see psnic watch --help)\n", stray[0])
		return exitUsage
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"exec-timeout", *execTimeout}, {"resync-interval", *resync}} {
		if d.value <= 0 {
			fmt.Fprintf(stderr, "psnic watch: --%s %v: must be more than 0 (see psnic watch --help)\n", d.flag, d.value)
			return exitUsage
		}
	}
	if *eventBuffer <= 0 {
		fmt.Fprintf(stderr, "psnic watch: --event-buffer %d: must be more than 0 (see psnic watch --help)\n", *eventBuffer)
		return exitUsage
	}
	if withExec {
		if execCmd == "" {
			fmt.Fprintln(stderr, "psnic watch: --exec needs a command (see psnic watch --help)")
			return exitUsage
		}
		// Now, not at the first event: a typo must not wait for a container.
		if _, err := exec.LookPath(execCmd); err != nil {
			fmt.Fprintf(stderr, "psnic watch: --exec %s: cannot be run: %v (give an executable file, or a command in PATH)\n", execCmd, err)
			return exitUsage
		}
	}
	filter := vnicwatch.Filter{Kinds: kinds, HostIfnames: hostNames, ContainerIfnames: contNames, Runtimes: runtimes}
	if len(filter.Kinds) == 0 && withExec && !*includeParents {
		filter.Kinds = []string{"veth"}
	}
	if err := filter.Check(); err != nil {
		fmt.Fprintf(stderr, "psnic watch: %v (see psnic watch --help)\n", err)
		return exitUsage
	}
	report := func(err error) { fmt.Fprintf(stderr, "psnic watch: %v\n", err) }
	s, err := vnicwatch.Open(vnicwatch.Options{ProcfsPath: *procfs, LinkEventBuffer: *eventBuffer,
		ResyncInterval: *resync, Report: report})
	if err != nil {
		fmt.Fprintf(stderr, "psnic watch: %v\n", err)
		return newFailed(err)
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w := newWatch(stdout, stderr, output.value == "json", execCmd, execArgs, *execTimeout)
	err = w.serve(ctx, func(ctx context.Context, emit func(change)) error {
		return s.Run(ctx, func(c vnicwatch.Change) {
			if c, ok := filter.Apply(c); ok {
				emit(change{Event: string(c.Event), row: c.Row, Old: c.Old})
			}
		})
	})
	if err != nil {
		report(err)
		return exitFailed
	}
	return exitOK
}

// environ is the change as --exec's environment.
func environ(c change) []string {
	env := []string{
		"PSNIC_EVENT=" + c.Event,
		"PSNIC_TIME=" + c.Time,
		"PSNIC_PID=" + strconv.Itoa(c.PID),
		"PSNIC_NETNS=" + strconv.FormatUint(c.Netns, 10),
		"PSNIC_CONTAINER_IFNAME=" + c.ContainerIfname,
		"PSNIC_CONTAINER_IFINDEX=" + strconv.Itoa(c.ContainerIfindex),
		"PSNIC_HOST_IFNAME=" + c.HostIfname,
		"PSNIC_HOST_IFINDEX=" + strconv.Itoa(c.HostIfindex),
		"PSNIC_KIND=" + c.Kind,
		"PSNIC_CONTAINER_ID=" + c.ContainerID,
		"PSNIC_POD_UID=" + c.PodUID,
		"PSNIC_RUNTIME=" + c.Runtime,
	}
	if c.Old != nil {
		env = append(env, "PSNIC_OLD_HOST_IFNAME="+c.Old.HostIfname, "PSNIC_OLD_CONTAINER_IFNAME="+c.Old.ContainerIfname,
			"PSNIC_OLD_HOST_IFINDEX="+strconv.Itoa(c.Old.HostIfindex), "PSNIC_OLD_PID="+strconv.Itoa(c.Old.PID))
	}
	return env
}
