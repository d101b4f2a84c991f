package normalize

import "unicode/utf8"

// A small JSON scanner for the Cynet mapping: it finds token boundaries
// without building values, so an alert is walked once, allocation-free.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// strPlain[c]: byte c stands for itself inside a JSON string and is ASCII.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString validates the string token at b[i] == '"' and returns the
// offset after its closing quote; bad reports invalid UTF-8.
func scanString(b []byte, i int) (end int, bad, ok bool) {
	i++
	for i < len(b) {
		c := b[i]
		if strPlain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, bad, true
		case c == '\\':
			if i+1 == len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				bad = true
			}
			i += size
		}
	}
	return 0, false, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// scanNumber validates the number at b[i] (RFC 8259 grammar).
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == d {
			return 0, false
		}
	}
	return i, true
}

// scanValue validates the JSON value starting at b[i] and returns the
// offset after it. dirty reports whitespace inside an object or array, or
// invalid UTF-8 in a string: the value cannot be copied byte for byte.
func scanValue(b []byte, i, depth int) (end int, kind jsKind, dirty, ok bool) {
	if i >= len(b) {
		return 0, jsNone, false, false
	}
	switch c := b[i]; c {
	case '"':
		end, bad, ok := scanString(b, i)
		return end, jsString, bad, ok
	case '{', '[':
		if depth > maxJSONDepth {
			return 0, jsNone, false, false
		}
		closer, kind := byte('}'), jsObject
		if c == '[' {
			closer, kind = ']', jsArray
		}
		j := skipWS(b, i+1)
		dirty = j != i+1
		if j < len(b) && b[j] == closer {
			return j + 1, kind, dirty, true
		}
		for {
			if kind == jsObject {
				if j == len(b) || b[j] != '"' {
					return 0, jsNone, false, false
				}
				e, bad, ok := scanString(b, j)
				if !ok {
					return 0, jsNone, false, false
				}
				dirty = dirty || bad
				j = skipWS(b, e)
				if j == len(b) || b[j] != ':' {
					return 0, jsNone, false, false
				}
				dirty = dirty || j != e
				k := skipWS(b, j+1)
				dirty = dirty || k != j+1
				j = k
			}
			e, _, d, ok := scanValue(b, j, depth+1)
			if !ok {
				return 0, jsNone, false, false
			}
			j = skipWS(b, e)
			dirty = dirty || d || j != e
			if j == len(b) {
				return 0, jsNone, false, false
			}
			if b[j] == closer {
				return j + 1, kind, dirty, true
			}
			if b[j] != ',' {
				return 0, jsNone, false, false
			}
			k := skipWS(b, j+1)
			dirty = dirty || k != j+1
			j = k
		}
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	default:
		end, ok := scanNumber(b, i)
		return end, jsNumber, false, ok
	}
}

func literal(b []byte, i int, lit string) (int, jsKind, bool, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), jsLiteral, false, true
	}
	return 0, jsNone, false, false
}

// appendCompact appends the validated JSON value v without insignificant
// whitespace and with invalid UTF-8 in its strings replaced.
func appendCompact(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case '"':
			end, bad, _ := scanString(v, i)
			if bad {
				dst = appendFixedString(dst, v[i:end])
			} else {
				dst = append(dst, v[i:end]...)
			}
			i = end
		case ' ', '\t', '\n', '\r':
			i++
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// appendFixedString appends a validated string token with each invalid
// UTF-8 byte replaced by U+FFFD.
func appendFixedString(dst, tok []byte) []byte {
	start := 0
	for i := 0; i < len(tok); {
		if tok[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(tok[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, tok[start:i]...)
			dst = append(dst, "\ufffd"...)
			start = i + 1
		}
		i += size
	}
	return append(dst, tok[start:]...)
}

// appendUnescaped appends the text of a validated string token's body.
// Unpaired surrogates become U+FFFD.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch e := s[i+1]; e {
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
			r := rune(hex4(s[i+2:]))
			i += 6
			if utf16IsHigh(r) && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if r2 := rune(hex4(s[i+2:])); utf16IsLow(r2) {
					r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r) // a lone surrogate is not a valid rune: AppendRune writes U+FFFD
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a':
			n = n<<4 | int(c-'a'+10)
		default:
			n = n<<4 | int(c-'A'+10)
		}
	}
	return n
}

func utf16IsHigh(r rune) bool { return 0xd800 <= r && r < 0xdc00 }
func utf16IsLow(r rune) bool  { return 0xdc00 <= r && r < 0xe000 }
