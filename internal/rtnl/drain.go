package rtnl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Drain is the one receive-and-drain loop of the project's event sockets
// (link notifications here, process events in internal/procevents): it
// reads every datagram queued on the non-blocking socket fd, into buf and
// oob, and hands each to f with its sender, until none is left. got is
// true when any datagram was read. overflow is true when the kernel dropped
// datagrams (ENOBUFS), or f could not read one (it returns false): what
// they said must be found out afresh. The socket stays usable either way.
func Drain(fd int, buf, oob []byte, f func(b, oob []byte, from unix.Sockaddr) bool) (got, overflow bool, err error) {
	for {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return got || overflow, overflow, nil
		case errors.Is(err, unix.ENOBUFS):
			overflow = true
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return got, overflow, fmt.Errorf("reading netlink socket: %w", err)
		}
		got = true
		if !f(buf[:n], oob[:oobn], from) {
			overflow = true
		}
	}
}
