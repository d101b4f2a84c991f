package sentinel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alertrelay/alertrelay/internal/event"
)

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 512

// SplitArray calls fn with each element of the JSON array data, which must
// all be objects, and returns their number. It checks structure (brackets,
// braces, strings, separators, nothing after the array), not the grammar of
// numbers and literals, which keeps it fast. On error, fn may already have
// been called for the elements before the fault: callers commit what fn
// collected only when the error is nil. The slices passed to fn alias
// data.
func SplitArray(data []byte, fn func(elem []byte)) (int, error) {
	i := event.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return 0, errors.New("want a JSON array")
	}
	i = event.SkipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		if event.SkipSpace(data, i+1) != len(data) {
			return 0, errors.New("data after the closing bracket")
		}
		return 0, nil
	}
	for n := 0; ; {
		if i >= len(data) || data[i] != '{' {
			return 0, fmt.Errorf("element %d is not a JSON object", n)
		}
		end, ok := skipValue(data, i, 0)
		if !ok {
			return 0, fmt.Errorf("element %d is malformed JSON", n)
		}
		fn(data[i:end])
		n++
		i = event.SkipSpace(data, end)
		if i >= len(data) {
			return 0, errors.New("unterminated array")
		}
		switch data[i] {
		case ',':
			i = event.SkipSpace(data, i+1)
		case ']':
			if event.SkipSpace(data, i+1) != len(data) {
				return 0, errors.New("data after the closing bracket")
			}
			return n, nil
		default:
			return 0, fmt.Errorf("want ',' or ']' after element %d", n-1)
		}
	}
}

// RowEventID returns the string value of the EventId member of the JSON
// object row, or "" when it has none (or row is malformed before it).
func RowEventID(row []byte) string {
	i := event.SkipSpace(row, 0)
	if i >= len(row) || row[i] != '{' {
		return ""
	}
	i = event.SkipSpace(row, i+1)
	for i < len(row) && row[i] == '"' {
		ke, ok := skipString(row, i)
		if !ok {
			return ""
		}
		key := row[i+1 : ke-1]
		i = event.SkipSpace(row, ke)
		if i >= len(row) || row[i] != ':' {
			return ""
		}
		i = event.SkipSpace(row, i+1)
		ve, ok := skipValue(row, i, 0)
		if !ok {
			return ""
		}
		if string(key) == "EventId" {
			v := row[i:ve]
			if v[0] != '"' {
				return ""
			}
			if bytes.IndexByte(v, '\\') < 0 {
				return string(v[1 : len(v)-1])
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return ""
			}
			return s
		}
		i = event.SkipSpace(row, ve)
		if i >= len(row) || row[i] != ',' {
			return ""
		}
		i = event.SkipSpace(row, i+1)
	}
	return ""
}

// skipString returns the offset after the string token at b[i] == '"'. It
// is event.SkipString's logic, but jumps from quote to quote
// (bytes.IndexByte), which is faster on the long strings of request
// bodies (event.original).
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j <= len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		backslashes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
	return 0, false
}

// skipValue returns the offset after the JSON value at b[i]. It is
// stricter than event.SkipValue, so that the emulator refuses bodies that
// Log Analytics would: a value cannot start with a separator, and a number
// or literal is made of the bytes numbers and literals use ({"a":@} and
// {"a":1"b"} are malformed).
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
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
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
	case ',', ':', ']', '}':
		return 0, false
	default: // number, true, false, null
		// The bytes a number or literal is made of; whatever follows
		// must be a separator, which the caller checks.
		j := i
		for j < len(b) {
			c := b[j]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E') {
				break
			}
			j++
		}
		return j, j > i
	}
}
