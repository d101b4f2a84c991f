package cynet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxPageBytes bounds one response body. A page of 10,000 alerts of a few
// KB each stays well below it.
const maxPageBytes = 512 << 20

// decodePage reads the {SyncTimeUtc, Entities} envelope, a bare array, or
// null/empty. The body is read once and each entity is a sub-slice of it,
// found by a scanner that only matches brackets and strings (validation of
// an entity is left to the normaliser, which dead-letters a bad one), so a
// page is neither held twice nor parsed twice.
//
// buf, if not nil, is reused for the body (the entities alias it, so the
// caller must be done with the previous page); the buffer is returned.
func decodePage(r io.Reader, buf *[]byte) (page, error) {
	var p page
	var local []byte
	if buf == nil {
		buf = &local
	}
	body, err := readAll(r, (*buf)[:0], maxPageBytes+1)
	*buf = body
	if err != nil {
		return p, &retryable{err: fmt.Errorf("reading the alerts response: %w", err)}
	}
	if len(body) > maxPageBytes {
		return p, &retryable{err: fmt.Errorf("alerts response larger than %d bytes: lower page_size", maxPageBytes)}
	}
	i := skipSpace(body, 0)
	if i == len(body) || bytes.HasPrefix(body[i:], []byte("null")) {
		return p, nil
	}
	bad := func(what string) error {
		return &retryable{err: fmt.Errorf("%s: %q", what, printable(body[i:], 80))}
	}
	switch body[i] {
	case '[':
		p.entities, err = scanArray(body, i)
		if err != nil {
			return p, bad("bad alerts array")
		}
		return p, nil
	case '{':
	default:
		return p, bad("response is not JSON")
	}
	// Envelope members.
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] != '}' {
		if body[i] != '"' {
			return p, bad("response is not the alerts envelope")
		}
		kEnd, ok := skipString(body, i)
		if !ok {
			return p, bad("response is not the alerts envelope")
		}
		key := body[i+1 : kEnd-1]
		i = skipSpace(body, kEnd)
		if i == len(body) || body[i] != ':' {
			return p, bad("response is not the alerts envelope")
		}
		i = skipSpace(body, i+1)
		vEnd, ok := skipValue(body, i)
		if !ok {
			return p, bad("response is not the alerts envelope")
		}
		// Member names match case-insensitively, as .NET and encoding/json
		// clients read them.
		switch {
		case bytes.EqualFold(key, []byte("SyncTimeUtc")):
			var s string
			if json.Unmarshal(body[i:vEnd], &s) == nil {
				p.sync = parseTime(s)
			}
		case bytes.EqualFold(key, []byte("Entities")):
			p.entities = nil
			if body[i] == '[' {
				if p.entities, err = scanArray(body, i); err != nil {
					return p, bad("bad Entities")
				}
			} else if !bytes.Equal(body[i:vEnd], []byte("null")) {
				return p, bad("Entities is not an array")
			}
		}
		i = skipSpace(body, vEnd)
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	if i == len(body) {
		return p, &retryable{err: errors.New("alerts envelope cut short")}
	}
	return p, nil
}

// readAll appends r to buf, growing it by doubling (io.ReadAll's
// growth zeroes and copies a multi-megabyte page many times over).
func readAll(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(64<<10, cap(buf)))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF || len(buf) >= limit {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// scanArray returns the elements of the array starting at b[i] ('[').
func scanArray(b []byte, i int) ([]json.RawMessage, error) {
	var out []json.RawMessage
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		end, ok := skipValue(b, i)
		if !ok {
			return out, errors.New("bad element")
		}
		out = append(out, json.RawMessage(b[i:end:end]))
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if i == len(b) {
		return out, errors.New("array cut short")
	}
	return out, nil
}

// skipValue returns the end of the JSON value at b[i]: matched brackets
// and strings for objects and arrays, the run up to a delimiter otherwise.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return i, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	}
	start := i
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
		i++
	}
	return i, i > start
}

// skipString returns the index just past the string starting at b[i]. It
// jumps from quote to quote (IndexByte is vectorised) and treats a quote
// as closing when an even number of backslashes precedes it.
func skipString(b []byte, i int) (int, bool) {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b), false
		}
		q := i + j
		n := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		i = q + 1
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}
