package cgroupid

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Made-up ids in the real formats.
const (
	ctr    = "a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1"
	outer  = "2aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecc"
	other  = "cc3fc1626e53a13043b026c48bbf33feff9243a8f506b40928b5b7a767c76fb0"
	podID  = "08f86bebb2737f6a6f0fb23c6f5da2cec255404e4fb440034d6608697a8d41be" // a Podman pod id
	uid    = "e77ffe48-d0a6-4c17-9556-585ea997f351"
	uid2   = "eaefc4d2-d3bf-4d01-abae-4b5b844a7034"
	static = "40e50454f31af3176813e02ea68ef786" // static pod UID: md5 hex
)

// us is a pod UID as the systemd driver spells it in slice names.
func us(uid string) string { return strings.ReplaceAll(uid, "-", "_") }

type pathCase struct {
	name string
	path string
	want Identity
}

// pathCases are cgroup paths in the layouts each runtime really produces
// (formats taken from runtime sources, bug reports and this machine).
var pathCases = []pathCase{
	// Docker.
	{"docker systemd", "/system.slice/docker-" + ctr + ".scope",
		Identity{ContainerID: ctr, Runtime: "docker"}},
	{"docker cgroupfs", "/docker/" + ctr,
		Identity{ContainerID: ctr, Runtime: "docker"}},
	{"docker rootless systemd", "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + ctr + ".scope",
		Identity{ContainerID: ctr, Runtime: "docker"}},
	{"docker systemd, systemd inside the container", "/system.slice/docker-" + ctr + ".scope/system.slice/nginx.service",
		Identity{ContainerID: ctr, Runtime: "docker"}},
	{"dockerd itself", "/system.slice/docker.service", Identity{}},
	{"docker-in-docker, process of the outer container", "/docker/" + outer,
		Identity{ContainerID: outer, Runtime: "docker"}},

	// containerd (Kubernetes CRI).
	{"containerd systemd burstable", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us(uid) + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"containerd systemd besteffort", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us(uid) + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"containerd systemd guaranteed", "/kubepods.slice/kubepods-pod" + us(uid) + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"containerd systemd static pod", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + static + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: static, Runtime: "containerd"}},
	{"containerd slice:prefix:id under containerd.service (v1)", "/system.slice/containerd.service/kubepods-besteffort-pod" + us(uid) + ".slice:cri-containerd:" + ctr,
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"containerd slice:prefix:id, static pod", "/system.slice/containerd.service/kubepods-burstable-pod" + static + ".slice:cri-containerd:" + ctr,
		Identity{ContainerID: ctr, PodUID: static, Runtime: "containerd"}},
	{"containerd slice:prefix:id as an OCI cgroupsPath", "kubepods-burstable-pod" + us(uid) + ".slice:cri-containerd:" + ctr,
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"containerd.service itself", "/system.slice/containerd.service", Identity{}},
	{"kubepods cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + ctr,
		Identity{ContainerID: ctr, PodUID: uid}},
	{"kubepods cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + ctr,
		Identity{ContainerID: ctr, PodUID: uid}},
	{"kubepods cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + ctr,
		Identity{ContainerID: ctr, PodUID: uid}},
	{"kubepods cgroupfs static pod", "/kubepods/burstable/pod" + static + "/" + ctr,
		Identity{ContainerID: ctr, PodUID: static}},
	{"kubepods cgroupfs pod cgroup only", "/kubepods/burstable/pod" + uid,
		Identity{PodUID: uid}},
	{"kubepods QoS cgroup", "/kubepods/burstable", Identity{}},
	{"kubepods systemd QoS slice", "/kubepods.slice/kubepods-burstable.slice", Identity{}},
	{"dockershim systemd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us(uid) + ".slice/docker-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "docker"}},
	{"kind node, kubelet itself", "/system.slice/docker-" + outer + ".scope/kubelet.slice/kubelet.service",
		Identity{ContainerID: outer, Runtime: "docker"}},
	{"relative path from another cgroup namespace", "/../../kubepods-besteffort-pod" + us(uid) + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"relative path, cgroupfs pod", "/../../pod" + uid + "/" + ctr,
		Identity{ContainerID: ctr, PodUID: uid}},
	{"relative path hiding a bare id's parent", "/../" + ctr, Identity{}},

	// CRI-O.
	{"cri-o systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us(uid) + ".slice/crio-" + ctr + ".scope",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},
	{"cri-o systemd, crun container sub-cgroup", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us(uid) + ".slice/crio-" + ctr + ".scope/container",
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},
	{"cri-o conmon: pod only", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us(uid) + ".slice/crio-conmon-" + ctr + ".scope",
		Identity{PodUID: uid}},
	{"cri-o conmon outside the pod", "/system.slice/crio-conmon-" + ctr + ".scope", Identity{}},
	{"cri-o sandbox cgroup (systemd, no infra container)", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us(uid) + ".slice/crio-" + ctr,
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},
	{"cri-o cgroupfs", "/kubepods/besteffort/pod" + uid + "/crio-" + ctr,
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},
	{"cri-o cgroupfs conmon", "/kubepods/besteffort/pod" + uid + "/crio-conmon-" + ctr,
		Identity{PodUID: uid}},
	{"cri-o slice:prefix:id", "/system.slice/crio.service/kubepods-pod" + us(uid) + ".slice:crio:" + ctr,
		Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},

	// Podman.
	{"podman systemd rootful", "/machine.slice/libpod-" + ctr + ".scope",
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman systemd, crun container sub-cgroup", "/machine.slice/libpod-" + ctr + ".scope/container",
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman systemd, systemd inside the container", "/machine.slice/libpod-" + ctr + ".scope/init.scope",
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + ctr + ".scope/container",
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman root in user@0", "/user.slice/user-0.slice/user@0.service/machine.slice/libpod-" + ctr + ".scope/container",
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman pod, systemd: the pod id is not a container", "/machine.slice/machine-libpod_pod_" + podID + ".slice/libpod-" + ctr + ".scope",
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman pod slice alone", "/machine.slice/machine-libpod_pod_" + podID + ".slice", Identity{}},
	{"podman conmon systemd", "/machine.slice/libpod-conmon-" + ctr + ".scope", Identity{}},
	{"podman cgroupfs (this machine, runc)", "/libpod_parent/libpod-" + ctr,
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman cgroupfs pod", "/libpod_parent/" + podID + "/libpod-" + ctr,
		Identity{ContainerID: ctr, Runtime: "podman"}},
	{"podman cgroupfs pod cgroup alone", "/libpod_parent/" + podID, Identity{}},
	{"podman cgroupfs conmon", "/libpod_parent/conmon", Identity{}},

	// Not containers, or not a layout we know.
	{"root", "/", Identity{}},
	{"empty", "", Identity{}},
	{"init", "/init.scope", Identity{}},
	{"login session", "/user.slice/user-0.slice/session-1.scope", Identity{}},
	{"system service", "/system.slice/sshd.service", Identity{}},
	{"this machine's process_api", "/process_api/c0c8c576210950a9eeea82bdbcd2af96", Identity{}},
	{"ECS task: bare id below an unknown parent", "/ecs/5a0e1e0ed9b14b7f8ac24d3b5ed8f0d1/" + ctr, Identity{}},
	{"nerdctl cgroupfs: bare id below a namespace", "/default/" + ctr, Identity{}},
	{"garbage", "\x00\xff:/::", Identity{}},

	// Near misses must not give an id.
	{"uppercase id", "/docker/" + strings.ToUpper(ctr), Identity{}},
	{"uppercase id in scope", "/system.slice/docker-" + strings.ToUpper(ctr) + ".scope", Identity{}},
	{"non-hex letter in id", "/docker/" + ctr[:63] + "g", Identity{}},
	{"non-hex letter in pod uid", "/kubepods/pod" + uid[:35] + "g/" + ctr, Identity{}},
	{"63-digit id", "/docker/" + ctr[1:], Identity{}},
	{"65-digit id", "/docker/" + ctr + "0", Identity{}},
	{"id with a suffix", "/system.slice/docker-" + ctr + ".scope.bak", Identity{}},
	{"docker- without .scope", "/system.slice/docker-" + ctr, Identity{}},
	{"unknown scope prefix", "/system.slice/nerdctl-" + ctr + ".scope", Identity{}},
	{"pod slice with dashes in the uid", "/kubepods.slice/kubepods-pod" + uid + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: ctr, Runtime: "containerd"}},
	{"pod slice outside kubepods", "/machine.slice/machine-pod" + us(uid) + ".slice", Identity{}},
	{"uppercase pod uid", "/kubepods/burstable/pod" + strings.ToUpper(uid) + "/" + ctr, Identity{}},
	{"pod uid with underscores in cgroupfs", "/kubepods/burstable/pod" + us(uid) + "/" + ctr, Identity{}},
	{"short pod uid", "/kubepods/burstable/pod" + uid[1:] + "/" + ctr, Identity{}},
	{"misplaced dashes in pod uid", "/kubepods/pod" + "e77ffe4-8d0a6-4c17-9556-585ea997f351" + "/" + ctr, Identity{}},
	{"malformed slice:prefix:id", "/system.slice/containerd.service/kubepods-pod" + us(uid) + ".slice::" + ctr, Identity{}},
	{"too long", "/" + strings.Repeat("x/", maxPathLen/2) + "docker-" + ctr + ".scope", Identity{}},
}

// nestingCases are paths with a runtime cgroup below another: by default
// the outermost wins, with Options.Nested the innermost.
var nestingCases = []struct {
	name              string
	path              string
	outermost, nested Identity
}{
	// Issue 21: a container that may make sub-cgroups names one after
	// another container, or another pod, and must not get its identity.
	{"docker scope made inside a docker scope", "/system.slice/docker-" + outer + ".scope/docker-" + ctr + ".scope",
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{ContainerID: ctr, Runtime: "docker"}},
	{"pod made inside a pod's container", "/kubepods/besteffort/pod" + uid + "/" + outer + "/pod" + uid2 + "/" + ctr,
		Identity{ContainerID: outer, PodUID: uid}, Identity{ContainerID: ctr, PodUID: uid2}},
	{"pod made inside a pod's container, systemd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us(uid) + ".slice/cri-containerd-" + outer + ".scope/kubepods-pod" + us(uid2) + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: outer, PodUID: uid, Runtime: "containerd"}, Identity{ContainerID: ctr, PodUID: uid2, Runtime: "containerd"}},
	{"pod cgroup alone made inside a container", "/system.slice/docker-" + outer + ".scope/kubepods/pod" + uid,
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{PodUID: uid}},

	// Nested runtimes that are what they look like.
	{"docker-in-docker cgroupfs", "/docker/" + outer + "/docker/" + ctr,
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{ContainerID: ctr, Runtime: "docker"}},
	{"docker in podman (cgroupfs inside a systemd scope)", "/machine.slice/libpod-" + outer + ".scope/docker/" + ctr + "/",
		Identity{ContainerID: outer, Runtime: "podman"}, Identity{ContainerID: ctr, Runtime: "docker"}},
	{"kind node, systemd, cgroup v2 seen from the host", "/system.slice/docker-" + outer + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + us(uid) + ".slice/cri-containerd-" + ctr + ".scope",
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
	{"kind node, cgroupfs, seen from the host", "/docker/" + outer + "/kubepods/besteffort/pod" + uid + "/" + ctr,
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{ContainerID: ctr, PodUID: uid}},
	{"kind node, pod cgroup below the node container", "/docker/" + outer + "/kubepods/burstable/pod" + uid,
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{PodUID: uid}},
	{"container in a pod in a container", "/kubepods/pod" + uid + "/" + outer + "/docker/" + ctr,
		Identity{ContainerID: outer, PodUID: uid}, Identity{ContainerID: ctr, Runtime: "docker"}},
	{"two pods", "/kubepods/pod" + uid2 + "/" + outer + "/kubepods/pod" + uid + "/" + ctr,
		Identity{ContainerID: outer, PodUID: uid2}, Identity{ContainerID: ctr, PodUID: uid}},
	{"cri-o in minikube's docker node", "/docker/" + outer + "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us(uid) + ".slice/crio-" + ctr + ".scope",
		Identity{ContainerID: outer, Runtime: "docker"}, Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},
}

// Paths with one runtime cgroup read the same either way.
func TestFromPath(t *testing.T) {
	for _, tc := range pathCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromPath(tc.path); got != tc.want {
				t.Errorf("FromPath(%q)\n got %+v\nwant %+v", tc.path, got, tc.want)
			}
			if got := (Options{Nested: true}).FromPath(tc.path); got != tc.want {
				t.Errorf("nested FromPath(%q)\n got %+v\nwant %+v", tc.path, got, tc.want)
			}
		})
	}
}

func TestFromPathNesting(t *testing.T) {
	for _, tc := range nestingCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromPath(tc.path); got != tc.outermost {
				t.Errorf("FromPath(%q)\n got %+v\nwant %+v", tc.path, got, tc.outermost)
			}
			if got := (Options{Nested: true}).FromPath(tc.path); got != tc.nested {
				t.Errorf("nested FromPath(%q)\n got %+v\nwant %+v", tc.path, got, tc.nested)
			}
			// Parse and Read take the same choice.
			if got := (Options{Nested: true}).Parse([]byte("0::" + tc.path + "\n")); got != tc.nested {
				t.Errorf("nested Parse: got %+v, want %+v", got, tc.nested)
			}
			if got := Parse([]byte(v1Lines(tc.path))); got != tc.outermost {
				t.Errorf("Parse: got %+v, want %+v", got, tc.outermost)
			}
		})
	}
}

// v1 prints one line per hierarchy; the helper repeats a path on the
// controllers of a typical v1 host.
func v1Lines(path string) string {
	var b strings.Builder
	for _, c := range []string{"12:pids", "11:memory", "10:cpu,cpuacct", "9:net_cls,net_prio", "8:devices", "1:name=systemd"} {
		b.WriteString(c + ":" + path + "\n")
	}
	return b.String()
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		content string
		want    Identity
	}{
		{"v2 containerd systemd",
			"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us(uid) + ".slice/cri-containerd-" + ctr + ".scope\n",
			Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
		{"v2 docker cgroupfs", "0::/docker/" + ctr + "\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"v2 removed cgroup", "0::/system.slice/docker-" + ctr + ".scope (deleted)\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"v2 own cgroup namespace", "0::/\n", Identity{}},
		{"v2 without trailing newline", "0::/machine.slice/libpod-" + ctr + ".scope",
			Identity{ContainerID: ctr, Runtime: "podman"}},
		{"v1 docker cgroupfs", v1Lines("/docker/"+ctr) + "0::/\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"v1 kubepods cgroupfs", v1Lines("/kubepods/burstable/pod" + uid + "/" + ctr),
			Identity{ContainerID: ctr, PodUID: uid}},
		{"v1 rdma and files not moved, others agree",
			"13:rdma:/\n11:files:/\n" + v1Lines("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"+us(uid)+".slice/crio-"+ctr+".scope"),
			Identity{ContainerID: ctr, PodUID: uid, Runtime: "cri-o"}},
		{"hybrid: v2 line still in containerd.service, v1 in slice:prefix:id form",
			v1Lines("/system.slice/containerd.service/kubepods-burstable-pod"+us(uid)+".slice:cri-containerd:"+ctr) +
				"0::/system.slice/containerd.service\n",
			Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
		{"hybrid: v1 beats a stale v2 line",
			v1Lines("/docker/"+ctr) + "0::/docker/" + outer + "\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"hybrid: only the v2 line identifies", "1:name=systemd:/\n2:pids:/\n0::/system.slice/docker-" + ctr + ".scope\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"v1 disagreeing: name=systemd beats pids beats memory beats cpu",
			"4:cpu:/docker/" + other + "\n3:memory:/docker/" + outer + "\n2:pids:/docker/" + podID + "\n1:name=systemd:/docker/" + ctr + "\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"v1 disagreeing: pids beats memory when name=systemd says nothing",
			"1:name=systemd:/\n3:memory:/docker/" + outer + "\n2:pids:/docker/" + ctr + "\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"v1 disagreeing, unranked controllers: file order",
			"9:blkio:/docker/" + ctr + "\n8:devices:/docker/" + outer + "\n",
			Identity{ContainerID: ctr, Runtime: "docker"}},
		{"path with colons kept whole", "5:name=systemd:/system.slice/containerd.service/kubepods-pod" + us(uid) + ".slice:cri-containerd:" + ctr + "\n",
			Identity{ContainerID: ctr, PodUID: uid, Runtime: "containerd"}},
		{"session", v1Lines("/user.slice/user-0.slice/session-1.scope") + "0::/user.slice/user-0.slice/session-1.scope\n", Identity{}},
		{"empty", "", Identity{}},
		{"no hierarchy number", "x::/docker/" + ctr + "\n", Identity{}},
		{"one field", "/docker/" + ctr + "\n", Identity{}},
		{"binary garbage", "\x00\x01\x02:\xff\xfe::\n\n::", Identity{}},
		{"very long line", "0::/" + strings.Repeat("a", 1<<20) + "/docker/" + ctr + "\n", Identity{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Parse([]byte(tc.content)); got != tc.want {
				t.Errorf("Parse(%.200q)\n got %+v\nwant %+v", tc.content, got, tc.want)
			}
		})
	}
}

// The testdata files are /proc/PID/cgroup copied from this machine (cgroup
// v1 hybrid, no systemd) with podman 4.3 + runc, cgroupfs manager.
func TestParseCapturedPodman(t *testing.T) {
	const id = "755fb4b43edb4595a6730abc8db0ac696b834d7149dba8d5ed3c88802e61e743"
	for file, want := range map[string]Identity{
		"podman-cgroupfs-v1-hybrid.cgroup":        {ContainerID: id, Runtime: "podman"},
		"podman-cgroupfs-v1-hybrid-conmon.cgroup": {},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if got := Parse(b); got != want {
			t.Errorf("%s: got %+v, want %+v", file, got, want)
		}
	}
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := "0::/system.slice/docker-" + ctr + ".scope\n"
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Read(root, 42)
	if want := (Identity{ContainerID: ctr, Runtime: "docker"}); err != nil || got != want {
		t.Errorf("Read: got %+v, %v; want %+v", got, err, want)
	}

	_, err = Read(root, 43)
	var pathErr *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pathErr) {
		t.Errorf("Read of a missing pid: got %v, want the os error for ErrNotExist", err)
	}
}

// The real /proc file of this test process must read without error; its
// identity depends on where the test runs, so only its shape is checked.
func TestReadSelf(t *testing.T) {
	id, err := Read("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, id)
}

// Written apart from the package's own checks, so that a bug there shows.
var (
	containerIDShape = regexp.MustCompile(`^[0-9a-f]{64}$`)
	podUIDShape      = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
)

// checkShape fails unless every field of id is empty or well formed.
func checkShape(t *testing.T, id Identity) {
	t.Helper()
	if id.ContainerID != "" && !containerIDShape.MatchString(id.ContainerID) {
		t.Errorf("ContainerID %q is not 64 lowercase hex", id.ContainerID)
	}
	if id.PodUID != "" && !podUIDShape.MatchString(id.PodUID) {
		t.Errorf("PodUID %q is neither canonical nor a static pod's 32 hex", id.PodUID)
	}
	switch id.Runtime {
	case "", RuntimeDocker, RuntimeContainerd, RuntimeCRIO, RuntimePodman:
	default:
		t.Errorf("unknown Runtime %q", id.Runtime)
	}
	if id.Runtime != "" && id.ContainerID == "" {
		t.Errorf("Runtime %q without ContainerID", id.Runtime)
	}
}
