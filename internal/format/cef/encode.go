package cef

import "strconv"

// Header is the header of a CEF record, for AppendHeader.
type Header struct {
	Version       int    // CEF version, normally 0; negative values are written as 0
	DeviceVendor  string // e.g. "Kaspersky Lab"
	DeviceProduct string // e.g. "Kaspersky CyberTrace for ArcSight"
	DeviceVersion string // e.g. "2.0"
	SignatureID   string // e.g. "2" for a CyberTrace detection
	Name          string // e.g. "CyberTrace Detection Event"
	Severity      string // 0-10 or Low/Medium/High/Very-High; written as given
}

// AppendHeader appends "CEF:Version|Vendor|Product|DeviceVersion|SignatureID|Name|Severity|"
// to dst, trailing pipe included, and returns the extended buffer. '\' and
// '|' in the fields are escaped; CR and LF, which CEF cannot carry in a
// header, become spaces.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, marker...)
	v := h.Version
	if v < 0 {
		v = 0
	}
	dst = strconv.AppendInt(dst, int64(v), 10)
	for _, s := range [...]string{h.DeviceVendor, h.DeviceProduct, h.DeviceVersion, h.SignatureID, h.Name, h.Severity} {
		dst = append(dst, '|')
		dst = appendHeaderField(dst, s)
	}
	return append(dst, '|')
}

func appendHeaderField(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '|':
			esc = `\|`
		case '\n', '\r':
			esc = " "
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// AppendExtension appends the extension pair " key=value" to dst and returns
// the extended buffer. The leading space is left out when dst is empty or
// ends in '|' (right after the header) or in a space. The value is escaped
// ('\' as `\\`, '=' as `\=`, LF as `\n`, CR as `\r`); a value ending in '|'
// gets a trailing space, so that the next pair is still separated by a space
// (Parse trims it). Bytes of key outside the CEF key alphabet
// [A-Za-z0-9_.[\]-] are written as '_'.
//
// An empty value or key writes nothing: CEF has no way to tell an empty
// value from an absent one. Note that Parse reads a value of "-" as empty
// and drops trailing spaces of values, as CEF producers expect.
func AppendExtension(dst []byte, key string, value []byte) []byte {
	if len(value) == 0 || len(key) == 0 {
		return dst
	}
	if n := len(dst); n > 0 && dst[n-1] != '|' && dst[n-1] != ' ' {
		dst = append(dst, ' ')
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !keyChar[c] {
			c = '_'
		}
		dst = append(dst, c)
	}
	dst = append(dst, '=')
	start := 0
	for i, c := range value {
		var esc string
		switch c {
		case '\\':
			esc = `\\`
		case '=':
			esc = `\=`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		default:
			continue
		}
		dst = append(dst, value[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	dst = append(dst, value[start:]...)
	if value[len(value)-1] == '|' {
		dst = append(dst, ' ')
	}
	return dst
}
