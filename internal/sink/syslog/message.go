package syslog

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/alertrelay/alertrelay/internal/event"
)

// encoder turns one document into one syslog message (without framing).
type encoder struct {
	rfc3164  bool
	facility int
	severity int // -1: per event
	hostname string
	appName  string
	msgID    string // "" : event.dataset
	sdID     string // "" : no structured data
	body     string
	max      int  // longest message
	noLF     bool // LF framing: CR and LF in a message become spaces
	now      func() time.Time
}

// appendMessage appends the message for the document raw to dst. truncated reports that
// it was cut to e.max bytes. err is set, and dst returned unchanged, only
// when the document cannot be read at all (not a JSON object).
func (e *encoder) appendMessage(dst, raw []byte) (out []byte, truncated bool, err error) {
	meta, _ := event.ReadMeta(raw)
	var d *doc
	switch {
	case e.body == BodyCEF:
		d, err = decodeDoc(raw)
	case e.severity < 0:
		d, err = decodeSeverity(raw)
	}
	if err != nil {
		return dst, false, err
	}
	sev := e.severity
	if sev < 0 {
		sev = syslogSeverity(d)
	}
	ts := e.timestamp(meta.Timestamp)

	start := len(dst)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(e.facility*8+sev), 10)
	dst = append(dst, '>')
	if e.rfc3164 {
		// <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG (RFC 3164 §4.1), time
		// in UTC: BSD syslog has no zone.
		dst = ts.AppendFormat(dst, time.Stamp)
		dst = append(dst, ' ')
		dst = append(dst, e.hostname...)
		dst = append(dst, ' ')
		dst = append(dst, e.appName...)
		dst = append(dst, ':', ' ')
	} else {
		// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
		dst = append(dst, '1', ' ')
		dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		dst = append(dst, ' ')
		dst = append(dst, e.hostname...)
		dst = append(dst, ' ')
		dst = append(dst, e.appName...)
		dst = append(dst, " - "...) // PROCID: NILVALUE
		if e.msgID != "" {
			dst = append(dst, e.msgID...)
		} else {
			dst = appendHeaderField(dst, event.Unquote(nil, meta.Dataset), 32)
		}
		dst = append(dst, ' ')
		dst = e.appendSD(dst, meta)
		dst = append(dst, ' ')
	}
	bodyStart := len(dst)
	switch e.body {
	case BodyCEF:
		dst = appendCEF(dst, d)
	case BodyOriginal:
		if meta.Original != nil {
			dst = event.Unquote(dst, meta.Original)
			break
		}
		dst = append(dst, raw...)
	default:
		dst = append(dst, raw...)
	}
	if e.noLF {
		for i := bodyStart; i < len(dst); i++ {
			if dst[i] == '\n' || dst[i] == '\r' {
				dst[i] = ' '
			}
		}
	}
	if len(dst)-start > e.max {
		cut := start + e.max
		for cut > start && !utf8.RuneStart(dst[cut]) {
			cut--
		}
		dst = dst[:cut]
		truncated = true
	}
	return dst, truncated, nil
}

// timestamp is @timestamp, or now when it is absent or not RFC 3339.
func (e *encoder) timestamp(raw []byte) time.Time {
	if raw != nil {
		if t, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil {
			return t.UTC()
		}
	}
	return e.now().UTC()
}

// appendSD appends the STRUCTURED-DATA field: [sdID eventId="…"
// dataset="…" provider="…"], or the NILVALUE.
func (e *encoder) appendSD(dst []byte, m event.Meta) []byte {
	if e.sdID == "" || (m.ID == nil && m.Dataset == nil && m.Provider == nil) {
		return append(dst, '-')
	}
	dst = append(dst, '[')
	dst = append(dst, e.sdID...)
	for _, p := range [...]struct {
		name string
		raw  []byte
	}{{"eventId", m.ID}, {"dataset", m.Dataset}, {"provider", m.Provider}} {
		if p.raw == nil {
			continue
		}
		dst = append(dst, ' ')
		dst = append(dst, p.name...)
		dst = append(dst, '=', '"')
		dst = appendParamValue(dst, event.Unquote(nil, p.raw))
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

// appendParamValue appends v as an RFC 5424 PARAM-VALUE: '"', '\' and ']'
// are escaped with a backslash (§6.3.3).
func appendParamValue(dst, v []byte) []byte {
	for _, c := range v {
		if c == '"' || c == '\\' || c == ']' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

// appendHeaderField appends v as a header field of at most max
// PRINTUSASCII bytes: other bytes become '_'; empty gives the NILVALUE.
func appendHeaderField(dst, v []byte, max int) []byte {
	if len(v) == 0 {
		return append(dst, '-')
	}
	if len(v) > max {
		v = v[:max]
	}
	for _, c := range v {
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendFrame appends msg to dst with the framing: "LEN SP MSG" for
// octet counting, "MSG LF" for LF framing.
func appendFrame(dst, msg []byte, octet bool) []byte {
	if octet {
		dst = strconv.AppendInt(dst, int64(len(msg)), 10)
		dst = append(dst, ' ')
		dst = append(dst, msg...)
		return dst
	}
	dst = append(dst, msg...)
	return append(dst, '\n')
}
