package vnic

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// DefaultEventBuffer is the receive buffer asked for the notification
// socket: room for tens of thousands of link events between two reads.
const DefaultEventBuffer = 8 << 20

// event is one rtnetlink notification.
type event struct {
	Type uint16 // RTM_NEWLINK, RTM_DELLINK, RTM_NEWNSID, RTM_DELNSID
	// From is the id, as the host numbers it, of the namespace the event
	// happened in; noNSID when the kernel attached none (the host itself
	// before it has an id for itself).
	From int
	NSID int // nsid events: the id assigned or deleted
}

// watcher receives link and namespace-id notifications from the host and,
// through NETLINK_LISTEN_ALL_NSID, from every namespace the host has an id
// for. The kernel queues a notification before the syscall that caused it
// returns, so draining the socket brings the watcher up to date with every
// change made before the drain began.
type watcher struct {
	fd  int
	buf []byte
	oob []byte
}

// openWatcher opens the notification socket. It needs CAP_NET_BROADCAST
// (for NETLINK_LISTEN_ALL_NSID) on top of what the resolver needs.
func openWatcher(rcvbuf int) (*watcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("notification socket: %w", err)
	}
	w := &watcher{fd: fd, buf: make([]byte, 1<<16), oob: make([]byte, unix.CmsgSpace(4)*4)}
	fail := func(what string, err error) (*watcher, error) {
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
	return w, nil
}

func (w *watcher) Close() error { return unix.Close(w.fd) }

// errOverflow means notifications were lost (ENOBUFS): whatever the events
// would have kept true must be rebuilt from scratch.
var errOverflow = errors.New("notification socket overflowed")

// drain hands every queued notification to f without blocking. It returns
// errOverflow when the kernel dropped notifications; the socket stays
// usable and later notifications are delivered.
func (w *watcher) drain(f func(event)) error {
	_, err := w.drainMessages(func(typ uint16, data []byte, from int) bool {
		ev, ok, err := parseEvent(typ, data, from)
		if ok {
			f(ev)
		}
		return err == nil
	})
	return err
}

// drainMessages reads every queued datagram without blocking and hands each
// of its messages to f, with the id of the namespace it came from; f returns
// false for a message it cannot read. got is true when any datagram was
// read. Lost notifications (ENOBUFS), and a datagram or message that cannot
// be read (it may have hidden a change), end the drain with errOverflow.
func (w *watcher) drainMessages(f func(typ uint16, data []byte, from int) bool) (got bool, err error) {
	overflow := false
	for {
		n, oobn, _, _, err := unix.Recvmsg(w.fd, w.buf, w.oob, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			if overflow {
				return true, errOverflow
			}
			return got, nil
		case errors.Is(err, unix.ENOBUFS):
			overflow = true
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return got, fmt.Errorf("reading notifications: %w", err)
		}
		got = true
		from, err := sourceNSID(w.oob[:oobn])
		msgs, perr := syscall.ParseNetlinkMessage(w.buf[:n])
		if err != nil || perr != nil {
			overflow = true
			continue
		}
		for _, m := range msgs {
			if !f(m.Header.Type, m.Data, from) {
				overflow = true
			}
		}
	}
}

// sourceNSID returns the namespace id the kernel attaches to a notification
// (NETLINK_LISTEN_ALL_NSID control message), or noNSID when it attaches
// none (the host's own, before the host has an id for itself).
func sourceNSID(oob []byte) (int, error) {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return noNSID, err
	}
	for _, c := range cmsgs {
		if c.Header.Level == unix.SOL_NETLINK && c.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(c.Data) >= 4 {
			return int(int32Attr(c.Data)), nil
		}
	}
	return noNSID, nil
}

var errBadNSIDEvent = errors.New("namespace id notification without an id")

// parseEvent decodes one notification; ok is false for messages the cache
// does not use. A link event needs no payload: where it happened is all
// that counts. An id event that cannot be read is an error: it may have
// been the deletion of a cached namespace's id.
func parseEvent(typ uint16, data []byte, from int) (ev event, ok bool, err error) {
	ev = event{Type: typ, From: from, NSID: noNSID}
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		return ev, true, nil
	case unix.RTM_NEWNSID, unix.RTM_DELNSID:
		hdr := (&nl.RtGenMsg{}).Len()
		if len(data) < hdr {
			return ev, false, errBadNSIDEvent
		}
		err := forEachAttr(data[hdr:], func(t uint16, v []byte) error {
			if t == unix.NETNSA_NSID && len(v) >= 4 {
				ev.NSID = int(int32Attr(v))
			}
			return nil
		})
		if err != nil || ev.NSID == noNSID {
			return ev, false, errBadNSIDEvent
		}
		return ev, true, nil
	}
	return ev, false, nil
}
