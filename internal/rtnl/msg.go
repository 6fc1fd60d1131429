package rtnl

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian

// Message is one netlink message of a datagram: its header and payload.
type Message struct {
	Type, Flags uint16
	Seq         uint32
	Data        []byte // the payload, after the header
}

// ErrMalformed is a datagram or attribute whose lengths overrun it.
var ErrMalformed = errors.New("netlink: malformed message")

// Messages calls f with each netlink message of one datagram, in order,
// checking every length against the buffer; f's error ends the walk. It is
// the one message walker (over nextMessage): dump replies, notifications
// and the process events connector are all read through it.
func Messages(b []byte, f func(Message) error) error {
	for len(b) > 0 {
		m, rest, err := nextMessage(b)
		if err != nil || m.Data == nil {
			return err
		}
		if err := f(m); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// nextMessage splits the first netlink message off b. Data is nil when b
// holds no whole header (the datagram's end); a length that overruns b is
// ErrMalformed.
func nextMessage(b []byte) (m Message, rest []byte, err error) {
	if len(b) < unix.SizeofNlMsghdr {
		return Message{}, nil, nil
	}
	size := int(ne.Uint32(b[0:]))
	if size < unix.SizeofNlMsghdr || size > len(b) {
		return Message{}, nil, ErrMalformed
	}
	m = Message{Type: ne.Uint16(b[4:]), Flags: ne.Uint16(b[6:]), Seq: ne.Uint32(b[8:]), Data: b[unix.SizeofNlMsghdr:size]}
	size = (size + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
	if size >= len(b) {
		return m, nil, nil
	}
	return m, b[size:], nil
}

// nlaTypeMask clears the NLA_F_NESTED and NLA_F_NET_BYTEORDER flag bits.
const nlaTypeMask = 0x3fff

// Attrs calls f with the type and value of each rtattr in b, checking
// every bound (a length that overruns the buffer is ErrMalformed, never a
// panic: found by FuzzParseLink); f's error ends the walk.
func Attrs(b []byte, f func(typ uint16, value []byte) error) error {
	for len(b) >= unix.SizeofRtAttr {
		n := int(ne.Uint16(b[0:2]))
		typ := ne.Uint16(b[2:4]) & nlaTypeMask
		if n < unix.SizeofRtAttr || n > len(b) {
			return ErrMalformed
		}
		if err := f(typ, b[unix.SizeofRtAttr:n]); err != nil {
			return err
		}
		n = (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if n > len(b) {
			break
		}
		b = b[n:]
	}
	return nil
}

// int32Attr decodes a 4-byte attribute; a shorter one reads as 0.
func int32Attr(v []byte) int32 {
	if len(v) < 4 {
		return 0
	}
	return int32(ne.Uint32(v))
}

// uint8Attr decodes a 1-byte attribute; an empty one reads as 0.
func uint8Attr(v []byte) uint8 {
	if len(v) < 1 {
		return 0
	}
	return v[0]
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// request is a netlink request being encoded: header, fixed body, then
// attributes. Its length is set by the Conn that sends it.
type request []byte

// newRequest starts a request of type typ into b's storage, with a zeroed
// fixed body of bodyLen bytes.
func newRequest(b []byte, typ, flags uint16, bodyLen int) request {
	b = append(b[:0], make([]byte, unix.SizeofNlMsghdr+bodyLen)...)
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	return b
}

// body returns the fixed body after the header.
func (r request) body() []byte { return r[unix.SizeofNlMsghdr:] }

// u32 appends a 4-byte attribute.
func (r request) u32(typ uint16, v uint32) request {
	var a [unix.SizeofRtAttr + 4]byte
	ne.PutUint16(a[0:], uint16(len(a)))
	ne.PutUint16(a[2:], typ)
	ne.PutUint32(a[4:], v)
	return append(r, a[:]...)
}

func (r request) flags() uint16 { return ne.Uint16(r[6:]) }

// seal sets the length and the sequence number.
func (r request) seal(seq uint32) {
	ne.PutUint32(r[0:], uint32(len(r)))
	ne.PutUint32(r[8:], seq)
}

// sizeofRtgenmsg is struct rtgenmsg (one byte) as attributes follow it:
// aligned to 4.
const sizeofRtgenmsg = (unix.SizeofRtGenmsg + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
