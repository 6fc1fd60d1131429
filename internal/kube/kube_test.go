package kube_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/kube/kubetest"
)

// logBuffer collects log records, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

func newClient(t *testing.T, opts kube.Options) (*kube.Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	c, err := kube.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, logs
}

func serveFake(t *testing.T, socket string) *kubetest.FakeRuntime {
	t.Helper()
	f, err := kubetest.ServeFake(socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

const (
	uidA = "0a7b1c2d-0000-4000-8000-00000000000a"
	uidB = "0a7b1c2d-0000-4000-8000-00000000000b"
	uidC = "0a7b1c2d-0000-4000-8000-00000000000c"
)

// refs makes the PodRefs of namespaces whose cgroups give these pod UIDs
// and no container ID.
func refs(uids ...string) []kube.PodRef {
	out := make([]kube.PodRef, len(uids))
	for i, uid := range uids {
		out[i] = kube.PodRef{UID: uid}
	}
	return out
}

// Two pods, one with two containers; a third UID the runtime does not know.
func TestPods(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f := serveFake(t, socket)
	f.SetPods([]kubetest.FakePod{
		{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"nginx", "app"}},
		{UID: uidB, Namespace: "kube-system", Name: "coredns-x", Containers: []string{"coredns"}},
	})
	c, _ := newClient(t, kube.Options{Endpoint: "unix://" + socket})
	pods, up := c.Pods(refs(uidA, uidB, uidC))
	if !up {
		t.Fatal("up = false against a runtime that answers")
	}
	want := map[string]kube.Pod{
		uidA: {Namespace: "shop", Name: "web-1", Sandboxes: []string{"sandbox-" + uidA}, Containers: []kube.Container{
			{ID: uidA + "-1", Name: "app", Image: "registry.example/app:1", SandboxID: "sandbox-" + uidA},
			{ID: uidA + "-0", Name: "nginx", Image: "registry.example/nginx:1", SandboxID: "sandbox-" + uidA},
		}},
		uidB: {Namespace: "kube-system", Name: "coredns-x", Sandboxes: []string{"sandbox-" + uidB}, Containers: []kube.Container{
			{ID: uidB + "-0", Name: "coredns", Image: "registry.example/coredns:1", SandboxID: "sandbox-" + uidB},
		}},
	}
	if !reflect.DeepEqual(pods, want) {
		t.Errorf("pods:\n got %+v\nwant %+v", pods, want)
	}
	// Asked for one UID: one pod, from the same two calls.
	calls := len(f.GetCalls())
	if pods, _ := c.Pods(refs(uidB)); len(pods) != 1 || pods[uidB].Name != "coredns-x" {
		t.Errorf("pods for %s: %+v", uidB, pods)
	}
	if got := f.GetCalls()[calls:]; !reflect.DeepEqual(got, []string{"ListPodSandbox", "ListContainers"}) {
		t.Errorf("one Pods call made the calls %v, want ListPodSandbox and ListContainers once", got)
	}
}

// Exited containers are not listed; a pod whose sandbox was made again
// keeps its names and gets the new sandbox's containers, and kubelet's
// user_specified_image is the image shown.
func TestPodsStatesAndImages(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f := serveFake(t, socket)
	f.SetFakeSandboxes([]*critest.FakePodSandbox{
		{PodSandboxStatus: runtimeapi.PodSandboxStatus{Id: "old", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web-1", Namespace: "shop", Uid: uidA}}},
		{PodSandboxStatus: runtimeapi.PodSandboxStatus{Id: "new", State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web-1", Namespace: "shop", Uid: uidA}}},
		// Not made by kubelet: no UID, never matched.
		{PodSandboxStatus: runtimeapi.PodSandboxStatus{Id: "bare", State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "bare"}}},
	})
	f.SetFakeContainers([]*critest.FakeContainer{
		{SandboxID: "old", ContainerStatus: runtimeapi.ContainerStatus{Id: "c-old", State: runtimeapi.ContainerState_CONTAINER_EXITED,
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "sha256:aaa"}}},
		{SandboxID: "new", ContainerStatus: runtimeapi.ContainerStatus{Id: "c-new", State: runtimeapi.ContainerState_CONTAINER_RUNNING,
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "sha256:bbb", UserSpecifiedImage: "nginx:1.27"}}},
		{SandboxID: "bare", ContainerStatus: runtimeapi.ContainerStatus{Id: "c-bare", State: runtimeapi.ContainerState_CONTAINER_RUNNING,
			Metadata: &runtimeapi.ContainerMetadata{Name: "x"}, Image: &runtimeapi.ImageSpec{Image: "x"}}},
	})
	c, _ := newClient(t, kube.Options{Endpoint: socket})
	pods, up := c.Pods(refs(uidA, ""))
	want := map[string]kube.Pod{uidA: {Namespace: "shop", Name: "web-1", Sandboxes: []string{"new", "old"},
		Containers: []kube.Container{{ID: "c-new", Name: "app", Image: "nginx:1.27", SandboxID: "new"}}}}
	if !up || !reflect.DeepEqual(pods, want) {
		t.Errorf("pods (up %v):\n got %+v\nwant %+v", up, pods, want)
	}
}

// Two ready sandboxes of one pod (kubelet making it again): each network
// namespace gets the containers of its own sandbox, found by the sandbox's
// ID or by one of its containers' (no pause process); an ID of neither
// gets them all.
func TestPodIn(t *testing.T) {
	p := kube.Pod{Namespace: "shop", Name: "web-1", Sandboxes: []string{"s1", "s2", "s3"}, Containers: []kube.Container{
		{ID: "c1", Name: "app", SandboxID: "s1"},
		{ID: "c3", Name: "app", SandboxID: "s2"},
		{ID: "c2", Name: "sidecar", SandboxID: "s1"},
	}}
	s1 := []kube.Container{p.Containers[0], p.Containers[2]}
	s2 := []kube.Container{p.Containers[1]}
	for _, tc := range []struct {
		id   string
		want []kube.Container
	}{
		{"s1", s1}, {"c2", s1}, {"s2", s2}, {"c3", s2},
		{"s3", nil}, // its network made, its containers not started
		{"s9", p.Containers}, {"", p.Containers},
	} {
		if got := p.In(tc.id); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("In(%q) = %+v, want %+v", tc.id, got, tc.want)
		}
	}
}

// A pod's new sandbox (same UID, a container ID the last query did not
// cover) is asked for at once, not at the next refresh: until then its
// namespace would list the old sandbox's containers. Asked once, it is
// covered.
func TestPodsNewSandbox(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f := serveFake(t, socket)
	f.SetPods([]kubetest.FakePod{{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}}})
	c, _ := newClient(t, kube.Options{Endpoint: socket, RefreshInterval: time.Hour})
	old := kube.PodRef{UID: uidA, ContainerID: "sandbox-" + uidA}
	if pods, up := c.Pods([]kube.PodRef{old}); !up || len(pods[uidA].In(old.ContainerID)) != 1 {
		t.Fatalf("pods (up %v): %+v", up, pods)
	}
	sandbox := func(id string, attempt uint32) *critest.FakePodSandbox {
		return &critest.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
			Id: id, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web-1", Namespace: "shop", Uid: uidA, Attempt: attempt}}}
	}
	f.SetFakeSandboxes([]*critest.FakePodSandbox{sandbox("sandbox-"+uidA, 0), sandbox("sandbox-2", 1)})
	calls := len(f.GetCalls())
	both := []kube.PodRef{old, {UID: uidA, ContainerID: "sandbox-2"}}
	pods, up := c.Pods(both)
	if got := len(f.GetCalls()) - calls; got != 2 {
		t.Errorf("a new sandbox of a known pod made %d calls, want 2 (asked at once)", got)
	}
	if !up || !slices.Equal(pods[uidA].Sandboxes, []string{"sandbox-" + uidA, "sandbox-2"}) || len(pods[uidA].In("sandbox-2")) != 0 {
		t.Errorf("pods (up %v): %+v, want both sandboxes and none of the containers in sandbox-2", up, pods)
	}
	calls = len(f.GetCalls())
	c.Pods(both)
	if got := len(f.GetCalls()) - calls; got != 0 {
		t.Errorf("asked again for sandboxes already covered: %d calls", got)
	}
}

// serveNoCRI serves gRPC without a CRI service at socket, as a containerd
// with its CRI plugin off does: every call is Unimplemented. It counts the
// calls; stop ends it and removes the socket.
func serveNoCRI(t *testing.T, socket string) (calls *atomic.Int32, stop func()) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	calls = &atomic.Int32{}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		calls.Add(1)
		return status.Error(codes.Unimplemented, "unknown service runtime.v1.RuntimeService")
	}))
	go func() { _ = srv.Serve(l) }()
	var once sync.Once
	stop = func() { once.Do(func() { srv.Stop(); _ = os.Remove(socket) }) }
	t.Cleanup(stop)
	return calls, stop
}

// Without an endpoint, a default socket that serves gRPC but no CRI (the
// containerd Docker installs, its CRI plugin off, beside k3s's) is passed
// over for the next one that exists, once: later queries go to the one
// that answered, and the log says so once.
func TestPodsSocketWithoutCRI(t *testing.T) {
	root := t.TempDir()
	docker := filepath.Join(root, "run/containerd/containerd.sock")
	k3s := filepath.Join(root, "run/k3s/containerd/containerd.sock")
	dockerCalls, _ := serveNoCRI(t, docker)
	f := serveFake(t, k3s)
	f.SetPods([]kubetest.FakePod{{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}}})

	c, logs := newClient(t, kube.Options{Root: root})
	pods, up := c.Pods(refs(uidA))
	if !up || pods[uidA].Name != "web-1" {
		t.Fatalf("up %v, pods %+v; want web-1 from %s", up, pods, k3s)
	}
	if l := logs.lines(); len(l) != 2 || !strings.Contains(l[0], "socket="+docker) || !strings.Contains(l[1], "socket="+k3s) {
		t.Errorf("log %q, want the socket without CRI passed over, then names from %s", l, k3s)
	}
	asked := dockerCalls.Load()
	for range 3 { // RefreshInterval 0: each call asks
		if pods, up = c.Pods(refs(uidA, uidB)); !up || pods[uidA].Name != "web-1" {
			t.Errorf("later call: up %v, pods %+v", up, pods)
		}
	}
	if n := dockerCalls.Load(); n != asked {
		t.Errorf("the socket without CRI was asked %d more times after it was passed over", n-asked)
	}
}

// A default socket passed over comes back when it serves the CRI (its
// runtime restarted with the CRI plugin on), even while another socket
// without CRI remains: a query tries every default socket once.
func TestPodsSocketGainsCRI(t *testing.T) {
	root := t.TempDir()
	containerd := filepath.Join(root, "run/containerd/containerd.sock")
	k3s := filepath.Join(root, "run/k3s/containerd/containerd.sock")
	_, stopFirst := serveNoCRI(t, containerd)
	k3sCalls, _ := serveNoCRI(t, k3s)
	c, logs := newClient(t, kube.Options{Root: root})
	if _, up := c.Pods(refs(uidA)); up {
		t.Fatal("up with no CRI at either socket")
	}
	stopFirst()
	f := serveFake(t, containerd)
	f.SetPods([]kubetest.FakePod{{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}}})
	if pods, up := c.Pods(refs(uidA)); !up || pods[uidA].Name != "web-1" {
		t.Fatalf("containerd serving the CRI again: up %v, pods %+v", up, pods)
	}
	asked := k3sCalls.Load()
	if pods, up := c.Pods(refs(uidA)); !up || pods[uidA].Name != "web-1" || k3sCalls.Load() != asked {
		t.Errorf("next call: up %v, pods %+v, %d more calls to the socket without CRI", up, pods, k3sCalls.Load()-asked)
	}
	noCRI := 0
	for _, l := range logs.lines() {
		if strings.Contains(l, "no CRI service") {
			noCRI++
		}
	}
	if noCRI != 2 {
		t.Errorf("%d log lines of a socket without CRI, want one per socket:\n%s", noCRI, strings.Join(logs.lines(), "\n"))
	}
}

// The runtime away in every way the exporter meets it, and back: the
// answer comes, up is 0, names last seen are kept for the UIDs still
// asked for, and the log has one line per change of state.
func TestPodsRuntimeAway(t *testing.T) {
	root := t.TempDir()
	// The default endpoint under a host root: k3s's socket, the third
	// looked for.
	socket := filepath.Join(root, "run/k3s/containerd/containerd.sock")
	c, logs := newClient(t, kube.Options{Root: root, Timeout: 300 * time.Millisecond})
	if !strings.Contains(c.Endpoint(), filepath.Join(root, "run/containerd/containerd.sock")) {
		t.Errorf("endpoint %q does not name containerd's socket under %s", c.Endpoint(), root)
	}

	check := func(step string, uids []string, wantUp bool, want map[string]string, wantLogs int) {
		t.Helper()
		pods, up := c.Pods(refs(uids...))
		got := map[string]string{}
		for uid, p := range pods {
			got[uid] = p.Namespace + "/" + p.Name
		}
		if up != wantUp || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: up %v, pods %v; want up %v, pods %v", step, up, got, wantUp, want)
		}
		if lines := logs.lines(); len(lines) != wantLogs {
			t.Errorf("%s: %d log lines, want %d: %q", step, len(lines), wantLogs, lines)
		}
	}
	none := map[string]string{}

	// No socket at all.
	check("no socket", []string{uidA}, false, none, 1)
	check("no socket, again", []string{uidA}, false, none, 1)
	if l := logs.lines()[0]; !strings.Contains(l, "no CRI socket at any of") || !strings.Contains(l, socket) {
		t.Errorf("log line does not say which sockets were looked for: %s", l)
	}

	// The runtime starts: names, without a new client.
	f, err := kubetest.ServeFake(socket)
	if err != nil {
		t.Fatal(err)
	}
	f.SetPods([]kubetest.FakePod{
		{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}},
		{UID: uidB, Namespace: "shop", Name: "web-2", Containers: []string{"app"}},
	})
	both := map[string]string{uidA: "shop/web-1", uidB: "shop/web-2"}
	waitUp(t, c)
	check("runtime started", []string{uidA, uidB}, true, both, 2)

	// Slow: the call gives up at the timeout; names kept.
	f.Block()
	check("slow", []string{uidA, uidB}, false, both, 3)
	f.Unblock()
	check("answers again", []string{uidA, uidB}, true, both, 4)

	// Gone (socket removed), with pod B's namespace gone too: B forgotten.
	f.Stop()
	check("stopped", []string{uidA}, false, map[string]string{uidA: "shop/web-1"}, 5)
	check("stopped, B back", []string{uidA, uidB}, false, map[string]string{uidA: "shop/web-1"}, 5)

	// Refused: the socket file is there, nobody listens.
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close()
	check("refused", []string{uidA}, false, map[string]string{uidA: "shop/web-1"}, 5)
	if err := os.Remove(socket); err != nil {
		t.Fatal(err)
	}

	// Back: names come back, up 1, one line.
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	waitUp(t, c)
	check("restarted", []string{uidA, uidB}, true, both, 6)
	t.Logf("log:\n%s", strings.Join(logs.lines(), "\n"))
}

// A call that must ask while another call's query hangs waits at most the
// timeout in all, not the rest of the other's and then its own.
func TestPodsWaitBounded(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f := serveFake(t, socket)
	timeout := 2 * time.Second
	c, _ := newClient(t, kube.Options{Endpoint: socket, Timeout: timeout})
	waitUp(t, c)
	f.Block()
	defer f.Unblock()
	first := make(chan struct{})
	go func() { defer close(first); c.Pods(refs(uidA)) }()
	for f.Waiting() == 0 {
		select {
		case <-first:
			t.Fatal("the first call returned before its query reached the runtime")
		case <-time.After(10 * time.Millisecond):
		}
	}
	start := time.Now()
	_, up := c.Pods(refs(uidB)) // a new UID: must ask at once
	waited := time.Since(start)
	<-first
	// Behind the first query it would wait for that one's remaining time
	// (nearly the whole timeout) and then for its own: ~2 timeouts.
	if up || waited > timeout+timeout/2 {
		t.Fatalf("second call: up %v after %v, want down within the %v timeout", up, waited, timeout)
	}
}

// A runtime that is slow but answers is not called down because two
// scrapes asked at once: the second, which waited for the first's query
// and then ran out of time, changes nothing, and its new pod is asked for
// again at the next call.
func TestPodsSlowRuntimeOverlapping(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f := serveFake(t, socket)
	web1 := kubetest.FakePod{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}}
	f.SetPods([]kubetest.FakePod{web1})
	timeout := time.Second
	c, logs := newClient(t, kube.Options{Endpoint: socket, Timeout: timeout, RefreshInterval: time.Hour})
	waitUp(t, c)
	// A query is two calls of 0.35 s: 0.7 s of the 1 s timeout. A second
	// query waiting for most of one has too little left for its own.
	f.SetDelay(350 * time.Millisecond)
	first := make(chan struct{})
	go func() { defer close(first); c.Pods(refs(uidB)) }() // new: asks
	eventually(t, "the first query to reach the runtime", func() bool { return f.Waiting() > 0 })
	time.Sleep(100 * time.Millisecond)          // well into it
	if _, up := c.Pods(refs(uidA, uidC)); !up { // C is new too: waits, then runs out
		t.Errorf("second call: the runtime called down")
	}
	<-first
	for _, l := range logs.lines() {
		if strings.Contains(l, "not answering") {
			t.Errorf("logged as down: %s", l)
		}
	}
	f.SetDelay(0)
	f.SetPods([]kubetest.FakePod{web1, {UID: uidC, Namespace: "shop", Name: "web-3", Containers: []string{"app"}}})
	if pods, up := c.Pods(refs(uidA, uidC)); !up || pods[uidC].Name != "web-3" {
		t.Errorf("next call: up %v, pods %v; want web-3 named (C asked for again)", up, pods)
	}
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
	}
}

// waitUp asks until the runtime answers: the client reconnects on its own,
// with a backoff of at most a second.
func waitUp(t *testing.T, c *kube.Client) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, up := c.Pods(nil); up {
			return
		}
	}
	t.Fatal("the runtime did not answer within 30 s of starting")
}

func TestNewBadTimeout(t *testing.T) {
	if _, err := kube.New(kube.Options{Timeout: 0}); err == nil {
		t.Error("New accepted a zero timeout")
	}
}

// The one CRI query of a scrape at 1,000 pods (2,000 running containers,
// labelled as kubelet labels them), over a unix socket:
//
//	go test -run '^$' -bench Pods -benchmem ./internal/kube/
func BenchmarkPods(b *testing.B) {
	const n = 1000
	fake, err := kubetest.ServeFake(filepath.Join(b.TempDir(), "cri.sock"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Stop)
	var pods []kubetest.FakePod
	var uids []string
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("0f1e2d3c-4b5a-4978-8796-%012x", i)
		uids = append(uids, uid)
		pods = append(pods, kubetest.FakePod{UID: uid, Namespace: fmt.Sprintf("team-%d", i%20), Name: fmt.Sprintf("web-%d-7d4b9c8f6-x%04d", i, i),
			Containers: []string{"app", "sidecar"}})
	}
	fake.SetPods(pods)
	c, err := kube.New(kube.Options{Endpoint: fake.Socket, Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got, up := c.Pods(refs(uids...)); !up || len(got) != n {
			b.Fatalf("up %v, %d pods", up, len(got))
		}
	}
}

// With a refresh interval, the runtime is asked at once only for a UID the
// last query did not cover, and otherwise in the background once the
// names are that old.
func TestPodsCached(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f := serveFake(t, socket)
	f.SetPods([]kubetest.FakePod{{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}}})
	c, _ := newClient(t, kube.Options{Endpoint: socket, RefreshInterval: time.Hour})
	queries := func() int { return len(f.GetCalls()) / 2 }
	ask := func(step string, wantQueries int, uids ...string) map[string]kube.Pod {
		t.Helper()
		pods, up := c.Pods(refs(uids...))
		if !up || queries() != wantQueries {
			t.Errorf("%s: up %v, %d queries, want up and %d", step, up, queries(), wantQueries)
		}
		return pods
	}
	ask("first", 1, uidA)
	ask("same pod", 1, uidA)
	ask("no pod", 1)
	// A UID the runtime does not know (a cgroup shaped like a pod's): asked
	// once, not at every scrape.
	ask("unknown UID", 2, uidA, uidC)
	ask("unknown UID again", 2, uidA, uidC)
	// A new pod: asked at once, and named in the same call.
	f.SetPods([]kubetest.FakePod{
		{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"app"}},
		{UID: uidB, Namespace: "shop", Name: "web-2", Containers: []string{"app"}},
	})
	if p := ask("new pod", 3, uidA, uidB); p[uidB].Name != "web-2" {
		t.Errorf("new pod not named at once: %+v", p)
	}

	// Names that old are refreshed in the background: a container
	// restarted in pod A (new id) shows in a later call.
	c2, _ := newClient(t, kube.Options{Endpoint: socket, RefreshInterval: time.Nanosecond})
	if p, _ := c2.Pods(refs(uidA)); len(p[uidA].Containers) != 1 || p[uidA].Containers[0].ID != uidA+"-0" {
		t.Fatalf("pods: %+v", p)
	}
	f.SetPods([]kubetest.FakePod{{UID: uidA, Namespace: "shop", Name: "web-1", Containers: []string{"init", "app"}}})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p, _ := c2.Pods(refs(uidA))
		if len(p[uidA].Containers) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background refresh never showed the new container: %+v", p)
		}
	}
}

// A socket the exporter may not connect to (mode 0600, root's; the
// exporter as another user, or as a root without CAP_DAC_OVERRIDE that
// does not own it): up 0, and the log says permission denied. The test
// binary runs itself as user 65534 for that.
func TestPodsPermissionDenied(t *testing.T) {
	if socket := os.Getenv("KUBE_TEST_DENIED_SOCKET"); socket != "" {
		c, logs := newClient(t, kube.Options{Endpoint: socket})
		if _, up := c.Pods(refs(uidA)); up {
			t.Fatalf("up as user %d on a socket of mode 0600", os.Getuid())
		}
		if l := logs.lines(); len(l) != 1 || !strings.Contains(l[0], "permission denied") || !strings.Contains(l[0], socket) {
			t.Fatalf("log does not say permission denied on %s: %q", socket, l)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run as another user")
	}
	dir, err := os.MkdirTemp("", "kube-denied-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "cri.sock")
	serveFake(t, socket)
	if err := os.Chmod(socket, 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "kube.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPodsPermissionDenied$", "-test.v")
	cmd.Env = append(os.Environ(), "KUBE_TEST_DENIED_SOCKET="+socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPodsPermissionDenied") {
		t.Fatalf("as user 65534: %v\n%s", err, out)
	}
}
