package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/vishvananda/netlink"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

const watchHelp = `Prints every container vNIC, then one line per change as it happens:
"present" for each vNIC at start, then "added", "changed" (renamed, peer
moved, oldest process changed) and "removed". Driven by link and namespace-id
notifications; process exec/exit events (proc connector) and a periodic
resync catch processes that join a namespace after its links were made.

With --exec, runs CMD [ARGS...] for each line, one at a time, with the change
in the environment: PSNIC_EVENT, PSNIC_TIME, PSNIC_PID, PSNIC_NETNS,
PSNIC_CONTAINER_IFNAME, PSNIC_CONTAINER_IFINDEX, PSNIC_HOST_IFNAME,
PSNIC_HOST_IFINDEX, PSNIC_KIND, and for "changed" PSNIC_OLD_HOST_IFNAME and
PSNIC_OLD_CONTAINER_IFNAME. A failing command is reported on stderr and the
stream goes on.

Ends with exit status 0 on SIGTERM or SIGINT; 1 when the notifications
cannot be had (needs CAP_NET_ADMIN and CAP_NET_BROADCAST); 2 on usage errors.`

// change is one line of the stream.
type change struct {
	Event string `json:"event"`
	Time  string `json:"time"`
	row
	Old *row `json:"old,omitempty"`
}

// key identifies a vNIC across changes: its namespace and container index.
type key struct {
	netns uint64
	index int
}

func runWatch(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("psnic watch", watchHelp)
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	var (
		output      = app.Flag("output", "Output format: json or text.").Short('o').Default("json").Enum("text", "json")
		procfs      = app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").String()
		execCmd     = app.Flag("exec", "Command to run for each change (no shell).").PlaceHolder("CMD").String()
		execTimeout = app.Flag("exec-timeout", "Time a --exec command may take before it is killed.").Default("10s").Duration()
		resync      = app.Flag("resync-interval", "Full re-resolution even without events (a backstop).").Default("30s").Duration()
		eventBuffer = app.Flag("event-buffer", "Receive buffer of the notification socket, bytes.").Default(strconv.Itoa(vnic.DefaultEventBuffer)).Int()
		execArgs    = app.Arg("args", "Arguments of the --exec command.").Strings()
	)
	if code, done := parse(app, args, stderr); done {
		return code
	}
	if len(*execArgs) > 0 && *execCmd == "" {
		fmt.Fprintln(stderr, "psnic watch: arguments given without --exec (see psnic watch --help)")
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	procKick := watchProcesses(ctx, stderr)

	w := &watch{out: stdout, errOut: stderr, json: *output == "json", cmd: *execCmd, args: *execArgs, timeout: *execTimeout}
	state, err := snapshot(r, nil)
	if err != nil {
		fmt.Fprintf(stderr, "psnic watch: %v\n", err)
		return exitFailed
	}
	for _, k := range sortedKeys(state) {
		w.emit(change{Event: "present", row: state[k]})
	}
	lastSync := time.Now()
	for ctx.Err() == nil {
		notified, err := r.Notified(100 * time.Millisecond)
		if err != nil {
			fmt.Fprintf(stderr, "psnic watch: %v\n", err)
			return exitFailed
		}
		kicked := false
		select {
		case <-procKick:
			kicked = true
		default:
		}
		if !notified && !kicked && time.Since(lastSync) < *resync {
			continue
		}
		next, err := snapshot(r, state)
		if err != nil {
			// A failed resolution is reported, and retried on the next event.
			fmt.Fprintf(stderr, "psnic watch: %v\n", err)
			continue
		}
		lastSync = time.Now()
		for _, c := range diff(state, next) {
			w.emit(c)
		}
		state = next
	}
	return exitOK
}

// snapshot resolves every namespace and indexes the vNICs.
func snapshot(r *vnic.Resolver, prev map[key]row) (map[key]row, error) {
	snap, err := r.ResolveAll()
	if err != nil {
		return nil, err
	}
	// What is known of each namespace's process from the last snapshot: a
	// process's container does not change, so its cgroup is read once, not
	// on every event (a thousand reads a time with 1,000 containers).
	known := map[uint64]row{}
	for k, p := range prev {
		known[k.netns] = p
	}
	m := map[key]row{}
	for _, ns := range snap.Namespaces {
		if len(ns.VNICs) == 0 {
			continue
		}
		var id cgroupid.Identity
		if p, ok := known[ns.Inode]; ok && p.PID == ns.PID {
			id = cgroupid.Identity{ContainerID: p.ContainerID, PodUID: p.PodUID, Runtime: p.Runtime}
		} else {
			// A process gone since its resolution has no identity to tell.
			id, _ = cgroupid.Read(r.ProcfsPath(), ns.PID)
		}
		for _, v := range ns.VNICs {
			m[key{ns.Inode, v.ContainerIfindex}] = row{PID: ns.PID, Netns: ns.Inode, VNIC: v,
				ContainerID: id.ContainerID, PodUID: id.PodUID, Runtime: id.Runtime}
		}
	}
	// A namespace that could not be resolved this time (a passing netlink
	// error) keeps its vNICs rather than have them "removed" and "added"
	// again: a tc attacher would detach and reattach for nothing.
	unresolved := map[uint64]bool{}
	for _, ino := range snap.Unresolved {
		unresolved[ino] = true
	}
	for k, p := range prev {
		if unresolved[k.netns] {
			m[k] = p
		}
	}
	return m, nil
}

// diff lists what changed from old to new: removals, then changes, then
// additions, each in namespace and index order.
func diff(old, new map[key]row) []change {
	var removed, changed, added []change
	for _, k := range sortedKeys(old) {
		o := old[k]
		n, ok := new[k]
		switch {
		case !ok:
			removed = append(removed, change{Event: "removed", row: o})
		case n != o:
			prev := o
			changed = append(changed, change{Event: "changed", row: n, Old: &prev})
		}
	}
	for _, k := range sortedKeys(new) {
		if _, ok := old[k]; !ok {
			added = append(added, change{Event: "added", row: new[k]})
		}
	}
	return append(append(removed, changed...), added...)
}

func sortedKeys(m map[key]row) []key {
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].netns != keys[j].netns {
			return keys[i].netns < keys[j].netns
		}
		return keys[i].index < keys[j].index
	})
	return keys
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
		j.row = c.row.escaped()
		if c.Old != nil {
			old := c.Old.escaped()
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

// run starts the --exec command for one change and waits for it, killing
// it after the timeout. Interface names go through the environment, never
// through a shell.
func (w *watch) run(c change) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.cmd, w.args...)
	cmd.WaitDelay = time.Second
	cmd.Stdout, cmd.Stderr = w.errOut, w.errOut
	cmd.Env = append(os.Environ(),
		"PSNIC_EVENT="+c.Event,
		"PSNIC_TIME="+c.Time,
		"PSNIC_PID="+strconv.Itoa(c.PID),
		"PSNIC_NETNS="+strconv.FormatUint(c.Netns, 10),
		"PSNIC_CONTAINER_IFNAME="+c.ContainerIfname,
		"PSNIC_CONTAINER_IFINDEX="+strconv.Itoa(c.ContainerIfindex),
		"PSNIC_HOST_IFNAME="+c.HostIfname,
		"PSNIC_HOST_IFINDEX="+strconv.Itoa(c.HostIfindex),
		"PSNIC_KIND="+c.Kind,
	)
	if c.Old != nil {
		cmd.Env = append(cmd.Env, "PSNIC_OLD_HOST_IFNAME="+c.Old.HostIfname, "PSNIC_OLD_CONTAINER_IFNAME="+c.Old.ContainerIfname)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("killed after %s", w.timeout)
		}
		fmt.Fprintf(w.errOut, "psnic watch: --exec %s for %s %s: %v\n", w.cmd, c.Event, c.HostIfname, err)
	}
}

// watchProcesses subscribes to process exec and exit events (proc
// connector), which no rtnetlink notification covers: a process joining a
// namespace whose links already exist. It returns a channel that holds a
// value when such an event happened; without the connector it never does.
func watchProcesses(ctx context.Context, stderr io.Writer) <-chan struct{} {
	kick := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			err := monitorProcesses(ctx, kick)
			if ctx.Err() != nil {
				return
			}
			// Lost (an overflow, say) or refused: say so, resync now, and
			// try again shortly; the resync interval covers the gap.
			fmt.Fprintf(stderr, "psnic watch: process events: %v (processes joining a namespace after its links are seen at the next resync until they are back)\n", err)
			select {
			case kick <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return kick
}

// monitorProcesses kicks on every exec and exit until the subscription
// fails or ctx ends.
func monitorProcesses(ctx context.Context, kick chan<- struct{}) error {
	events := make(chan netlink.ProcEvent, 256)
	errs := make(chan error, 1)
	done := make(chan struct{})
	defer func() {
		close(done)
		go func() { // the library's reader must never block on a full channel
			for range events {
			}
		}()
	}()
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		close(stop)
	}()
	if err := netlink.ProcEventMonitor(events, stop, errs); err != nil {
		return err
	}
	for {
		select {
		case e, ok := <-events:
			if !ok {
				select {
				case err := <-errs:
					return err
				default:
					return errors.New("process event stream ended")
				}
			}
			switch e.Msg.(type) {
			case *netlink.ExecProcEvent, *netlink.ExitProcEvent:
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		case err := <-errs:
			return err
		}
	}
}
