// Package procevents receives process fork, exec and exit events from the
// kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC).
//
// Any number of listeners may run side by side: each subscribes with a
// message to the kernel alone, asks the kernel to send it fork, exec and
// exit events only, and ignores messages that do not come from the kernel
// (another listener's subscription reaches every member of the group when
// that listener sends it to the group).
package procevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// Type is the kind of a process event.
type Type uint32

// Event types, as the kernel numbers them (linux/cn_proc.h).
const (
	Fork Type = 0x00000001
	Exec Type = 0x00000002
	Exit Type = 0x80000000
)

// Event is one process event. PID and TGID are the thread and its process;
// for Fork they are the child's and Parent its parent process.
type Event struct {
	Type      Type
	PID, TGID int
	Parent    int // Fork: the parent's TGID
}

// Connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc       = 1
	cnValProc       = 1
	mcastListen     = 1
	mcastIgnore     = 2
	cnMsgLen        = 20 // struct cn_msg without data
	procEventHeader = 16 // what, cpu, timestamp_ns
)

// Conn is a subscription to process events. Its socket is read by Drain,
// on the caller's schedule, and is kept out of the runtime's poller: that
// poller is edge-triggered, and every datagram (a busy host sends
// thousands a second) would wake a thread, even with no reader waiting.
type Conn struct {
	fd    int
	buf   []byte
	close sync.Once
	err   error
}

// DefaultBuffer is the receive buffer Listen asks for when given 0: room
// for a burst of thousands of short-lived processes between two reads.
const DefaultBuffer = 4 << 20

// Listen subscribes to fork, exec and exit events, with a receive buffer of
// rcvbuf bytes (DefaultBuffer when 0). It needs CAP_NET_ADMIN in the
// initial network namespace.
func Listen(rcvbuf int) (*Conn, error) {
	if rcvbuf == 0 {
		rcvbuf = DefaultBuffer
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("process events socket: %w", err)
	}
	fail := func(what string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("process events: %s: %w", what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		return fail("bind", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	// To the kernel only (port 0, no group): sent to the group, it would
	// reach every other listener too. First the plain subscription, which
	// every kernel takes, then the one with an event filter (struct
	// proc_input, 6.6+; older kernels ignore a message of that size).
	for _, msg := range [][]byte{control(mcastListen, 0), control(mcastListen, Fork|Exec|Exit)} {
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fail("subscribing (needs CAP_NET_ADMIN)", err)
		}
	}
	return &Conn{fd: fd, buf: make([]byte, 1<<16)}, nil
}

// subscription is the PROC_CN_MCAST_LISTEN message with an event filter.
func subscription(types Type) []byte { return control(mcastListen, types) }

// control is a PROC_CN_MCAST_LISTEN or _IGNORE message: with types, a
// struct proc_input (operation and event filter); without, the operation
// alone.
func control(op uint32, types Type) []byte {
	dataLen := 4
	if types != 0 {
		dataLen = 8
	}
	b := make([]byte, unix.NLMSG_HDRLEN+cnMsgLen+dataLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_DONE)
	c := b[unix.NLMSG_HDRLEN:]
	ne.PutUint32(c[0:], cnIdxProc)
	ne.PutUint32(c[4:], cnValProc)
	ne.PutUint16(c[16:], uint16(dataLen))
	ne.PutUint32(c[cnMsgLen:], op)
	if types != 0 {
		ne.PutUint32(c[cnMsgLen+4:], uint32(types))
	}
	return b
}

// Close ends the subscription (kernels before 6.6 count listeners until
// told) and closes the socket. It must not run during a Drain.
func (c *Conn) Close() error {
	c.close.Do(func() { // once: the descriptor's number may be reused after
		_ = unix.Sendto(c.fd, control(mcastIgnore, 0), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		c.err = unix.Close(c.fd)
	})
	return c.err
}

// ErrOverflow is returned by Read when the kernel dropped events (ENOBUFS).
var ErrOverflow = errors.New("process events lost (socket overflow)")

// Drain hands f every event queued now, without waiting. It returns
// ErrOverflow when some were lost (the subscription stays).
func (c *Conn) Drain(f func(Event)) error {
	_, err := c.drain(f)
	return err
}

func (c *Conn) drain(f func(Event)) (got bool, err error) {
	got, overflow, err := rtnl.Drain(c.fd, c.buf, nil, func(b, _ []byte, from unix.Sockaddr) bool {
		sender := uint32(1) // unknown: not the kernel
		if sa, ok := from.(*unix.SockaddrNetlink); ok {
			sender = sa.Pid
		}
		parse(b, sender, f)
		return true
	})
	if err != nil {
		return got, fmt.Errorf("reading process events: %w", err)
	}
	if overflow {
		return got, ErrOverflow
	}
	return got, nil
}

// parse hands f the events in one datagram. Messages from anyone but the
// kernel (sender port 0), and anything malformed, are skipped.
func parse(b []byte, sender uint32, f func(Event)) {
	if sender != 0 {
		return
	}
	ne := binary.NativeEndian
	_ = rtnl.Messages(b, func(m rtnl.Message) error {
		msg := m.Data
		if len(msg) >= cnMsgLen && ne.Uint32(msg[0:]) == cnIdxProc && ne.Uint32(msg[4:]) == cnValProc {
			data := msg[cnMsgLen:]
			if l := int(ne.Uint16(msg[16:])); l <= len(data) {
				if ev, ok := parseEvent(data[:l]); ok {
					f(ev)
				}
			}
		}
		return nil
	})
}

// parseEvent decodes a struct proc_event; ok is false for the types not
// subscribed to (and the kernel's acknowledgement) and for short ones.
func parseEvent(d []byte) (Event, bool) {
	ne := binary.NativeEndian
	if len(d) < procEventHeader {
		return Event{}, false
	}
	typ := Type(ne.Uint32(d[0:]))
	u := d[procEventHeader:]
	u32 := func(i int) int { return int(ne.Uint32(u[4*i:])) }
	switch typ {
	case Fork:
		if len(u) < 16 {
			return Event{}, false
		}
		return Event{Type: Fork, Parent: u32(1), PID: u32(2), TGID: u32(3)}, true
	case Exec:
		if len(u) < 8 {
			return Event{}, false
		}
		return Event{Type: Exec, PID: u32(0), TGID: u32(1)}, true
	case Exit:
		if len(u) < 8 {
			return Event{}, false
		}
		return Event{Type: Exit, PID: u32(0), TGID: u32(1)}, true
	}
	return Event{}, false
}
