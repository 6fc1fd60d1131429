package vnic

import (
	"os"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The nl package sets its byte order on first use, unguarded; notifications
// are parsed on their own goroutine while the resolver parses replies on
// another, so it is set here, before either runs.
func init() { nl.NativeEndian() }

// Notification is one link or namespace-id notification, with what a change
// stream needs to tell which namespace it concerns.
type Notification struct {
	// Type is unix.RTM_NEWLINK, RTM_DELLINK, RTM_NEWNSID or RTM_DELNSID.
	Type uint16
	// From is the id, as the host numbers it, of the namespace the event
	// happened in: Resolver.IsHost tells the host's own events.
	From int
	// NSID is, for RTM_NEWNSID and RTM_DELNSID, the id assigned or deleted,
	// as From's namespace numbers it.
	NSID int
	// Link is, for link events, the link as the event describes it.
	Link Link
}

// Link is a link as a notification describes it.
type Link struct {
	Index int
	Name  string
	Kind  string
	// PeerIndex and PeerNSID: a veth's peer or a stacked link's parent, in
	// the namespace PeerNSID names as From's namespace numbers it (NoNSID:
	// the same namespace, or none).
	PeerIndex, PeerNSID int
}

// Notifications is a socket of its own receiving link and namespace-id
// notifications from the host and every namespace it has an id for, for a
// consumer that wants the events themselves (ResolveAll's cache has
// another). It needs CAP_NET_ADMIN and CAP_NET_BROADCAST.
type Notifications struct {
	w *watcher
	f *os.File // the same descriptor, in the runtime's poller
}

// OpenNotifications opens the socket with a receive buffer of rcvbuf bytes
// (DefaultEventBuffer when 0).
func OpenNotifications(rcvbuf int) (*Notifications, error) {
	if rcvbuf == 0 {
		rcvbuf = DefaultEventBuffer
	}
	w, err := openWatcher(rcvbuf)
	if err != nil {
		return nil, err
	}
	return &Notifications{w: w, f: os.NewFile(uintptr(w.fd), "rtnetlink notifications")}, nil
}

// Close closes the socket; a Read waiting on it returns.
func (n *Notifications) Close() error { return n.f.Close() }

// ErrOverflow is returned by Read when the kernel dropped notifications
// (ENOBUFS): what they would have told must be found out afresh.
var ErrOverflow = errOverflow

// Read waits for notifications and hands each queued one to f, in order.
// It returns ErrOverflow after the batch when some were lost; the socket
// stays usable.
func (n *Notifications) Read(f func(Notification)) error {
	rc, err := n.f.SyscallConn()
	if err != nil {
		return err
	}
	var result error
	got := false
	err = rc.Read(func(uintptr) bool {
		got, result = n.drain(f)
		return got || result != nil
	})
	if err != nil {
		return err
	}
	return result
}

// drain reads without blocking until the socket is empty; got is false when
// there was nothing to read.
func (n *Notifications) drain(f func(Notification)) (got bool, err error) {
	return n.w.drainMessages(func(typ uint16, data []byte, from int) bool {
		nf, ok := parseNotification(typ, data, from)
		if ok && nf.Type != 0 {
			f(nf)
		}
		return ok
	})
}

// parseNotification decodes one message; ok is false when it cannot be read
// (Type is 0 for messages of other types).
func parseNotification(typ uint16, data []byte, from int) (Notification, bool) {
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		l, err := parseLink(data)
		if err != nil {
			return Notification{}, false
		}
		return Notification{Type: typ, From: from, NSID: noNSID, Link: Link{Index: l.Index, Name: l.Name,
			Kind: l.Kind, PeerIndex: l.PeerIndex, PeerNSID: l.PeerNSID}}, true
	case unix.RTM_NEWNSID, unix.RTM_DELNSID:
		ev, ok, err := parseEvent(typ, data, from)
		if err != nil || !ok {
			return Notification{}, false
		}
		return Notification{Type: typ, From: from, NSID: ev.NSID}, true
	}
	return Notification{}, true
}
