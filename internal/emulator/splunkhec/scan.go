package splunkhec

import (
	"bytes"
	"encoding/json"

	"github.com/alertrelay/alertrelay/internal/event"
)

// envelope is one event of an /event body: the raw JSON values of its
// members (nil when absent).
type envelope struct {
	time, host, source, sourcetype, index, fields, event []byte
}

// scanError is an HEC rejection of an /event body: the code and the
// position (0-based) of the offending event.
type scanError struct {
	code  int
	event int
}

// scanEvents splits an /event body, a sequence of JSON objects separated by
// optional white space, into envelopes, checking each as HEC does:
// structure (code 6), an "event" member (12) that is not blank (13),
// string metadata (6), a numeric time (15) and a fields object of string
// or array values (15). With strict, every envelope must also be valid
// JSON (encoding/json.Valid); otherwise the check is structural, which is
// all a fast receiver needs. It appends to envs and returns it, with the
// first error. It never panics, whatever the input.
func scanEvents(envs []envelope, body []byte, strict bool) ([]envelope, *scanError) {
	i := event.SkipSpace(body, 0)
	for n := 0; i < len(body); n++ {
		env, end, code := parseEnvelope(body, i)
		if code == CodeSuccess && strict && !json.Valid(body[i:end]) {
			code = CodeInvalidDataFormat
		}
		if code != CodeSuccess {
			return envs, &scanError{code, n}
		}
		envs = append(envs, env)
		i = event.SkipSpace(body, end)
	}
	return envs, nil
}

// parseEnvelope reads the envelope object at b[i] in one pass: its members
// and where it ends. It returns CodeSuccess or the HEC code of the
// problem.
func parseEnvelope(b []byte, i int) (envelope, int, int) {
	var env envelope
	if i >= len(b) || b[i] != '{' {
		return env, 0, CodeInvalidDataFormat
	}
	i = event.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			ke, ok := skipString(b, i)
			if !ok {
				return env, 0, CodeInvalidDataFormat
			}
			key := b[i+1 : ke-1]
			i = event.SkipSpace(b, ke)
			if i >= len(b) || b[i] != ':' {
				return env, 0, CodeInvalidDataFormat
			}
			i = event.SkipSpace(b, i+1)
			ve, ok := skipValue(b, i, 1)
			if !ok {
				return env, 0, CodeInvalidDataFormat
			}
			val := b[i:ve]
			switch string(key) {
			case "time":
				env.time = val
			case "host":
				env.host = val
			case "source":
				env.source = val
			case "sourcetype":
				env.sourcetype = val
			case "index":
				env.index = val
			case "fields":
				env.fields = val
			case "event":
				env.event = val
			}
			i = event.SkipSpace(b, ve)
			if i >= len(b) {
				return env, 0, CodeInvalidDataFormat
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return env, 0, CodeInvalidDataFormat
			}
			i = event.SkipSpace(b, i+1)
		}
	}
	for _, v := range [][]byte{env.host, env.source, env.sourcetype, env.index} {
		if v != nil && !isString(v) {
			return env, i, CodeInvalidDataFormat
		}
	}
	switch {
	case env.event == nil:
		return env, i, CodeEventRequired
	case string(env.event) == `""` || string(env.event) == "null":
		return env, i, CodeEventBlank
	case env.time != nil && !numericTime(env.time):
		return env, i, CodeIndexedFields
	case env.fields != nil && !validFields(env.fields):
		return env, i, CodeIndexedFields
	}
	return env, i, CodeSuccess
}

func isString(v []byte) bool { return len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' }

// numericTime reports whether a time value is a number, or a string
// holding one, of the form digits[.digits].
func numericTime(v []byte) bool {
	if isString(v) {
		v = v[1 : len(v)-1]
	}
	digits, dot := 0, false
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && v[len(v)-1] != '.'
}

// validFields reports whether fields is an object whose values are strings
// or arrays (of strings), as HEC's indexed fields must be.
func validFields(v []byte) bool {
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	ok := true
	i := event.SkipSpace(v, 1)
	for i < len(v) && v[i] != '}' {
		ke, good := skipString(v, i)
		if !good {
			return false
		}
		i = event.SkipSpace(v, ke)
		if i >= len(v) || v[i] != ':' {
			return false
		}
		i = event.SkipSpace(v, i+1)
		if i >= len(v) || (v[i] != '"' && v[i] != '[') {
			ok = false
		}
		ve, good := skipValue(v, i, 0)
		if !good {
			return false
		}
		i = event.SkipSpace(v, ve)
		if i < len(v) && v[i] == ',' {
			i = event.SkipSpace(v, i+1)
		}
	}
	return ok
}

// splitLines returns the non-blank lines of a /raw body, without their
// line terminators.
func splitLines(body []byte) [][]byte {
	var lines [][]byte
	for len(body) > 0 {
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

// skipString returns the offset after the string token at b[i]. It jumps
// from quote to quote (bytes.IndexByte) and counts the backslashes before
// each: an even number means the quote closes the string. It is
// event.SkipString's logic, faster on the long strings of HEC bodies.
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 512

// skipValue returns the offset after the JSON value at b[i]. It checks
// structure (brackets, strings, colons and commas), not the grammar of
// numbers and literals. It is stricter than event.SkipValue, as HEC is: a
// value cannot start with a separator, and a number or literal ends at
// any structural byte ({"event"::1} and {"event":1"x"} are malformed).
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		closer := byte('}')
		if b[i] == '[' {
			closer = ']'
		}
		i = event.SkipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if closer == '}' {
				ke, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = event.SkipSpace(b, ke)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = event.SkipSpace(b, i+1)
			}
			e, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = event.SkipSpace(b, e)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = event.SkipSpace(b, i+1)
			case closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case '}', ']', ',', ':':
		return 0, false
	default: // number, true, false, null
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ':' || c == '"' || c == '{' || c == '[' ||
				c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		return j, j > i
	}
}
