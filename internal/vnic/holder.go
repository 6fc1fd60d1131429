package vnic

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// holders remembers, for each namespace, the process that names it (its
// pid label): the oldest process in it, by start time and then PID, kept
// for as long as it stays there. The lowest PID is no name: after PIDs
// wrap, any `nsenter` or `docker exec` can take a lower one for a scrape.
type holders struct {
	procRoot string
	byInode  map[uint64]int
}

// choose sets each found namespace's PID to its holder, choosing a new
// one for a namespace that has none or whose holder left, and forgets the
// namespaces not found.
func (h *holders) choose(found map[uint64]*netnsProcs) {
	if h.byInode == nil {
		h.byInode = map[uint64]int{}
	}
	for ino := range h.byInode {
		if found[ino] == nil {
			delete(h.byInode, ino)
		}
	}
	for ino, ns := range found {
		if pid, ok := h.byInode[ino]; ok && slices.Contains(ns.PIDs, pid) {
			ns.PID = pid
			continue
		}
		ns.PID = oldest(ns.PIDs, h.startTime)
		h.byInode[ino] = ns.PID
	}
}

// keep records the PID a namespace was finally resolved through: another
// one when the holder exited between the walk and the query.
func (h *holders) keep(ns *netnsProcs) {
	if _, ok := h.byInode[ns.Inode]; ok {
		h.byInode[ns.Inode] = ns.PID
	}
}

// oldest returns the PID with the earliest start time, the lowest PID
// among equals. PIDs whose start time cannot be read (gone already) come
// last; with none readable it is the lowest PID.
func oldest(pids []int, start func(pid int) (uint64, error)) int {
	best, bestStart, known := 0, uint64(0), false
	for _, pid := range pids {
		st, err := start(pid)
		switch {
		case err != nil:
			if !known && (best == 0 || pid < best) {
				best = pid
			}
		case !known || st < bestStart || st == bestStart && pid < best:
			best, bestStart, known = pid, st, true
		}
	}
	return best
}

func (h *holders) startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(h.procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// parseStartTime returns field 22 of /proc/PID/stat, the start time in
// clock ticks since boot. The command name (field 2) is in parentheses
// and may hold spaces and parentheses itself: fields are counted from
// the last ')'.
func parseStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	fields := bytes.Fields(stat[i+1:])
	const startField = 22 - 3 // fields[0] is field 3, the state
	if len(fields) <= startField {
		return 0, fmt.Errorf("%d fields after the command name, want more than %d", len(fields), startField)
	}
	return strconv.ParseUint(string(fields[startField]), 10, 64)
}
