package rtnl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultEventBuffer is the receive buffer asked for the notification
// socket: room for tens of thousands of link events between two reads.
const DefaultEventBuffer = 8 << 20

// Notification is one link or namespace-id notification.
type Notification struct {
	// Type is unix.RTM_NEWLINK, RTM_DELLINK, RTM_NEWNSID or RTM_DELNSID.
	Type uint16
	// From is the id, as the listening namespace numbers it, of the
	// namespace the event happened in; NoNSID when the kernel attached none
	// (the listener's own, before it has an id for itself).
	From int
	// NSID is, for RTM_NEWNSID and RTM_DELNSID, the id assigned or
	// deleted, as From's namespace numbers it; NoNSID for link events.
	NSID int
	// Link is, for link events, the link as the event describes it.
	Link Link
}

// Notifications is a socket receiving link and namespace-id notifications
// from its namespace and, through NETLINK_LISTEN_ALL_NSID, from every
// namespace that one has an id for. The kernel queues a notification
// before the syscall that caused it returns, so draining the socket brings
// the reader up to date with every change made before the drain began.
// Drain must not run concurrently with itself.
type Notifications struct {
	f   *os.File // the same descriptor, in the runtime's poller (Wait)
	buf []byte
	oob []byte
}

// Listen opens the notification socket with a receive buffer of rcvbuf
// bytes (DefaultEventBuffer when 0). It needs CAP_NET_ADMIN and
// CAP_NET_BROADCAST (for NETLINK_LISTEN_ALL_NSID).
func Listen(rcvbuf int) (*Notifications, error) {
	if rcvbuf == 0 {
		rcvbuf = DefaultEventBuffer
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("notification socket: %w", err)
	}
	fail := func(what string, err error) (*Notifications, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("notification socket: %s: %w", what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail("bind", err)
	}
	for _, g := range []int{unix.RTNLGRP_LINK, unix.RTNLGRP_NSID} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
			return fail("joining group", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1); err != nil {
		return fail("NETLINK_LISTEN_ALL_NSID (needs CAP_NET_BROADCAST)", err)
	}
	// SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN; fall back
	// to what the limit allows.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	return &Notifications{f: os.NewFile(uintptr(fd), "rtnetlink notifications"),
		buf: make([]byte, 1<<16), oob: make([]byte, unix.CmsgSpace(4)*4)}, nil
}

// Close closes the socket; a Wait on it returns.
func (n *Notifications) Close() error { return n.f.Close() }

// ErrOverflow means notifications were lost (ENOBUFS), or one could not be
// read (it may have hidden a change): whatever they would have kept true
// must be found out afresh. The socket stays usable.
var ErrOverflow = errors.New("notification socket overflowed")

// Drain hands f every queued notification, in order, without blocking.
// It returns ErrOverflow after the batch when some were lost.
func (n *Notifications) Drain(f func(Notification)) error {
	// Through the file, so that a Close meanwhile cannot free the
	// descriptor's number for reuse under the drain.
	rc, err := n.f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) { err = n.drainFD(int(fd), f) })
	if cerr != nil {
		return cerr
	}
	return err
}

// Wait blocks until notifications are queued, the socket is closed, or ctx
// ends (ctx.Err()), without reading them: the caller then drains, under
// whatever lock it shares the socket with.
func (n *Notifications) Wait(ctx context.Context) error {
	rc, err := n.f.SyscallConn()
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A deadline in the past is how the poller is woken; an earlier
		// Wait's, from a context that ended after it returned, is cleared
		// here and, if it lands after this, taken for a wake-up below.
		if err := n.f.SetReadDeadline(time.Time{}); err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { _ = n.f.SetReadDeadline(time.Unix(1, 0)) })
		err = rc.Read(func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			k, err := unix.Poll(p, 0)
			return err != nil || k > 0
		})
		stop()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
}

func (n *Notifications) drainFD(fd int, f func(Notification)) error {
	_, overflow, err := Drain(fd, n.buf, n.oob, func(b, oob []byte, _ unix.Sockaddr) bool {
		from, err := sourceNSID(oob)
		if err != nil {
			return false
		}
		ok := true
		if err := Messages(b, func(m Message) error {
			nf, known, err := parseNotification(m.Type, m.Data, from)
			if err != nil {
				ok = false
			} else if known {
				f(nf)
			}
			return nil
		}); err != nil {
			return false
		}
		return ok
	})
	if err == nil && overflow {
		err = ErrOverflow
	}
	return err
}

// sourceNSID returns the namespace id the kernel attaches to a notification
// (NETLINK_LISTEN_ALL_NSID control message), or NoNSID when it attaches
// none (the listener's own namespace, before it has an id for itself).
func sourceNSID(oob []byte) (int, error) {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return NoNSID, err
	}
	for _, c := range cmsgs {
		if c.Header.Level == unix.SOL_NETLINK && c.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(c.Data) >= 4 {
			return int(int32Attr(c.Data)), nil
		}
	}
	return NoNSID, nil
}

var errBadNSIDEvent = errors.New("namespace id notification without an id")

// parseNotification decodes one message; known is false for types other
// than link and namespace-id events. A message that cannot be read is an
// error: it may have been the deletion of a namespace's id, or a link
// event.
func parseNotification(typ uint16, data []byte, from int) (nf Notification, known bool, err error) {
	nf = Notification{Type: typ, From: from, NSID: NoNSID}
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		nf.Link, err = ParseLink(data)
		return nf, err == nil, err
	case unix.RTM_NEWNSID, unix.RTM_DELNSID:
		if len(data) < sizeofRtgenmsg {
			return nf, false, errBadNSIDEvent
		}
		err := Attrs(data[sizeofRtgenmsg:], func(t uint16, v []byte) error {
			if t == unix.NETNSA_NSID && len(v) >= 4 {
				nf.NSID = int(int32Attr(v))
			}
			return nil
		})
		if err != nil || nf.NSID == NoNSID {
			return nf, false, errBadNSIDEvent
		}
		return nf, true, nil
	}
	return nf, false, nil
}
