package netnstest

import (
	"net"
	"syscall"
	"testing"
)

// DialNotReading connects to addr over TCP with a receive buffer of 4 KiB,
// set before the handshake so that the window it announces stays small:
// a client that reads nothing then stops the server's writes within a few
// kilobytes.
func DialNotReading(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
