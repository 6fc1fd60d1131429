package procevents

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
)

// message builds one netlink message carrying a proc_event of type typ with
// the given union fields.
func message(typ Type, fields ...uint32) []byte {
	ne := binary.NativeEndian
	data := make([]byte, procEventHeader+4*len(fields))
	ne.PutUint32(data[0:], uint32(typ))
	for i, v := range fields {
		ne.PutUint32(data[procEventHeader+4*i:], v)
	}
	b := make([]byte, unix.NLMSG_HDRLEN+cnMsgLen+len(data))
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_DONE)
	c := b[unix.NLMSG_HDRLEN:]
	ne.PutUint32(c[0:], cnIdxProc)
	ne.PutUint32(c[4:], cnValProc)
	ne.PutUint16(c[16:], uint16(len(data)))
	copy(c[cnMsgLen:], data)
	return b
}

func TestParse(t *testing.T) {
	exit := message(Exit, 7, 7, 0, 17, 1, 1)
	for _, tc := range []struct {
		name   string
		b      []byte
		sender uint32
		want   []Event
	}{
		{"fork", message(Fork, 10, 10, 11, 11), 0, []Event{{Type: Fork, Parent: 10, PID: 11, TGID: 11}}},
		{"exec", message(Exec, 12, 12), 0, []Event{{Type: Exec, PID: 12, TGID: 12}}},
		{"thread exit", message(Exit, 14, 13, 0, 0, 1, 1), 0, []Event{{Type: Exit, PID: 14, TGID: 13}}},
		{"two in one datagram", append(message(Exec, 1, 1), exit...), 0,
			[]Event{{Type: Exec, PID: 1, TGID: 1}, {Type: Exit, PID: 7, TGID: 7}}},
		// Another listener's subscription, multicast to the group: skipped,
		// not an error that ends the stream.
		{"from another listener", subscription(Fork | Exec | Exit), 22352, nil},
		{"event from a non-kernel sender", message(Exec, 12, 12), 22352, nil},
		{"the kernel's acknowledgement", message(0, 0), 0, nil},
		{"comm change, not subscribed", message(0x200, 5, 5, 0, 0, 0, 0), 0, nil},
		{"short exec", message(Exec, 12), 0, nil},
		{"truncated datagram", message(Exec, 12, 12)[:30], 0, nil},
		{"length past the end", func() []byte { b := message(Exec, 1, 1); b[0] = 200; return b }(), 0, nil},
		{"empty", nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Event
			parse(tc.b, tc.sender, func(e Event) { got = append(got, e) })
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Three listeners side by side, and a fourth party that subscribes the old
// way (its message sent to the whole group): every listener still sees the
// exec and exit of a process started afterwards.
func TestListenersSideBySide(t *testing.T) {
	netnstest.RequireRoot(t)
	var conns []*Conn
	for i := 0; i < 3; i++ {
		c, err := Listen(0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	rogue, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rogue)
	if err := unix.Bind(rogue, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(rogue, subscription(Fork|Exec|Exit), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Wait()
	for i, c := range conns {
		seen := map[Type]bool{}
		netnstest.Eventually(t, 10*time.Second, fmt.Sprintf("listener %d to see the exec and exit of %d", i, pid), func() bool {
			err := c.Drain(func(e Event) {
				if e.TGID == pid && e.PID == pid {
					seen[e.Type] = true
				}
			})
			if err != nil && err != ErrOverflow {
				t.Fatalf("listener %d: %v (seen %v)", i, err, seen)
			}
			return seen[Exec] && seen[Exit]
		})
	}
}

// The kernel sends only the subscribed types: a comm change (which it
// reports as PROC_EVENT_COMM to unfiltered listeners) does not reach us.
func TestKernelFilter(t *testing.T) {
	netnstest.RequireRoot(t)
	c, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runtimeLockedRename(t)
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Wait()
	ne := binary.NativeEndian
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b := c.buf[:n]
		if len(b) < unix.NLMSG_HDRLEN+cnMsgLen+procEventHeader+8 {
			continue
		}
		ev := b[unix.NLMSG_HDRLEN+cnMsgLen:]
		typ := Type(ne.Uint32(ev))
		if typ != Fork && typ != Exec && typ != Exit && typ != 0 {
			t.Fatalf("event of type %#x delivered despite the filter", uint32(typ))
		}
		if typ == Exit && int(ne.Uint32(ev[procEventHeader:])) == pid {
			return
		}
	}
	t.Fatal("no exit event for the process within 10 s")
}

// runtimeLockedRename renames this test's thread (a comm change event).
func runtimeLockedRename(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := os.WriteFile("/proc/thread-self/comm", []byte("cvfilter"), 0); err != nil {
		t.Fatal(err)
	}
}
