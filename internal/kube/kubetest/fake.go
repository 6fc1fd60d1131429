// Package kubetest serves a fake CRI runtime for the tests and benchmarks
// of internal/kube and its users.
package kubetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// FakeRuntime is a CRI runtime for tests and benchmarks: cri-api's
// FakeRuntimeService (what kubelet's own tests use), served over a unix
// socket as a real runtime serves it. Only the two calls this package
// makes are served.
type FakeRuntime struct {
	*critest.FakeRuntimeService
	Socket string

	server *grpc.Server
	done   chan struct{}

	mu      sync.Mutex
	block   chan struct{} // non-nil: calls wait for it or their deadline
	waiting int           // calls waiting (Block, SetDelay)
	delay   time.Duration // each call takes this long: a slow runtime that answers
}

// ServeFake serves a new FakeRuntime on socket, making its directory.
func ServeFake(socket string) (*FakeRuntime, error) {
	f := &FakeRuntime{FakeRuntimeService: critest.NewFakeRuntimeService(), Socket: socket}
	return f, f.Start()
}

// Start serves the runtime (again, after Stop) on its socket.
func (f *FakeRuntime) Start() error {
	if err := os.MkdirAll(filepath.Dir(f.Socket), 0o755); err != nil {
		return err
	}
	l, err := net.Listen("unix", f.Socket)
	if err != nil {
		return fmt.Errorf("fake CRI runtime: %w", err)
	}
	f.server = grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(f.server, served{f: f})
	f.done = make(chan struct{})
	go func() { _ = f.server.Serve(l); close(f.done) }()
	return nil
}

// Stop stops serving and removes the socket, as a runtime that exits does.
func (f *FakeRuntime) Stop() {
	f.server.Stop()
	<-f.done
	_ = os.Remove(f.Socket)
}

// Block makes calls hang until Unblock or their deadline: a slow runtime.
func (f *FakeRuntime) Block() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block == nil {
		f.block = make(chan struct{})
	}
}

// Waiting returns how many calls wait now (Block, SetDelay).
func (f *FakeRuntime) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}

// Unblock ends Block.
func (f *FakeRuntime) Unblock() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block != nil {
		close(f.block)
		f.block = nil
	}
}

// SetDelay makes each call take d (or until its deadline).
func (f *FakeRuntime) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

func (f *FakeRuntime) wait(ctx context.Context) error {
	f.mu.Lock()
	block, delay := f.block, f.delay
	if block == nil && delay == 0 {
		f.mu.Unlock()
		return nil
	}
	f.waiting++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
	}()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if block == nil {
		return nil
	}
	select {
	case <-block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// served is the gRPC face of a FakeRuntime.
type served struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	f *FakeRuntime
}

func (s served) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	if err := s.f.wait(ctx); err != nil {
		return nil, err
	}
	items, err := s.f.ListPodSandbox(ctx, req.GetFilter())
	return &runtimeapi.ListPodSandboxResponse{Items: items}, err
}

func (s served) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	if err := s.f.wait(ctx); err != nil {
		return nil, err
	}
	cs, err := s.f.ListContainers(ctx, req.GetFilter())
	return &runtimeapi.ListContainersResponse{Containers: cs}, err
}

// FakePod is a pod for SetPods: a sandbox named namespace/name with uid,
// and a running container per name in containers.
type FakePod struct {
	UID, Namespace, Name string
	Containers           []string
}

// SetPods replaces the runtime's sandboxes and containers with pods, all
// ready and running, labelled as kubelet labels them. Container i of pod
// p has ID "<p.UID>-<i>" and image "registry.example/<name>:1".
func (f *FakeRuntime) SetPods(pods []FakePod) {
	var sandboxes []*critest.FakePodSandbox
	var containers []*critest.FakeContainer
	for _, p := range pods {
		sid := "sandbox-" + p.UID
		labels := map[string]string{
			"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": p.Namespace, "io.kubernetes.pod.uid": p.UID,
		}
		sandboxes = append(sandboxes, &critest.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
			Id:       sid,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID},
			State:    runtimeapi.PodSandboxState_SANDBOX_READY,
			Labels:   labels,
		}})
		for i, name := range p.Containers {
			containers = append(containers, &critest.FakeContainer{SandboxID: sid, ContainerStatus: runtimeapi.ContainerStatus{
				Id:       fmt.Sprintf("%s-%d", p.UID, i),
				Metadata: &runtimeapi.ContainerMetadata{Name: name},
				State:    runtimeapi.ContainerState_CONTAINER_RUNNING,
				Image:    &runtimeapi.ImageSpec{Image: "registry.example/" + name + ":1"},
				ImageRef: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Labels:   labels,
			}})
		}
	}
	f.SetFakeSandboxes(sandboxes)
	f.SetFakeContainers(containers)
}
