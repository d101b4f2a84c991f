package event

import (
	"encoding/binary"
	"unicode/utf8"
)

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes in v is a control character,
// '"', '\\' or non-ASCII. These are the classic SWAR tests ("has a byte less
// than n", "has a zero byte"); they answer exactly whether such a byte
// exists, which is all that is asked.
func plain8(v uint64) bool {
	ctl := (v - 0x20*lo8) &^ v // a byte < 0x20 (exact when no byte >= 0x80, checked by v&hi8)
	xq := v ^ ('"' * lo8)
	q := (xq - lo8) &^ xq // a byte == '"'
	xb := v ^ ('\\' * lo8)
	b := (xb - lo8) &^ xb // a byte == '\\'
	return (ctl|q|b|v)&hi8 == 0
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] is true for ASCII bytes that need no escaping in a JSON string.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a quoted JSON string. Invalid UTF-8 is
// replaced by U+FFFD, so the output is always valid JSON. '<', '>' and '&'
// are not escaped: the documents are not meant for HTML.
func AppendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip 8 plain ASCII bytes at a time: most values need no escaping.
		for i+8 <= len(s) && plain8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSONStr is AppendJSONString for a string.
func AppendJSONStr(dst []byte, s string) []byte {
	// The conversion does not allocate: the compiler passes the string's
	// bytes straight through for a non-escaping read-only use.
	return AppendJSONString(dst, []byte(s))
}
