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
	i := event.SkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return a, errors.New("expected START_OBJECT")
	}
	i = event.SkipSpace(line, i+1)
	ke, ok := event.SkipString(line, i)
	if !ok {
		return a, errors.New("expected FIELD_NAME")
	}
	key := line[i+1 : ke-1]
	i = ke
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
	i = event.SkipSpace(line, i)
	if i >= len(line) || line[i] != ':' {
		return a, errMalformed
	}
	i = event.SkipSpace(line, i+1)
	if i >= len(line) || line[i] != '{' {
		return a, errors.New("expected START_OBJECT for the action's parameters")
	}
	i = event.SkipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			ke, ok := event.SkipString(line, i)
			if !ok {
				return a, errMalformed
			}
			k := line[i+1 : ke-1]
			j := event.SkipSpace(line, ke)
			if j >= len(line) || line[j] != ':' {
				return a, errMalformed
			}
			j = event.SkipSpace(line, j+1)
			end, ok := event.SkipValue(line, j)
			if !ok {
				return a, errMalformed
			}
			switch string(k) {
			case "_index", "_id":
				if line[j] != '"' {
					return a, errors.New("[" + string(k) + "] must be a string")
				}
				v := line[j+1 : end-1] // the string's body: SkipValue ended at its quote
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
			i = event.SkipSpace(line, end)
			if i >= len(line) {
				return a, errMalformed
			}
			if line[i] == ',' {
				i = event.SkipSpace(line, i+1)
				continue
			}
			if line[i] != '}' {
				return a, errMalformed
			}
			i++
			break
		}
	}
	i = event.SkipSpace(line, i)
	if i >= len(line) || line[i] != '}' {
		return a, errors.New("expected END_OBJECT (one action per line)")
	}
	if event.SkipSpace(line, i+1) != len(line) {
		return a, errors.New("unexpected data after the action")
	}
	return a, nil
}
