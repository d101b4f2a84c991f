package elasticsearch

import (
	"bytes"
	"errors"

	"github.com/alertrelay/alertrelay/internal/event"
)

// action is one parsed action/metadata line of a bulk body.
type action struct {
	op    string // create, index, delete, update
	index string // _index, "" when absent
	id    string // _id, "" when absent
	hasID bool
}

var errMalformed = errors.New("malformed")

// parseAction reads an action/metadata line such as
// {"create":{"_index":"logs-a-b","_id":"x"}}: an object with one member
// named after the operation whose value is an object. It extracts _index
// and _id (strings) and skips every other member (routing, pipeline,
// require_alias, dynamic_templates...). It never panics on any input.
func parseAction(line []byte) (action, error) {
	var a action
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return a, errors.New("expected START_OBJECT")
	}
	i = skipSpace(line, i+1)
	key, i, ok := readString(line, i)
	if !ok {
		return a, errors.New("expected FIELD_NAME")
	}
	switch string(key) {
	case "create":
		a.op = "create"
	case "index":
		a.op = "index"
	case "delete":
		a.op = "delete"
	case "update":
		a.op = "update"
	default:
		return a, errors.New("expected field [create], [delete], [index] or [update] but found [" + string(key) + "]")
	}
	i = skipSpace(line, i)
	if i >= len(line) || line[i] != ':' {
		return a, errMalformed
	}
	i = skipSpace(line, i+1)
	if i >= len(line) || line[i] != '{' {
		return a, errors.New("expected START_OBJECT for the action's parameters")
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			k, j, ok := readString(line, i)
			if !ok {
				return a, errMalformed
			}
			j = skipSpace(line, j)
			if j >= len(line) || line[j] != ':' {
				return a, errMalformed
			}
			j = skipSpace(line, j+1)
			end, ok := skipValue(line, j, 0)
			if !ok {
				return a, errMalformed
			}
			switch string(k) {
			case "_index", "_id":
				v, _, ok := readString(line, j)
				if !ok {
					return a, errors.New("[" + string(k) + "] must be a string")
				}
				var s string
				if bytes.IndexByte(v, '\\') < 0 {
					s = string(v)
				} else {
					s = string(event.Unquote(nil, v))
				}
				if string(k) == "_index" {
					a.index = s
				} else {
					a.id, a.hasID = s, true
				}
			}
			i = skipSpace(line, end)
			if i >= len(line) {
				return a, errMalformed
			}
			if line[i] == ',' {
				i = skipSpace(line, i+1)
				continue
			}
			if line[i] != '}' {
				return a, errMalformed
			}
			i++
			break
		}
	}
	i = skipSpace(line, i)
	if i >= len(line) || line[i] != '}' {
		return a, errors.New("expected END_OBJECT (one action per line)")
	}
	if skipSpace(line, i+1) != len(line) {
		return a, errors.New("unexpected data after the action")
	}
	return a, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// readString returns the raw body of the string token at b[i] and the
// offset after it.
func readString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return b[i+1 : j], j + 1, true
		}
	}
	return nil, 0, false
}

const maxDepth = 64

// skipValue returns the offset after the JSON value at b[i] (structure
// only: numbers and literals are not checked).
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch b[i] {
	case '"':
		_, e, ok := readString(b, i)
		return e, ok
	case '{', '[':
		closing := byte('}')
		if b[i] == '[' {
			closing = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, true
		}
		for {
			if closing == '}' {
				_, e, ok := readString(b, i)
				if !ok {
					return 0, false
				}
				i = skipSpace(b, e)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipSpace(b, i+1)
			}
			e, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipSpace(b, e)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case closing:
				return i + 1, true
			default:
				return 0, false
			}
		}
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		return j, j > i
	}
}
