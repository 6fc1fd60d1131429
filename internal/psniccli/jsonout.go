package psniccli

import (
	"strconv"
	"unicode/utf8"

	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

// psnic writes its JSON itself: encoding/json is the one package only psnic
// links for it, and its start-up share (its init, base64's, the reflection
// it pages in: 5-9 page faults of ~12 µs each here, docs/benchmarks.md) is
// paid at every run. The output is byte for byte what encoding/json gives
// for the same values (TestJSONMatchesEncodingJSON, FuzzJSONString).

// Row is one line of psnic's output: a container interface and its host
// end, and the container the PID is in (empty where its cgroup layout is
// unknown).
type Row = vnicwatch.Row

// Change is one line of psnic watch's stream.
type Change struct {
	Event string `json:"event"`
	Time  string `json:"time"`
	Row
	Old *Row `json:"old,omitempty"`
}

// Field is one member of a JSON object, its value already encoded.
type Field struct{ key, value string }

// RowFields are r's members, in encoding/json's order for Row.
func RowFields(r Row) []Field {
	return []Field{
		{"pid", strconv.Itoa(r.PID)},
		{"netns", strconv.FormatUint(r.Netns, 10)},
		{"container_ifname", JSONString(r.ContainerIfname)},
		{"container_ifindex", strconv.Itoa(r.ContainerIfindex)},
		{"host_ifname", JSONString(r.HostIfname)},
		{"host_ifindex", strconv.Itoa(r.HostIfindex)},
		{"kind", JSONString(r.Kind)},
		{"container_id", JSONString(r.ContainerID)},
		{"pod_uid", JSONString(r.PodUID)},
		{"runtime", JSONString(r.Runtime)},
	}
}

// ChangeFields are c's members, in encoding/json's order for Change.
func ChangeFields(c Change) []Field {
	fs := append([]Field{{"event", JSONString(c.Event)}, {"time", JSONString(c.Time)}}, RowFields(c.Row)...)
	if c.Old != nil {
		fs = append(fs, Field{"old", string(AppendObject(nil, RowFields(*c.Old), "", ""))})
	}
	return fs
}

// AppendObject appends the object of fs: compact when indent is "", else as
// encoding/json's Indent with that indent, the object starting at prefix.
func AppendObject(b []byte, fs []Field, prefix, indent string) []byte {
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		if indent != "" {
			b = append(append(append(b, '\n'), prefix...), indent...)
		}
		b = append(append(b, JSONString(f.key)...), ':')
		if indent != "" {
			b = append(b, ' ')
		}
		b = append(b, f.value...)
	}
	if indent != "" && len(fs) > 0 {
		b = append(append(b, '\n'), prefix...)
	}
	return append(b, '}')
}

// AppendRowsJSON appends rows as encoding/json's Encoder with SetIndent("", "  ")
// writes them: an indented array, and a newline.
func AppendRowsJSON(b []byte, rows []Row) []byte {
	if len(rows) == 0 {
		return append(b, "[]\n"...)
	}
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		b = AppendObject(b, RowFields(r), "  ", "  ")
	}
	return append(b, "\n]\n"...)
}

// JSONString is s as encoding/json encodes a string: HTML-safe, invalid
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func JSONString(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(append(b, '"'))
}
