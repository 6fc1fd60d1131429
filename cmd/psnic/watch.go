package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/cli"
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
given): --kind (link kind of the container end: veth, macvlan, ipvlan,
vlan, ...), --host-ifname and --container-ifname (shell patterns),
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
on stderr and the stream goes on.

Ends with exit status 0 on SIGTERM or SIGINT; 1 when the notifications
cannot be had (needs CAP_NET_ADMIN and CAP_NET_BROADCAST); 2 on usage errors
(including an --exec command that cannot be run).`

// change is one line of the stream.
type change struct {
	Event string `json:"event"`
	Time  string `json:"time"`
	row
	Old *row `json:"old,omitempty"`
}

// splitExec takes "--exec CMD ARGS..." off the end of args: the flag parser would
// read ARGS as psnic's flags ("unknown short flag '-c'" for sh -c). A "--"
// right after CMD is dropped.
func splitExec(args []string) (rest []string, cmd string, cmdArgs []string, found bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--exec="); ok {
			cmd, cmdArgs = v, args[i+1:]
		} else if a == "--exec" && i+1 < len(args) {
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
	app := cli.New("psnic watch", watchHelp)
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	args, execCmd, execArgs, withExec := splitExec(args)
	var (
		output         = app.Flag("output", "Output format: json or text.").Short('o').Default("json").Enum("text", "json")
		procfs         = app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").String()
		execTimeout    = app.Flag("exec-timeout", "Time a --exec command may take before it is killed.").Default("10s").Duration()
		resync         = app.Flag("resync-interval", "Full re-resolution even without events (a backstop).").Default("30s").Duration()
		eventBuffer    = app.Flag("event-buffer", "Receive buffer of the notification socket, bytes.").Default(strconv.Itoa(vnic.DefaultEventBuffer)).Int()
		kinds          = app.Flag("kind", "Only vNICs whose container end is of this link kind (repeatable).").PlaceHolder("KIND").Strings()
		includeParents = app.Flag("include-parents", "With --exec, pass stacked links too (their host end is a shared parent).").Bool()
		hostNames      = app.Flag("host-ifname", "Only vNICs whose host end matches this shell pattern (repeatable).").PlaceHolder("GLOB").Strings()
		contNames      = app.Flag("container-ifname", "Only vNICs whose container end matches this shell pattern (repeatable).").PlaceHolder("GLOB").Strings()
		runtimes       = app.Flag("runtime", "Only vNICs of containers of this runtime (repeatable).").PlaceHolder("NAME").Strings()
		_              = app.Flag("exec", "Command to run for each change, with its arguments after it (comes last).").PlaceHolder("CMD [ARGS...]").String()
	)
	if code, done := parse(app, args, stderr); done {
		return code
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
	filter := vnicwatch.Filter{Kinds: *kinds, HostIfnames: *hostNames, ContainerIfnames: *contNames, Runtimes: *runtimes}
	if len(filter.Kinds) == 0 && withExec && !*includeParents {
		filter.Kinds = []string{"veth"}
	}
	if err := filter.Check(); err != nil {
		fmt.Fprintf(stderr, "psnic watch: %v (see psnic watch --help)\n", err)
		return exitUsage
	}
	r, err := vnic.New(vnic.Options{ProcfsPath: *procfs, EventBuffer: *eventBuffer})
	if err != nil {
		fmt.Fprintf(stderr, "psnic watch: %v\n", err)
		return newFailed(err)
	}
	defer r.Close()
	if err := r.CacheError(); err != nil {
		fmt.Fprintf(stderr, "psnic watch: cannot listen to link notifications: %v (run as root, or with CAP_NET_ADMIN and CAP_NET_BROADCAST)\n", err)
		return exitFailed
	}
	report := func(err error) { fmt.Fprintf(stderr, "psnic watch: %v\n", err) }
	s, err := vnicwatch.New(r, vnicwatch.Options{ResyncInterval: *resync,
		Identity: cgroupid.NewLookup(*procfs), Report: report})
	if err != nil {
		fmt.Fprintf(stderr, "psnic watch: cannot listen to link notifications: %v (run as root, or with CAP_NET_ADMIN and CAP_NET_BROADCAST)\n", err)
		return exitFailed
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w := &watch{out: stdout, errOut: stderr, json: *output == "json", cmd: execCmd, args: execArgs, timeout: *execTimeout}
	err = s.Run(ctx, func(c vnicwatch.Change) {
		if c, ok := filter.Apply(c); ok {
			w.emit(change{Event: string(c.Event), row: c.Row, Old: c.Old})
		}
	})
	if err != nil {
		report(err)
		return exitFailed
	}
	return exitOK
}

type watch struct {
	out, errOut io.Writer
	json        bool
	cmd         string
	args        []string
	timeout     time.Duration
}

func (w *watch) emit(c change) {
	c.Time = time.Now().UTC().Format(time.RFC3339Nano)
	if w.json {
		j := c
		j.row = c.Escaped() // the embedded row
		if c.Old != nil {
			old := c.Old.Escaped()
			j.Old = &old
		}
		b, _ := json.Marshal(j) // plain fields: cannot fail
		fmt.Fprintf(w.out, "%s\n", b)
	} else {
		line := fmt.Sprintf("%s %-7s pid=%d netns=%d %s(%d) -> %s(%d) %s", c.Time, c.Event, c.PID, c.Netns,
			c.ContainerIfname, c.ContainerIfindex, c.HostIfname, c.HostIfindex, c.Kind)
		if c.Old != nil {
			line += fmt.Sprintf(" (was %s -> %s, pid=%d)", c.Old.ContainerIfname, c.Old.HostIfname, c.Old.PID)
		}
		fmt.Fprintln(w.out, line)
	}
	if w.cmd != "" {
		w.run(c)
	}
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

// run starts the --exec command for one change and waits for it, killing
// it after the timeout. Interface names go through the environment, never
// through a shell.
func (w *watch) run(c change) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.cmd, w.args...)
	cmd.WaitDelay = time.Second
	cmd.Stdout, cmd.Stderr = w.errOut, w.errOut
	cmd.Env = append(os.Environ(), environ(c)...)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("killed after %s", w.timeout)
		}
		fmt.Fprintf(w.errOut, "psnic watch: --exec %s for %s %s: %v\n", w.cmd, c.Event, c.HostIfname, err)
	}
}
