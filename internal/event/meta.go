package event

import "unicode/utf8"

// Meta is what sinks need to route and key a document without decoding it:
// the raw JSON string bodies (between the quotes, still escaped) of
// "@timestamp" and of the members id, dataset, provider, kind and original
// of the top-level "event" object. A member that is absent, or not a
// string, is nil. Use Unquote for the text of a value.
type Meta struct {
	Timestamp []byte // "@timestamp": RFC 3339 UTC with ms, e.g. 2025-03-01T08:01:05.123Z
	ID        []byte // event.id: stable across re-sends of the same event
	Dataset   []byte // event.dataset: cybertrace.detection, cynet.alert...
	Provider  []byte // event.provider: the name of the source in the config
	Kind      []byte // event.kind
	Original  []byte // event.original: the line as received (CyberTrace)
}

// ReadMeta fills Meta from doc in one pass over its top level, skipping
// every other member without decoding it. It never panics; on malformed
// JSON it returns what it found before the fault and ok=false. The slices
// alias doc.
func ReadMeta(doc []byte) (m Meta, ok bool) { return readMeta(doc, true) }

// ReadRouting is ReadMeta without Original, for the hot path of a sink: it
// stops reading as soon as it has @timestamp and the event's id, dataset,
// provider and kind, which our documents put first, so it skips the rest
// (event.original and the vendor objects, most of the bytes). ok then
// vouches only for what was read.
func ReadRouting(doc []byte) (m Meta, ok bool) { return readMeta(doc, false) }

func readMeta(doc []byte, original bool) (m Meta, ok bool) {
	i := SkipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return m, false
	}
	eventDone := false
	eventMember := func(k, v []byte) bool {
		switch string(k) {
		case "id":
			m.ID = strBody(v)
		case "dataset":
			m.Dataset = strBody(v)
		case "provider":
			m.Provider = strBody(v)
		case "kind":
			m.Kind = strBody(v)
		case "original":
			if original {
				m.Original = strBody(v)
			}
		}
		// Without original, stop once the four are there.
		return original || m.ID == nil || m.Dataset == nil || m.Provider == nil || m.Kind == nil
	}
	_, err := members(doc, i, func(key []byte, b []byte, at int) (int, bool, error) {
		switch string(key) {
		case "@timestamp":
			end, ok := skipValue(b, at, 0)
			if !ok {
				return 0, false, metaError{}
			}
			m.Timestamp = strBody(b[at:end])
			return end, !(eventDone && !original), nil
		case "event":
			if at < len(b) && b[at] == '{' {
				var ok bool
				end, err := members(b, at, func(k, bb []byte, vat int) (int, bool, error) {
					end, ok := skipValue(bb, vat, 1)
					if !ok {
						return 0, false, metaError{}
					}
					return end, eventMember(k, bb[vat:end]), nil
				})
				if err != nil {
					return 0, false, err
				}
				eventDone = true
				if end < 0 { // stopped early: the rest of the event is not needed
					if m.Timestamp != nil {
						return -1, false, nil
					}
					// @timestamp comes later: find the event's end.
					if end, ok = skipValue(b, at, 0); !ok {
						return 0, false, metaError{}
					}
					return end, true, nil
				}
				return end, !(m.Timestamp != nil && !original), nil
			}
		}
		end, ok := skipValue(b, at, 0)
		if !ok {
			return 0, false, metaError{}
		}
		return end, true, nil
	})
	return m, err == nil
}

// strBody returns the body of a JSON string token, or nil if v is not one.
func strBody(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return nil
}

type metaError struct{}

func (metaError) Error() string { return "malformed JSON" }

// members walks the object starting at b[i] == '{'. For each member it
// calls fn with the key's body and the offset of the value; fn skips or
// reads the value and returns where it ends and whether to go on. members
// returns the offset after the object, or -1 if fn stopped it early.
func members(b []byte, i int, fn func(key, b []byte, at int) (end int, more bool, err error)) (int, error) {
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, metaError{}
		}
		ke, ok := skipString(b, i)
		if !ok {
			return 0, metaError{}
		}
		key := b[i+1 : ke-1]
		i = SkipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, metaError{}
		}
		i = SkipSpace(b, i+1)
		if i >= len(b) {
			return 0, metaError{}
		}
		ve, more, err := fn(key, b, i)
		if err != nil {
			return 0, err
		}
		if !more {
			return -1, nil
		}
		i = SkipSpace(b, ve)
		if i >= len(b) {
			return 0, metaError{}
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, metaError{}
		}
	}
}

// The scanners below are exported for the sinks and emulators that pick a
// few members out of JSON they do not decode (bulk replies, action lines,
// request bodies). They check structure, which is what a router needs and
// what keeps them fast; where the grammar matters, callers check the
// values they use, or run encoding/json.Valid.

// SkipSpace returns the offset of the first byte of b at or after i (which
// must not be negative) that is not JSON white space (space, tab, line
// feed, carriage return): i when b[i] is not white space, len(b) when only
// white space is left.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the offset just after the JSON string token that
// starts at b[i]. The token ends at the first quote after b[i] that no
// backslash escapes (a backslash escapes the byte after it); escapes,
// control characters and UTF-8 are not checked. ok is false when b[i] is
// not a quote or the string is not closed. b[i+1:end-1] is the string's
// body, still escaped (see Unquote).
func SkipString(b []byte, i int) (end int, ok bool) {
	if i < 0 || i >= len(b) || b[i] != '"' {
		return 0, false
	}
	return skipString(b, i)
}

// SkipValue returns the offset just after the JSON value that starts at
// b[i] (white space before it is not skipped). It checks structure:
// brackets and braces match, strings are closed (as SkipString has it),
// members are "key": value and separated by commas, as are elements. A
// number or literal is taken as any run of bytes up to a comma, closing
// bracket or brace, or white space, so that SkipValue accepts every valid
// value and some invalid ones (tru, 1x). Nesting more than maxDepth (512)
// levels below b[i] is refused, so that hostile input cannot exhaust the
// stack. ok is false when the value is malformed or truncated.
func SkipValue(b []byte, i int) (end int, ok bool) {
	if i < 0 {
		return 0, false
	}
	return skipValue(b, i, 0)
}

// skipString is SkipString when b[i] is known to be '"'.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 512

// skipValue is SkipValue for a value at the given depth of nesting.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		close := byte('}')
		if b[i] == '[' {
			close = ']'
		}
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == close {
			return i + 1, true
		}
		for {
			if close == '}' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				ke, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = SkipSpace(b, ke)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = SkipSpace(b, i+1)
			}
			e, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = SkipSpace(b, e)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = SkipSpace(b, i+1)
			case close:
				return i + 1, true
			default:
				return 0, false
			}
		}
	default: // number, true, false, null
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

// Unquote appends the text of a JSON string body (as Meta holds it) to
// dst, resolving escapes; an invalid escape is kept as it is.
func Unquote(dst, body []byte) []byte {
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' || i+1 >= len(body) {
			dst = append(dst, c)
			continue
		}
		i++
		switch body[i] {
		case '"', '\\', '/':
			dst = append(dst, body[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := unquoteU(body[i+1:])
			if n == 0 {
				dst = append(dst, '\\', 'u')
				continue
			}
			dst = utf8.AppendRune(dst, r)
			i += n
		default:
			dst = append(dst, '\\', body[i])
		}
	}
	return dst
}

// unquoteU decodes the hex digits after "\u" (and a following low
// surrogate escape); n is how many bytes of b it used, 0 if invalid.
func unquoteU(b []byte) (r rune, n int) {
	h := hex4(b)
	if h < 0 {
		return 0, 0
	}
	r, n = rune(h), 4
	if 0xd800 <= r && r < 0xdc00 {
		if len(b) >= 10 && b[4] == '\\' && b[5] == 'u' {
			if lo := hex4(b[6:]); 0xdc00 <= lo && lo < 0xe000 {
				return (r-0xd800)<<10 | (rune(lo) - 0xdc00) + 0x10000, 10
			}
		}
		return 0xfffd, 4
	}
	if 0xdc00 <= r && r < 0xe000 {
		return 0xfffd, 4
	}
	return r, n
}

func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	v := 0
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}
