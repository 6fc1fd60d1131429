package vnicwatch_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

// A program that follows one container's vNICs: the stream tells it the
// vNIC is there ("present"), and when the container's last process exits
// ("removed"). It needs root; `go test` runs it (the package's tests run as
// root) against a container-like namespace it makes with `ip`.
func Example() {
	host, stopContainer, remove := startContainer() // a namespace, a veth, a process
	defer remove()

	s, err := vnicwatch.Open(vnicwatch.Options{})
	if err != nil {
		panic(err) // not log.Fatal: the deferred clean-up must run
	}
	defer s.Close()
	filter := vnicwatch.Filter{HostIfnames: []string{host}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = s.Run(ctx, func(c vnicwatch.Change) {
		c, ok := filter.Apply(c)
		if !ok {
			return
		}
		fmt.Println(c.Event, c.ContainerIfname, c.Kind, c.HostIfname == host)
		switch c.Event {
		case vnicwatch.Present:
			stopContainer()
		case vnicwatch.Removed:
			cancel()
		}
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// present eth0 veth true
	// removed eth0 veth true
}

// startContainer makes a namespace with a veth (eth0 inside, the returned
// name on the host) and a process in it; stop kills the process, remove
// the lot. It panics on failure, having removed what it made.
func startContainer() (host string, stop, remove func()) {
	name := "cvex" + strconv.Itoa(os.Getpid())
	host = name + "h"
	var sleep *exec.Cmd
	stop = func() {
		if sleep != nil && sleep.ProcessState == nil {
			_ = sleep.Process.Signal(syscall.SIGKILL)
			_ = sleep.Wait()
		}
	}
	remove = func() {
		stop()
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
	fail := func(err error) {
		remove()
		panic(err)
	}
	for _, args := range [][]string{
		{"netns", "add", name},
		{"link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"link", "set", host, "up"},
		{"-n", name, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			fail(fmt.Errorf("ip %v: %w: %s", args, err, out))
		}
	}
	// The process is in the namespace once it has written its line.
	sleep = exec.Command("ip", "netns", "exec", name, "sh", "-c", "echo; exec sleep 600")
	out, err := sleep.StdoutPipe()
	if err == nil {
		err = sleep.Start()
	}
	if err != nil {
		sleep = nil
		fail(err)
	}
	if _, err := out.Read(make([]byte, 1)); err != nil {
		fail(err)
	}
	return host, stop, remove
}
