// Package cef parses and encodes ArcSight Common Event Format (CEF) lines, the
// layout Kaspersky CyberTrace uses for its ArcSight output:
//
//	CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension
//
// Parse fills an event.Event with the seven header fields (event.GroupHeader),
// the extension pairs in wire order (event.GroupExtension) and, when a csN
// extension is labelled "Context", the feed-record fields packed into it
// (event.GroupContext). Keys and values alias the line, or the event's scratch
// buffer when a value had to be unescaped, so parsing a line allocates nothing
// once the event is warm.
//
// AppendHeader and AppendExtension write CEF for sinks; what they write parses
// back to the same fields.
package cef

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Sentinel errors. Parse wraps them with a short detail; test with errors.Is.
var (
	// ErrNotCEF: the line holds no "CEF:" marker.
	ErrNotCEF = errors.New("not a CEF line")
	// ErrMalformed: the line has a "CEF:" marker but no valid CEF record
	// after it (fewer than seven header fields, a non-numeric version, or
	// an extension that does not start with key=).
	ErrMalformed = errors.New("malformed CEF line")
)

var marker = []byte("CEF:")

// headerKeys are the keys of the seven header fields, in wire order. They are
// shared by every event: callers must not modify Field.Key.
var headerKeys = [7][]byte{
	[]byte("version"),
	[]byte("deviceVendor"),
	[]byte("deviceProduct"),
	[]byte("deviceVersion"),
	[]byte("signatureId"),
	[]byte("name"),
	[]byte("severity"),
}

// Character classes.
var (
	keyChar  [256]bool // extension key: [A-Za-z0-9_.[\]-]
	nameChar [256]bool // context name after its first byte: [A-Za-z0-9_.-]
	nameHead [256]bool // context name first byte: [A-Za-z_]
)

func init() {
	for c := 0; c < 256; c++ {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		nameHead[c] = alpha || c == '_'
		nameChar[c] = alpha || digit || c == '_' || c == '.' || c == '-'
		keyChar[c] = nameChar[c] || c == '[' || c == ']'
	}
}

// Parse parses one CEF line (without its line terminator) into ev.
//
// Anything before the first "CEF:" is a syslog-style prefix; it goes to
// ev.Prefix with surrounding blanks trimmed (nil when there is none). Parse
// sets ev.Format and appends to ev.Fields; it leaves Kind, Raw and the times
// to the caller, who normally Resets ev first. On error ev.Fields and
// ev.Prefix are left as they were.
//
// Header fields get the keys version, deviceVendor, deviceProduct,
// deviceVersion, signatureId, name and severity; `\|` and `\\` are unescaped
// and any other backslash is kept. The version must be decimal digits.
//
// The extension is a sequence of key=value pairs. A key is a run of
// [A-Za-z0-9_.[\]-] directly followed by an unescaped '='; a pair starts at
// every such key that is preceded by a space, and the value runs up to that
// space. So values may hold spaces and '=' as long as no " key=" occurs in
// them unescaped. Values lose their trailing spaces and are unescaped (`\=`,
// `\\`, `\n`, `\r`; other backslashes are kept). Pairs whose value is empty
// or "-" are dropped.
//
// If a csN key (N = 1..6) has a csNLabel of "Context" (either order, ASCII
// case ignored), its value is also split into Name:Value items, each starting
// at a Name ([A-Za-z_][A-Za-z0-9_.-]*) followed by ':' at the start of the
// value or after a space, and appended after the extension fields. Text
// before the first item is ignored; items with empty or "-" values are
// dropped.
//
// line must not alias ev's scratch buffer. Parse never panics.
func Parse(line []byte, ev *event.Event) error {
	at := bytes.Index(line, marker)
	if at < 0 {
		return fmt.Errorf("cef: no %q marker: %w", marker, ErrNotCEF)
	}
	escaped := bytes.IndexByte(line[at:], '\\') >= 0

	// Header: seven fields closed by unescaped pipes. bounds[k] is where
	// field k starts; field k ends one byte before bounds[k+1].
	var bounds [8]int
	bounds[0] = at + len(marker)
	n := 0
	if escaped {
		for i := bounds[0]; i < len(line) && n < 7; i++ {
			switch line[i] {
			case '\\':
				i++
			case '|':
				n++
				bounds[n] = i + 1
			}
		}
	} else {
		for i := bounds[0]; n < 7; {
			j := bytes.IndexByte(line[i:], '|')
			if j < 0 {
				break
			}
			n++
			i += j + 1
			bounds[n] = i
		}
	}
	if n < 7 {
		return fmt.Errorf("cef: header has %d of 7 fields: %w", n, ErrMalformed)
	}
	version := line[bounds[0] : bounds[1]-1]
	if len(version) == 0 {
		return fmt.Errorf("cef: empty version: %w", ErrMalformed)
	}
	for _, c := range version {
		if c < '0' || c > '9' {
			return fmt.Errorf("cef: version is not a number: %w", ErrMalformed)
		}
	}

	ext := line[bounds[7]:]
	s := 0
	for s < len(ext) && ext[s] == ' ' {
		s++
	}
	eq := s // the first key's '='
	if s < len(ext) {
		for eq < len(ext) && keyChar[ext[eq]] {
			eq++
		}
		if eq == s || eq == len(ext) || ext[eq] != '=' {
			return fmt.Errorf("cef: extension does not start with key=: %w", ErrMalformed)
		}
	}

	// The line is good; from here on Parse only appends.
	var u unescaper
	if escaped {
		u.buf = ev.Scratch(len(line))
	}
	for k := range headerKeys {
		raw := line[bounds[k] : bounds[k+1]-1]
		if escaped && bytes.IndexByte(raw, '\\') >= 0 {
			raw = u.header(raw)
		}
		add(ev, event.GroupHeader, headerKeys[k], raw)
	}
	first := len(ev.Fields)
	if s < len(ext) {
		parseExtension(ev, &u, ext, s, eq, escaped)
	}
	addContext(ev, first)

	if p := bytes.Trim(line[:at], " \t"); len(p) > 0 {
		ev.Prefix = p
	}
	ev.Format = event.FormatCEF
	return nil
}

// parseExtension appends the pairs of ext; the first key is ext[s:eq].
func parseExtension(ev *event.Event, u *unescaper, ext []byte, s, eq int, escaped bool) {
	key := ext[s:eq]
	val := eq + 1 // start of the current value
	for i := val; i < len(ext); i++ {
		if escaped {
			if c := ext[i]; c == '\\' {
				i++ // skip the escaped byte
				continue
			} else if c != '=' {
				continue
			}
		} else {
			j := bytes.IndexByte(ext[i:], '=')
			if j < 0 {
				break
			}
			i += j
		}
		// ext[i] is an unescaped '='. It starts a new pair when the run of
		// key bytes before it is non-empty and preceded by a space that
		// lies inside the current value.
		ks := i
		for ks > val && keyChar[ext[ks-1]] {
			ks--
		}
		if ks == i || ks == val || ext[ks-1] != ' ' {
			continue
		}
		addExtension(ev, u, key, ext[val:ks-1])
		key = ext[ks:i]
		val = i + 1
	}
	addExtension(ev, u, key, ext[val:])
}

// addExtension appends one pair unless its value is empty or "-".
func addExtension(ev *event.Event, u *unescaper, key, raw []byte) {
	raw = trimSpaceRight(raw)
	if len(raw) == 0 || len(raw) == 1 && raw[0] == '-' {
		return
	}
	if u.buf != nil && bytes.IndexByte(raw, '\\') >= 0 {
		raw = u.extension(raw)
	}
	add(ev, event.GroupExtension, key, raw)
}

// addContext splits the values of csN fields labelled "Context" among
// ev.Fields[first:] into context fields.
func addContext(ev *event.Event, first int) {
	var labelled uint8 // bit N set: csNLabel=Context
	for i := first; i < len(ev.Fields); i++ {
		f := &ev.Fields[i]
		if n := csIndex(f.Key, "Label"); n > 0 && bytes.EqualFold(f.Value, []byte("Context")) {
			labelled |= 1 << n
		}
	}
	if labelled == 0 {
		return
	}
	end := len(ev.Fields)
	for i := first; i < end; i++ {
		f := ev.Fields[i] // copy: appending may move ev.Fields
		if n := csIndex(f.Key, ""); n > 0 && labelled&(1<<n) != 0 {
			splitContext(ev, f.Value)
		}
	}
}

// csIndex returns N when key is "cs" + N + suffix with N in 1..6, else 0.
func csIndex(key []byte, suffix string) int {
	if len(key) != 3+len(suffix) || key[0] != 'c' || key[1] != 's' || key[2] < '1' || key[2] > '6' {
		return 0
	}
	if string(key[3:]) != suffix {
		return 0
	}
	return int(key[2] - '0')
}

// splitContext appends the Name:Value items of v as context fields.
func splitContext(ev *event.Event, v []byte) {
	var name []byte // nil until the first item
	val := 0        // start of the current item's value
	for i := 0; i < len(v); {
		j := bytes.IndexByte(v[i:], ':')
		if j < 0 {
			break
		}
		i += j
		ns := i
		for ns > val && nameChar[v[ns-1]] {
			ns--
		}
		if ns < i && nameHead[v[ns]] && (ns == 0 || v[ns-1] == ' ') {
			if name != nil {
				addContextField(ev, name, v[val:ns-1])
			}
			name = v[ns:i]
			val = i + 1
		}
		i++
	}
	if name != nil {
		addContextField(ev, name, v[val:])
	}
}

func addContextField(ev *event.Event, name, v []byte) {
	v = trimSpaceRight(v)
	if len(v) == 0 || len(v) == 1 && v[0] == '-' {
		return
	}
	add(ev, event.GroupContext, name, v)
}

// add appends a field like ev.Add, but fills the new element in place: the
// composite literal in ev.Add goes through a stack temporary whose 8-byte
// stores are read back with 16-byte loads, a store-forwarding stall that
// cost a third of Parse's time.
func add(ev *event.Event, g event.Group, key, value []byte) {
	ev.Fields = append(ev.Fields, event.Field{})
	f := &ev.Fields[len(ev.Fields)-1]
	f.Key = key
	f.Value = value
	f.Group = g
}

func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// unescaper carves unescaped values out of buf, front to back; buf is nil
// when the line holds no backslash. buf is as long as the line and
// unescaping never lengthens a value, so it cannot run out; if it somehow
// did, the raw value is returned rather than panicking.
type unescaper struct {
	buf []byte
	off int
}

// header unescapes a header field: `\|` and `\\`.
func (u *unescaper) header(raw []byte) []byte {
	return u.unescape(raw, false)
}

// extension unescapes an extension value: `\=`, `\\`, `\n`, `\r`.
func (u *unescaper) extension(raw []byte) []byte {
	return u.unescape(raw, true)
}

func (u *unescaper) unescape(raw []byte, ext bool) []byte {
	if len(u.buf)-u.off < len(raw) {
		return raw
	}
	out := u.buf[u.off:u.off]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			switch n := raw[i+1]; {
			case n == '\\':
				c, i = '\\', i+1
			case !ext && n == '|', ext && n == '=':
				c, i = n, i+1
			case ext && n == 'n':
				c, i = '\n', i+1
			case ext && n == 'r':
				c, i = '\r', i+1
			}
		}
		out = append(out, c)
	}
	u.off += len(out)
	return out[:len(out):len(out)]
}
