package elasticsearch

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// segment is a piece of an index name: a literal, or the bytes [from, to)
// of an RFC 3339 timestamp ("2025-03-01T08:01:05.123Z": yyyy 0-4, MM 5-7,
// dd 8-10, HH 11-13).
type segment struct {
	lit      string
	from, to int
}

// indexPattern is a compiled Config.Index.
type indexPattern struct {
	segs  []segment
	dated bool
}

var dateFields = map[string][2]int{"yyyy": {0, 4}, "MM": {5, 7}, "dd": {8, 10}, "HH": {11, 13}}

// parseIndexPattern compiles "alertrelay-{yyyy.MM.dd}".
func parseIndexPattern(p string) (indexPattern, error) {
	var ip indexPattern
	var first strings.Builder // the name with sample digits, for checks
	lit := func(s string) error {
		if s == "" {
			return nil
		}
		if msg := checkNameChars(s); msg != "" {
			return errors.New(msg)
		}
		ip.segs = append(ip.segs, segment{lit: s})
		first.WriteString(s)
		return nil
	}
	for p != "" {
		open := strings.IndexAny(p, "{}")
		if open < 0 {
			if err := lit(p); err != nil {
				return ip, err
			}
			break
		}
		if p[open] == '}' {
			return ip, errors.New("has a } without {")
		}
		if err := lit(p[:open]); err != nil {
			return ip, err
		}
		end := strings.IndexByte(p[open:], '}')
		if end < 0 {
			return ip, errors.New("has a { without }")
		}
		inner := p[open+1 : open+end]
		p = p[open+end+1:]
		if inner == "" {
			return ip, errors.New("has an empty {}")
		}
		for inner != "" {
			switch c := inner[0]; {
			case c == '.' || c == '-' || c == '_':
				ip.segs = append(ip.segs, segment{lit: inner[:1]})
				first.WriteByte(c)
				inner = inner[1:]
				continue
			}
			matched := false
			for name, r := range dateFields {
				if strings.HasPrefix(inner, name) {
					ip.segs = append(ip.segs, segment{from: r[0], to: r[1]})
					ip.dated = true
					first.WriteString(strings.Repeat("0", r[1]-r[0]))
					inner = inner[len(name):]
					matched = true
					break
				}
			}
			if !matched {
				return ip, fmt.Errorf("unknown date field in {...} (want yyyy, MM, dd, HH separated by . - _)")
			}
		}
	}
	if msg := checkName(first.String()); msg != "" {
		return ip, errors.New(msg)
	}
	return ip, nil
}

// validTimestamp reports whether ts starts as "yyyy-MM-ddTHH".
func validTimestamp(ts []byte) bool {
	if len(ts) < 13 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12} {
		if ts[i] < '0' || ts[i] > '9' {
			return false
		}
	}
	return true
}

// appendName appends the index name for an event whose @timestamp body is
// ts. A missing or malformed timestamp takes now (UTC) instead, which a
// retry after the hour or day changes may not match.
func (ip *indexPattern) appendName(dst, ts []byte, now func() time.Time) []byte {
	if ip.dated && !validTimestamp(ts) {
		ts = now().UTC().AppendFormat(make([]byte, 0, 24), "2006-01-02T15")
	}
	for _, s := range ip.segs {
		if s.lit != "" {
			dst = append(dst, s.lit...)
		} else {
			dst = append(dst, ts[s.from:s.to]...)
		}
	}
	return dst
}
