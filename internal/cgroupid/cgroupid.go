// Package cgroupid tells which container, and which Kubernetes pod, a process
// belongs to from its cgroup membership (/proc/PID/cgroup). It is pure string
// work apart from Read, and never guesses: a layout it does not know yields
// the zero Identity.
//
// Container cgroups recognised (ID is 64 lowercase hex digits):
//
//	docker-ID.scope           Docker, systemd cgroup driver
//	cri-containerd-ID.scope   containerd CRI, systemd driver
//	crio-ID.scope             CRI-O, systemd driver
//	crio-ID                   CRI-O, cgroupfs driver
//	libpod-ID.scope           Podman, systemd driver (rootful and rootless)
//	libpod-ID                 Podman, cgroupfs driver (/libpod_parent/libpod-ID)
//	docker/ID                 Docker, cgroupfs driver: a bare ID right below "docker"
//	pod<uid>/ID               Kubernetes, cgroupfs driver: a bare ID right below a
//	                          pod cgroup; Runtime is "" as any CRI runtime makes it
//	SLICE:PREFIX:ID           runc's "slice:prefix:name" form, as seen in cgroup v1
//	                          when containerd uses the systemd driver and kubelet
//	                          does not; read as SLICE/PREFIX-ID.scope
//
// Kubernetes pod cgroups recognised:
//
//	kubepods-pod<uid>.slice, kubepods-burstable-pod<uid>.slice,
//	kubepods-besteffort-pod<uid>.slice    systemd driver; the uid has "_" for
//	                                      "-"; kind's kubelet-kubepods-... too
//	pod<uid>                              cgroupfs driver (kubepods/pod<uid>,
//	                                      kubepods/burstable/pod<uid>, ...)
//
// A cgroupfs pod cgroup is recognised by its exact form ("pod" and a UID) and
// not by a kubepods parent, so that it is also found in paths seen from
// another cgroup namespace, where the parents are hidden behind "/..".
//
// Deliberate choices:
//
//   - Runtime helpers are not containers: crio-conmon-ID.scope and
//     libpod-conmon-ID.scope give no ContainerID (conmon in a pod slice still
//     gives the PodUID), nor does /libpod_parent/conmon.
//   - The outermost container wins (Options.Nested unset). Whatever lies
//     below a container's cgroup was made by that container's own
//     processes when it may make sub-cgroups (privileged, or a delegated
//     cgroup v2 subtree: Docker-in-Docker, kind, systemd in a container), so
//     it can name any container or pod: .../docker-A.scope/docker-B.scope is
//     A, and .../pod<U1>/<ctr>/pod<U2>/... is ctr of pod U1. Cgroups below a
//     container's own (systemd inside it, crun's "container" sub-cgroup)
//     belong to that container. The pod is the first pod cgroup above it.
//   - With Options.Nested, the innermost container wins instead:
//     Docker-in-Docker and kind nodes report the nested container, not the
//     outer one. A pod cgroup is then the pod of a container only when no
//     other container cgroup lies between them; a pod cgroup below the
//     innermost container (a pod-level process inside a kind node) makes the
//     result that pod with no container. A container allowed to make
//     sub-cgroups can then take any other container's identity.
//   - PodUID is the UID kubelet gives the pod, as in the cgroup: canonical
//     8-4-4-4-12 form, or for a static pod the 32-digit md5 hex of its
//     manifest (the UID the runtime knows it by; its mirror pod in the API
//     server has a UID of its own).
//   - A bare 64-hex cgroup is a container only right below "docker" or a
//     pod cgroup. Elsewhere it may be anything (a Podman pod under
//     /libpod_parent, an ECS task), so it is not reported.
//   - Paths seen from another cgroup namespace start with "/..": recognised
//     names still match, but a bare ID whose parent is hidden is not reported.
//   - Runtime is set only together with ContainerID.
//   - Which line of /proc/PID/cgroup: see Parse. A v2 path ending in
//     " (deleted)" (cgroup removed, process still in it) is read without it.
//     Paths longer than PATH_MAX are rejected, as the kernel never prints one.
package cgroupid

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Identity is what a process's cgroup says about its container.
type Identity struct {
	ContainerID string // 64 lowercase hex chars, or ""
	PodUID      string // Kubernetes pod UID: canonical dashed form (8-4-4-4-12 lowercase hex), 32 lowercase hex for a static pod, or ""
	Runtime     string // "docker", "containerd", "cri-o", "podman", or "" when unknown
}

// Runtime values.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
)

// Runtimes lists the runtimes an Identity may name ("" aside, for none known).
var Runtimes = []string{RuntimeDocker, RuntimeContainerd, RuntimeCRIO, RuntimePodman}

// maxPathLen is PATH_MAX: the kernel fails the read of /proc/PID/cgroup
// rather than print a longer path, so a longer one is not kernel output.
const maxPathLen = 4096

// Options choose how identities are read. The zero value is the safe
// default.
type Options struct {
	// Nested makes the innermost runtime cgroup of a path win instead of the
	// outermost: the containers of a kind node or of Docker-in-Docker then
	// get their own identities rather than the node's, but any container
	// allowed to make sub-cgroups can take another container's identity by
	// making one named after it.
	Nested bool
}

// Read reads procRoot/PID/cgroup and parses it, trusting the outermost
// runtime cgroup. Errors are those of os.ReadFile, so errors.Is(err,
// fs.ErrNotExist) tells a process that is gone.
func Read(procRoot string, pid int) (Identity, error) { return Options{}.Read(procRoot, pid) }

// Read reads procRoot/PID/cgroup and parses it as o says.
func (o Options) Read(procRoot string, pid int) (Identity, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return Identity{}, err
	}
	return o.Parse(b), nil
}

// Parse reads the content of /proc/PID/cgroup (v1 lines
// "N:controllers:/path", v2 line "0::/path") and returns the identity,
// trusting the outermost runtime cgroup. Unknown layouts yield the zero
// Identity, never a guessed id.
//
// Lines are tried in a fixed order and the first one that identifies
// anything wins: name=systemd, pids, memory, cpu, the other v1 lines in file
// order, and last the v2 "0::" line. On a pure v2 host only the "0::" line
// exists. On a hybrid host the v1 lines come first because runtimes always
// manage those, while the controller-less v2 hierarchy may still show where
// the process was started from (e.g. /system.slice/containerd.service).
func Parse(procCgroup []byte) Identity { return Options{}.Parse(procCgroup) }

// Parse is Parse as o says.
func (o Options) Parse(procCgroup []byte) Identity {
	for _, path := range pathsByPreference(string(procCgroup)) {
		if id := o.FromPath(path); id != (Identity{}) {
			return id
		}
	}
	return Identity{}
}

// pathsByPreference returns the cgroup paths of the well-formed lines of a
// /proc/PID/cgroup file, in the order Parse tries them.
func pathsByPreference(content string) []string {
	type entry struct {
		rank int
		path string
	}
	var entries []entry
	for _, line := range strings.Split(content, "\n") {
		hierarchy, rest, ok1 := strings.Cut(line, ":")
		controllers, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !isDigits(hierarchy) {
			continue
		}
		// cgroup v2 marks a cgroup removed while the process is still in it.
		path = strings.TrimSuffix(path, " (deleted)")
		entries = append(entries, entry{lineRank(hierarchy, controllers), path})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].rank < entries[j].rank })
	paths := make([]string, len(entries))
	for i, e := range entries {
		paths[i] = e.path
	}
	return paths
}

// lineRank orders /proc/PID/cgroup lines: lower is tried first.
func lineRank(hierarchy, controllers string) int {
	if hierarchy == "0" && controllers == "" {
		return 10 // the v2 line
	}
	rank := 9 // any other v1 hierarchy
	for _, c := range strings.Split(controllers, ",") {
		switch c {
		case "name=systemd":
			rank = min(rank, 1)
		case "pids":
			rank = min(rank, 2)
		case "memory":
			rank = min(rank, 3)
		case "cpu":
			rank = min(rank, 4)
		}
	}
	return rank
}

// FromPath derives identity from one cgroup path, trusting the outermost
// runtime cgroup: what lies below a container's cgroup may have been named
// by the container itself.
func FromPath(path string) Identity { return Options{}.FromPath(path) }

// FromPath derives identity from one cgroup path as o says.
func (o Options) FromPath(path string) Identity {
	if len(path) > maxPathLen {
		return Identity{}
	}
	var id Identity
	pod := false // a pod cgroup was seen
	parent := ""
	for _, name := range pathNames(path) {
		if uid, ok := podCgroup(name); ok {
			if o.Nested {
				id = Identity{PodUID: uid}
			} else if !pod {
				id.PodUID = uid
			}
			pod = true
		} else if cid, runtime, ok := containerCgroup(parent, name); ok {
			if !o.Nested {
				id.ContainerID, id.Runtime = cid, runtime
				return id
			}
			pod := ""
			if id.ContainerID == "" { // the pod, if any, holds this container directly
				pod = id.PodUID
			}
			id = Identity{ContainerID: cid, PodUID: pod, Runtime: runtime}
		}
		parent = name
	}
	return id
}

// pathNames splits a cgroup path into its directory names, rewriting runc's
// "slice:prefix:name" form into the two names systemd would give it.
func pathNames(path string) []string {
	var names []string
	for _, name := range strings.Split(path, "/") {
		parts := strings.Split(name, ":")
		if len(parts) == 3 && parts[0] != "" && parts[1] != "" && parts[2] != "" {
			names = append(names, parts[0], parts[1]+"-"+parts[2]+".scope")
			continue
		}
		names = append(names, name)
	}
	return names
}

// containerPatterns are the cgroup names that carry a runtime and a
// container id: prefix + 64 hex + suffix.
var containerPatterns = []struct{ prefix, suffix, runtime string }{
	{"docker-", ".scope", RuntimeDocker},
	{"cri-containerd-", ".scope", RuntimeContainerd},
	{"crio-", ".scope", RuntimeCRIO},
	{"crio-", "", RuntimeCRIO},
	{"libpod-", ".scope", RuntimePodman},
	{"libpod-", "", RuntimePodman},
}

// containerCgroup reports whether the cgroup name (below parent) is a
// container's, and which.
func containerCgroup(parent, name string) (id, runtime string, ok bool) {
	for _, p := range containerPatterns {
		rest, hasPrefix := strings.CutPrefix(name, p.prefix)
		id, hasSuffix := strings.CutSuffix(rest, p.suffix)
		if hasPrefix && hasSuffix && isContainerID(id) {
			return id, p.runtime, true
		}
	}
	if !isContainerID(name) {
		return "", "", false
	}
	if parent == "docker" {
		return name, RuntimeDocker, true
	}
	if _, isPod := podCgroup(parent); isPod {
		return name, "", true
	}
	return "", "", false
}

// podCgroup reports whether the cgroup name is a Kubernetes pod's, and its
// UID.
func podCgroup(name string) (uid string, ok bool) {
	raw, ok := podUIDText(name)
	switch {
	case !ok:
		return "", false
	case isCanonicalUID(raw):
		return raw, true
	case isLowerHex(raw, 32): // static pod: kubelet hashes the manifest
		return raw, true
	}
	return "", false
}

// podUIDText returns the UID text of a pod cgroup name, with systemd's "_"
// turned back into "-".
func podUIDText(name string) (string, bool) {
	slice, isSlice := strings.CutSuffix(name, ".slice")
	if !isSlice {
		return strings.CutPrefix(name, "pod")
	}
	// kubepods[-qos]-pod<uid>: "-" nests slices, so the uid is the last part.
	i := strings.LastIndex(slice, "-pod")
	if i < 0 {
		return "", false
	}
	raw := slice[i+len("-pod"):]
	if strings.Contains(raw, "-") || !hasPart(slice[:i], "kubepods") {
		return "", false
	}
	return strings.ReplaceAll(raw, "_", "-"), true
}

// hasPart reports whether the dash-separated slice name has part.
func hasPart(slice, part string) bool {
	for _, p := range strings.Split(slice, "-") {
		if p == part {
			return true
		}
	}
	return false
}

func isContainerID(s string) bool { return isLowerHex(s, 64) }

// isCanonicalUID reports whether s is 8-4-4-4-12 lowercase hex.
func isCanonicalUID(s string) bool {
	groups := strings.Split(s, "-")
	if len(groups) != 5 {
		return false
	}
	for i, n := range []int{8, 4, 4, 4, 12} {
		if !isLowerHex(groups[i], n) {
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
