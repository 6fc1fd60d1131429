package main

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// watchBinary is the program `psnic watch` is: a binary of its own, so that
// `psnic PID`, started once per container by scripts, links and pages in
// none of the stream, hooks and signal handling (docs/psnic.md, "Start-up").
const watchBinary = "psnic-watch"

// execWatch runs psnic-watch from psnic's own directory in psnic's place
// (same PID, so signals and the exit status are the watch's), as git runs
// git-CMD. It returns only when that cannot be done.
func execWatch(args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		_, _ = io.WriteString(stderr, "psnic watch: cannot find psnic's own path: "+err.Error()+" (run "+watchBinary+" directly)\n")
		return exitNoWatch
	}
	path := filepath.Join(filepath.Dir(self), watchBinary)
	err = syscall.Exec(path, append([]string{watchBinary}, args...), os.Environ())
	_, _ = io.WriteString(stderr, "psnic watch: cannot run "+path+": "+err.Error()+" (psnic watch is "+watchBinary+
		", which ships with psnic: install it next to psnic)\n")
	return exitNoWatch
}
