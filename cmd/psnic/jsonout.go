package main

import (
	"strconv"
	"unicode/utf8"
)

// psnic writes its JSON itself: encoding/json is the one package only psnic
// links for it, and its start-up share (its init, base64's, the reflection
// it pages in: 5-9 page faults of ~12 µs each here, docs/benchmarks.md) is
// paid at every run. The output is byte for byte what encoding/json gives
// for the same values (TestJSONMatchesEncodingJSON, FuzzJSONString).

// field is one member of a JSON object, its value already encoded.
type field struct{ key, value string }

// rowFields are r's members, in encoding/json's order for row.
func rowFields(r row) []field {
	return []field{
		{"pid", strconv.Itoa(r.PID)},
		{"netns", strconv.FormatUint(r.Netns, 10)},
		{"container_ifname", jsonString(r.ContainerIfname)},
		{"container_ifindex", strconv.Itoa(r.ContainerIfindex)},
		{"host_ifname", jsonString(r.HostIfname)},
		{"host_ifindex", strconv.Itoa(r.HostIfindex)},
		{"kind", jsonString(r.Kind)},
		{"container_id", jsonString(r.ContainerID)},
		{"pod_uid", jsonString(r.PodUID)},
		{"runtime", jsonString(r.Runtime)},
	}
}

// changeFields are c's members, in encoding/json's order for change.
func changeFields(c change) []field {
	fs := append([]field{{"event", jsonString(c.Event)}, {"time", jsonString(c.Time)}}, rowFields(c.row)...)
	if c.Old != nil {
		fs = append(fs, field{"old", string(appendObject(nil, rowFields(*c.Old), "", ""))})
	}
	return fs
}

// appendObject appends the object of fs: compact when indent is "", else as
// encoding/json's Indent with that indent, the object starting at prefix.
func appendObject(b []byte, fs []field, prefix, indent string) []byte {
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		if indent != "" {
			b = append(append(append(b, '\n'), prefix...), indent...)
		}
		b = append(append(b, jsonString(f.key)...), ':')
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

// appendRowsJSON appends rows as encoding/json's Encoder with SetIndent("", "  ")
// writes them: an indented array, and a newline.
func appendRowsJSON(b []byte, rows []row) []byte {
	if len(rows) == 0 {
		return append(b, "[]\n"...)
	}
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		b = appendObject(b, rowFields(r), "  ", "  ")
	}
	return append(b, "\n]\n"...)
}

// jsonString is s as encoding/json encodes a string: HTML-safe, invalid
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func jsonString(s string) string {
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
