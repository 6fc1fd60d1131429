package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// daemonProcess is a container engine's daemon (dockerd, containerd) that a
// test started with a state directory of its own.
type daemonProcess struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
}

// startDaemon starts cmd with its output in log, failing t if it cannot.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd, log *os.File) *daemonProcess {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	p := &daemonProcess{name: name, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

// waitReady asks probe every 100 ms until it succeeds, failing t when the
// daemon exits first or a minute passes.
func (p *daemonProcess) waitReady(t *testing.T, probe func() ([]byte, error)) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.log.Name())
			t.Fatalf("%s exited at start:\n%s", p.name, tail(b, 4096))
		default:
		}
		out, err := probe()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within a minute: %v: %s", p.name, err, out)
		}
	}
}

// stop ends the daemon with SIGTERM (SIGKILL a minute later), closes its
// log and, when t failed, logs the log's last 4 KB.
func (p *daemonProcess) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Errorf("cleanup: %s did not stop within a minute of SIGTERM: killing it", p.name)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.log.Close()
	if t.Failed() {
		b, _ := os.ReadFile(p.log.Name())
		t.Logf("%s log (last 4 KB):\n%s", p.name, tail(b, 4096))
	}
}
