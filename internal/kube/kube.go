// Package kube names the pods of a Kubernetes node from its container
// runtime, over the CRI gRPC API, as kubelet itself sees them: no API
// server and no RBAC. A pod sandbox is matched to a network namespace by
// the pod UID that the namespace's cgroup gives (internal/cgroupid), so
// this works the same under the cgroupfs and systemd cgroup drivers and
// under any CRI runtime.
//
// Only the exporter links this package: psnic must not link gRPC.
package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultSockets are the well-known CRI sockets, in the order they are
// tried: containerd's, CRI-O's and k3s's (its embedded containerd).
var DefaultSockets = []string{
	"/run/containerd/containerd.sock",
	"/run/crio/crio.sock",
	"/run/k3s/containerd/containerd.sock",
}

// Pod is what the runtime tells of a pod.
type Pod struct {
	Namespace, Name string
	Containers      []Container // the running ones, by name
	Sandboxes       []string    // the IDs of its sandboxes (usually one), sorted
}

// PodRef is what a network namespace's cgroup tells of its pod: the pod
// UID, and the container ID of the namespace's oldest process (its
// sandbox's, or a container's; "" when unknown).
type PodRef struct {
	UID, ContainerID string
}

// Container is a running container of a pod.
type Container struct {
	ID, Name, Image string
	SandboxID       string // the pod sandbox it runs in
}

// In returns the containers of p in the sandbox that id names: the
// sandbox's own ID (its pause container's, the oldest process of the pod's
// network namespace) or the ID of one of its containers (a pod without a
// pause process). Each sandbox has a network namespace of its own, and
// while kubelet makes a pod's sandbox again two of them may run with the
// same pod UID: the new one has none of the old one's containers, and
// none at all until they start. When id names none of p's sandboxes and
// containers, In returns all of p's containers.
func (p Pod) In(id string) []Container {
	sandbox := ""
	if id != "" {
		if slices.Contains(p.Sandboxes, id) {
			sandbox = id
		} else if i := slices.IndexFunc(p.Containers, func(c Container) bool { return c.ID == id }); i >= 0 {
			sandbox = p.Containers[i].SandboxID
		}
	}
	if sandbox == "" {
		return p.Containers
	}
	var out []Container
	for _, c := range p.Containers {
		if c.SandboxID == sandbox {
			out = append(out, c)
		}
	}
	return out
}

// Options configure a Client.
type Options struct {
	// Endpoint is the runtime's socket, as a path or unix:// URL. Empty:
	// the first of DefaultSockets under Root that exists and serves the
	// CRI, looked for at every connection attempt (a runtime that starts
	// after the exporter is found). A socket that answers that it has no
	// CRI service (Docker's containerd, beside k3s's) is passed over for
	// the next while one remains.
	Endpoint string
	// Root is the host's root filesystem as the exporter sees it ("/",
	// or e.g. /host in a container): where DefaultSockets are looked for.
	Root string
	// Timeout bounds how long a Pods call waits for the runtime, for a
	// query another call has under way included.
	Timeout time.Duration
	// RefreshInterval is how old names may get before they are asked
	// again in the background, when no new pod appeared; 0 asks at every
	// Pods call. See Pods.
	RefreshInterval time.Duration
	Logger          *slog.Logger
}

// Client asks the runtime for the pods of the node, and remembers what it
// last answered. It is safe for concurrent use.
type Client struct {
	opts Options

	connMu sync.Mutex // conn and client are made anew when a default socket has no CRI
	conn   *grpc.ClientConn
	client runtimeapi.RuntimeServiceClient
	closed bool

	dialMu   sync.Mutex
	dialErr  error           // the last connection attempt's, for a readable log line
	dialPath string          // the socket it tried
	notCRI   map[string]bool // default sockets whose last answer was that they have no CRI service
	prefer   string          // the default socket to dial while it exists: the one passed over to

	querying chan struct{} // holds a token while a query runs: one at a time

	mu         sync.Mutex
	pods       map[string]Pod  // by pod UID, as last answered
	covered    map[string]bool // UIDs the last query answered or was asked for
	coveredIDs map[string]bool // container IDs it answered (sandboxes', containers') or was asked for
	last       time.Time       // when the last query ended
	refreshing bool            // a background query is under way
	state      int             // 0 not asked yet, 1 up, 2 down: logged on change
}

const (
	stateUnknown = iota
	stateUp
	stateDown
)

// New returns a Client. It does not connect: the first Pods call does, and
// a runtime away then or later is reported there, not here.
func New(opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("CRI timeout %v: must be positive", opts.Timeout)
	}
	c := &Client{opts: opts, pods: map[string]Pod{}, querying: make(chan struct{}, 1), notCRI: map[string]bool{}}
	if err := c.connect(); err != nil {
		return nil, err
	}
	return c, nil
}

// connect makes the gRPC client, which dials (c.dial) when first used and
// again after the connection is lost.
func (c *Client) connect() error {
	conn, err := grpc.NewClient("passthrough:///cri",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(c.dial),
		// Back within a second of the runtime's return, not the default
		// two minutes: names come back without a restart.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: c.opts.Timeout,
		}),
		// Kubelet's limit: a node's full list is far from it.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return fmt.Errorf("CRI client for %s: %w", c.Endpoint(), err)
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.closed {
		_ = conn.Close()
		return errors.New("CRI client closed")
	}
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.conn, c.client = conn, runtimeapi.NewRuntimeServiceClient(conn)
	return nil
}

// Close closes the connection to the runtime.
func (c *Client) Close() error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.closed = true
	return c.conn.Close()
}

// Endpoint describes where the runtime is asked: the socket given, or the
// well-known ones looked for.
func (c *Client) Endpoint() string {
	if c.opts.Endpoint != "" {
		return socketPath(c.opts.Endpoint)
	}
	return "first of " + strings.Join(c.defaultSockets(), ", ")
}

func (c *Client) defaultSockets() []string {
	root := cmp.Or(c.opts.Root, "/")
	out := make([]string, len(DefaultSockets))
	for i, s := range DefaultSockets {
		out[i] = filepath.Join(root, s)
	}
	return out
}

// socketPath accepts the forms kubelet's --container-runtime-endpoint does:
// unix:///path, unix:/path, or a bare path.
func socketPath(endpoint string) string {
	if p, ok := strings.CutPrefix(endpoint, "unix://"); ok {
		return p
	}
	if p, ok := strings.CutPrefix(endpoint, "unix:"); ok {
		return p
	}
	return endpoint
}

func (c *Client) dial(ctx context.Context, _ string) (net.Conn, error) {
	path := ""
	var err error
	if c.opts.Endpoint != "" {
		path = socketPath(c.opts.Endpoint)
	} else {
		path, err = c.findSocket()
	}
	var conn net.Conn
	if err == nil {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", path)
	}
	c.dialMu.Lock()
	c.dialErr, c.dialPath = err, path
	c.dialMu.Unlock()
	return conn, err
}

// existingSockets returns the default sockets that exist, in order.
func (c *Client) existingSockets() []string {
	var exist []string
	for _, p := range c.defaultSockets() {
		if _, err := os.Stat(p); err == nil {
			exist = append(exist, p)
		}
	}
	return exist
}

// findSocket returns the default socket a query passed over to, while it
// exists; else the first that exists and did not last answer without a
// CRI service; else the first that exists.
func (c *Client) findSocket() (string, error) {
	exist := c.existingSockets()
	if len(exist) == 0 {
		return "", fmt.Errorf("no CRI socket at any of %s", strings.Join(c.defaultSockets(), ", "))
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	if slices.Contains(exist, c.prefer) {
		return c.prefer, nil
	}
	for _, p := range exist {
		if !c.notCRI[p] {
			return p, nil
		}
	}
	return exist[0], nil
}

// passOver notes that the default socket of the connection answered
// without a CRI service, and connects anew to the first other default
// socket that exists and is not in tried (the sockets this query asked),
// when there is one: the next call goes there. It reports whether it did.
func (c *Client) passOver(tried *[]string) bool {
	if c.opts.Endpoint != "" {
		return false
	}
	exist := c.existingSockets()
	c.dialMu.Lock()
	bad := c.dialPath
	first := !c.notCRI[bad]
	c.notCRI[bad] = true
	*tried = append(*tried, bad)
	next := ""
	for _, p := range exist {
		if !slices.Contains(*tried, p) {
			next = p
			break
		}
	}
	if next != "" {
		c.prefer = next
		*tried = append(*tried, next) // asked next, whichever socket the dial finds
	}
	c.dialMu.Unlock()
	if first { // once per socket, not at every query
		c.opts.Logger.Info("CRI socket has no CRI service, trying the next default socket", "socket", bad, "next", next)
	}
	return next != "" && c.connect() == nil
}

// answered notes that the socket of the connection serves the CRI.
func (c *Client) answered() {
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	delete(c.notCRI, c.dialPath)
}

// Pods returns the names of the pods of refs by pod UID, and whether the
// runtime answered the last query. UIDs the runtime does not know are left
// out. The runtime is asked with two calls (pod sandboxes, running
// containers) for all the UIDs at once, never one per pod:
//
//   - at once, when a UID appears that the last query did not cover (a
//     new pod), or a container ID (a pod's new sandbox), or with a
//     RefreshInterval of 0;
//   - otherwise in the background, when the last query is RefreshInterval
//     old: this call answers from what the runtime last told, the next
//     from the refreshed names. At most one query runs at a time.
//
// When the runtime does not answer in time, the pods it last told of are
// kept for the UIDs still asked for: a namespace keeps its names while it
// exists.
func (c *Client) Pods(refs []PodRef) (map[string]Pod, bool) {
	c.mu.Lock()
	unknown := c.last.IsZero() || c.opts.RefreshInterval <= 0 || !c.coveredLocked(refs)
	c.mu.Unlock()
	if unknown {
		c.refresh(refs, false)
	} else {
		c.mu.Lock()
		if !c.refreshing && time.Since(c.last) >= c.opts.RefreshInterval {
			c.refreshing = true
			go c.refresh(slices.Clone(refs), true)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Pod, len(refs))
	for _, r := range refs {
		if p, ok := c.pods[r.UID]; ok {
			out[r.UID] = p
		}
	}
	return out, c.state == stateUp
}

// coveredLocked reports whether the last query covered every UID and
// container ID of refs. c.mu is held.
func (c *Client) coveredLocked(refs []PodRef) bool {
	for _, r := range refs {
		if !c.covered[r.UID] || r.ContainerID != "" && !c.coveredIDs[r.ContainerID] {
			return false
		}
	}
	return true
}

// refresh asks the runtime, for the namespaces of refs, and remembers the
// answer; a failed query keeps the pods of refs as last seen. It takes at
// most Timeout, waiting for a query under way included: a scrape that must
// ask waits no longer than that, however long the runtime hangs.
//
// Only a query that had the whole Timeout tells whether the runtime
// answers. One that waited for another first, and then timed out on what
// was left (or never got its turn), changes nothing: the query it waited
// for told the state, and the UIDs it was for are asked again next time.
func (c *Client) refresh(refs []PodRef, background bool) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	waited := false
	select {
	case c.querying <- struct{}{}:
	default:
		waited = true
		select {
		case c.querying <- struct{}{}:
		case <-ctx.Done():
			c.inconclusive(background)
			return
		}
	}
	if waited && c.coveredSince(start, refs) {
		<-c.querying
		c.inconclusive(background) // nothing to learn: the query waited for answered
		return
	}
	fresh, err := c.query(ctx)
	<-c.querying
	if err != nil && waited {
		c.inconclusive(background)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if background {
		c.refreshing = false
	}
	c.last = time.Now()
	covered := make(map[string]bool, len(refs)+len(fresh))
	coveredIDs := make(map[string]bool, len(refs))
	for _, r := range refs {
		covered[r.UID] = true
		if r.ContainerID != "" {
			coveredIDs[r.ContainerID] = true
		}
	}
	if err == nil {
		c.pods = fresh
		for uid, p := range fresh {
			covered[uid] = true
			for _, id := range p.Sandboxes {
				coveredIDs[id] = true
			}
			for _, ct := range p.Containers {
				coveredIDs[ct.ID] = true
			}
		}
	} else {
		// Forget pods whose namespaces are gone: their names cannot
		// come back, and the cache would only grow.
		kept := make(map[string]Pod, len(refs))
		for _, r := range refs {
			if p, ok := c.pods[r.UID]; ok {
				kept[r.UID] = p
			}
		}
		c.pods = kept
	}
	c.covered, c.coveredIDs = covered, coveredIDs
	c.logChange(err)
}

// coveredSince reports whether a query that ended after start answered
// for every one of refs.
func (c *Client) coveredSince(start time.Time, refs []PodRef) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateUp && !c.last.Before(start) && c.coveredLocked(refs)
}

// inconclusive ends a refresh that learnt nothing.
func (c *Client) inconclusive(background bool) {
	if background {
		c.mu.Lock()
		c.refreshing = false
		c.mu.Unlock()
	}
}

// logChange logs the runtime answering or not, once per change.
func (c *Client) logChange(err error) {
	if err == nil {
		if c.state != stateUp {
			c.dialMu.Lock()
			socket := c.dialPath
			c.dialMu.Unlock()
			c.opts.Logger.Info("CRI runtime answering: pods are named", "socket", socket)
		}
		c.state = stateUp
		return
	}
	if c.state != stateDown {
		c.dialMu.Lock()
		socket := c.dialPath // the socket found, when one was
		c.dialMu.Unlock()
		c.opts.Logger.Warn("CRI runtime not answering: container_vnic_kubernetes_up is 0, names last seen are kept for namespaces still present, and come back when it answers (mount its socket, or set --kubernetes.cri-endpoint)",
			"endpoint", c.Endpoint(), "socket", socket, "err", c.readable(err))
	}
	c.state = stateDown
}

// readable prefers the socket's own error (no such file, permission
// denied, refused) to gRPC's wrapping of it.
func (c *Client) readable(err error) error {
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	if c.dialErr != nil && !errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "Unavailable") {
		return c.dialErr
	}
	return err
}

// query asks the runtime for every pod sandbox and running container, at
// the next default socket when one answers that it has no CRI service.
func (c *Client) query(ctx context.Context) (map[string]Pod, error) {
	var tried []string
	for {
		pods, err := c.list(ctx)
		if err == nil {
			c.answered()
		}
		// Each pass over adds a socket to tried: at most one per
		// default socket.
		if status.Code(errors.Unwrap(err)) != codes.Unimplemented || !c.passOver(&tried) {
			return pods, err
		}
	}
}

func (c *Client) list(ctx context.Context) (map[string]Pod, error) {
	c.connMu.Lock()
	client := c.client
	c.connMu.Unlock()
	sandboxes, err := client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("ListPodSandbox: %w", err)
	}
	containers, err := client.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return nil, fmt.Errorf("ListContainers: %w", err)
	}
	return podsOf(sandboxes.GetItems(), containers.GetContainers()), nil
}

// podsOf joins containers to their sandboxes' pods, by pod UID. A pod
// whose sandbox was made again (its old one not yet removed) has two
// sandboxes with the same UID and names: the containers of both are its,
// each with its sandbox (see Pod.In).
func podsOf(sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) map[string]Pod {
	pods := make(map[string]Pod, len(sandboxes))
	uidOf := make(map[string]string, len(sandboxes))
	for _, s := range sandboxes {
		m := s.GetMetadata()
		if m.GetUid() == "" {
			continue
		}
		uidOf[s.GetId()] = m.GetUid()
		p, ok := pods[m.GetUid()]
		if !ok || s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			p.Namespace, p.Name = m.GetNamespace(), m.GetName()
		}
		p.Sandboxes = append(p.Sandboxes, s.GetId())
		pods[m.GetUid()] = p
	}
	for _, ctr := range containers {
		uid, ok := uidOf[ctr.GetPodSandboxId()]
		if !ok {
			continue
		}
		p := pods[uid]
		p.Containers = append(p.Containers, Container{ID: ctr.GetId(), Name: ctr.GetMetadata().GetName(), Image: imageOf(ctr),
			SandboxID: ctr.GetPodSandboxId()})
		pods[uid] = p
	}
	for _, p := range pods {
		slices.Sort(p.Sandboxes)
		slices.SortFunc(p.Containers, func(a, b Container) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
		})
	}
	return pods
}

// imageOf is the image as the pod spec names it when the runtime kept that
// (kubelet passes it as user_specified_image), else as the runtime names
// it.
func imageOf(c *runtimeapi.Container) string {
	return cmp.Or(c.GetImage().GetUserSpecifiedImage(), c.GetImage().GetImage())
}
