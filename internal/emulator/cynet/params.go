package cynet

import (
	"math"
	"time"
)

// minTime is the lower bound used when a time filter is absent.
const minTime = math.MinInt64

// paramError is a query-parameter error; its text is the 400 message.
type paramError string

func (e paramError) Error() string { return string(e) }

// timeLayouts are the accepted LastSeen/DateChanged formats, tried in
// order. The spec (A4) lists three: "2006-01-02 15:04:05" (space, no zone),
// "2006-01-02T15:04:05Z", and ISO with fractional seconds and Z. The server
// is believed to parse leniently (.NET style, INFERRED), so the emulator
// also accepts a "T" without zone, fractions after a space, numeric zone
// offsets and a bare date. A value without zone is UTC.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano, // also matches "...Z" without fraction and "+02:00"
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02",
}

// ParseTime parses a LastSeen/DateChanged value as the emulator does (see
// timeLayouts) and returns it in UTC.
func ParseTime(v string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, paramError("The value '" + v + "' is not a valid date/time.")
}

// parseTimeParam parses the required time parameter name of q (Unix ns).
// Absent or empty: 400 (INFERRED: strict, to catch misspelt names).
func parseTimeParam(q map[string][]string, name string) (int64, error) {
	v := q[name]
	if len(v) == 0 || v[0] == "" {
		return 0, paramError("The " + name + " parameter is required.")
	}
	t, err := ParseTime(v[0])
	if err != nil {
		return 0, paramError("The value '" + v[0] + "' is not valid for " + name + ".")
	}
	return clampNS(t), nil
}

// clampNS converts t to Unix nanoseconds, saturating outside 1678..2262.
func clampNS(t time.Time) int64 {
	switch {
	case t.Year() < 1678:
		return minTime
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}
