package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// What `psnic watch` does with each change, apart from the stream that
// finds them: print its line, then run the --exec hook. A worker does that,
// so that the stream's goroutine never waits for a hook or a reader and a
// signal is seen at once (issue 21).
const (
	// queueLen is how far the stream may run ahead of the worker; beyond
	// it the stream waits, as it did when it printed itself, and the kernel
	// queues the notifications (an overflow is caught up by a resync).
	queueLen = 256
	// stopGrace is how long a stop waits for the line being written (a
	// reader that stopped reading blocks the write forever).
	stopGrace = time.Second
)

type watch struct {
	out, errOut io.Writer
	json        bool
	cmd         string
	args        []string
	timeout     time.Duration
	queue       chan change
	refused     int          // changes offered after the stop began (stream's goroutine)
	abandoned   atomic.Int64 // changes the worker took but let go at the stop
}

func newWatch(out, errOut io.Writer, json bool, cmd string, args []string, timeout time.Duration) *watch {
	return &watch{out: out, errOut: errOut, json: json, cmd: cmd, args: args, timeout: timeout,
		queue: make(chan change, queueLen)}
}

// serve runs stream until ctx ends or it fails, handing each change it
// emits to the worker. When ctx ends, the running hook's process group is
// killed, queued changes are dropped (their count on stderr), and serve
// returns within about stopGrace even if stdout no longer drains.
func (w *watch) serve(ctx context.Context, stream func(context.Context, func(change)) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.work(ctx)
	}()
	err := stream(ctx, func(c change) { w.enqueue(ctx, c) })
	cancel()
	stuck := false
	select {
	case <-done:
	case <-time.After(stopGrace):
		stuck = true
	}
	if dropped := w.refused + len(w.queue) + int(w.abandoned.Load()); dropped > 0 || stuck {
		msg := fmt.Sprintf("psnic watch: stopping: %d queued change(s) dropped (not printed, no hook run)", dropped)
		if stuck {
			msg += "; stdout is not being read: the line being written is lost"
		}
		fmt.Fprintln(w.errOut, msg)
	}
	return err
}

// enqueue hands c to the worker, or counts it refused once ctx has ended.
// Runs on the stream's goroutine.
func (w *watch) enqueue(ctx context.Context, c change) {
	c.Time = time.Now().UTC().Format(time.RFC3339Nano)
	if ctx.Err() != nil {
		w.refused++
		return
	}
	select {
	case w.queue <- c:
	case <-ctx.Done():
		w.refused++
	}
}

// work prints each queued change and runs its hook, until ctx ends.
func (w *watch) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-w.queue:
			if ctx.Err() != nil { // both were ready: the stop wins
				w.abandoned.Add(1)
				return
			}
			w.print(c)
			if w.cmd != "" {
				w.run(ctx, c)
			}
		}
	}
}

func (w *watch) print(c change) {
	if w.json {
		j := c
		j.row = c.Escaped() // the embedded row
		if c.Old != nil {
			old := c.Old.Escaped()
			j.Old = &old
		}
		_, _ = w.out.Write(append(appendObject(nil, changeFields(j), "", ""), '\n'))
		return
	}
	line := fmt.Sprintf("%s %-7s pid=%d netns=%d %s(%d) -> %s(%d) %s", c.Time, c.Event, c.PID, c.Netns,
		c.ContainerIfname, c.ContainerIfindex, c.HostIfname, c.HostIfindex, c.Kind)
	if c.Old != nil {
		line += fmt.Sprintf(" (was %s -> %s, pid=%d)", c.Old.ContainerIfname, c.Old.HostIfname, c.Old.PID)
	}
	fmt.Fprintln(w.out, line)
}

// run starts the --exec command for one change and waits for it. The hook
// runs in a process group of its own, killed whole (SIGKILL) after the
// timeout or when the watch stops: what it started in the background goes
// with it. Its stdout and stderr are psnic's stderr: stdout is the stream.
// Interface names go through the environment, never through a shell.
func (w *watch) run(stop context.Context, c change) {
	ctx, cancel := context.WithTimeout(stop, w.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.cmd, w.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.Stdout, cmd.Stderr = w.errOut, w.errOut
	cmd.Env = append(os.Environ(), environ(c)...)
	err := cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		// The leader may have gone before its group: kill what is left.
		_ = killGroup(cmd.Process.Pid)
	}
	switch {
	case err == nil:
	case stop.Err() != nil:
		fmt.Fprintf(w.errOut, "psnic watch: --exec %s for %s %s: killed: stopping\n", w.cmd, c.Event, c.HostIfname)
	case ctx.Err() != nil:
		fmt.Fprintf(w.errOut, "psnic watch: --exec %s for %s %s: killed after %s\n", w.cmd, c.Event, c.HostIfname, w.timeout)
	default:
		fmt.Fprintf(w.errOut, "psnic watch: --exec %s for %s %s: %v\n", w.cmd, c.Event, c.HostIfname, err)
	}
}

// killGroup sends SIGKILL to process group pgid; a group already gone is
// not an error.
func killGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
