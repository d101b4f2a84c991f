package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Message formats, as Message.Format.
const (
	FormatRFC5424 = "rfc5424"
	FormatRFC3164 = "rfc3164"
)

// Framings, as Received.Framing.
const (
	FramingOctetCounting = "octet_counting"
	FramingLF            = "lf"
	FramingDatagram      = "datagram"
)

// ErrMalformed is wrapped by Parse and ReadFrame errors.
var ErrMalformed = errors.New("malformed syslog message")

// Message is one parsed syslog message.
type Message struct {
	Format    string // FormatRFC5424 or FormatRFC3164
	Facility  int    // 0-23
	Severity  int    // 0-7
	Timestamp string // as sent; "-" is the NILVALUE
	Hostname  string
	AppName   string // RFC 3164: the TAG without "[pid]"
	ProcID    string // RFC 3164: the pid between brackets, if any
	MsgID     string // RFC 3164: ""
	SD        []SDElement
	Msg       []byte // the MSG part (RFC 3164: after "TAG: ")
}

// SDElement is one RFC 5424 structured-data element.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one parameter, its value unescaped.
type SDParam struct {
	Name, Value string
}

// Param returns the value of the first parameter name in an element whose
// SD-ID is id ("" matches any element).
func (m *Message) Param(id, name string) (string, bool) {
	for _, e := range m.SD {
		if id != "" && e.ID != id {
			continue
		}
		for _, p := range e.Params {
			if p.Name == name {
				return p.Value, true
			}
		}
	}
	return "", false
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Parse parses one message without framing: RFC 5424 when the PRI is
// followed by version "1 ", else RFC 3164 ("Mmm dd hh:mm:ss HOST TAG:
// MSG"). It is strict about what alertrelay sends and never panics. Msg
// aliases b.
func Parse(b []byte) (Message, error) {
	var m Message
	if len(b) < 3 || b[0] != '<' {
		return m, malformed("no PRI")
	}
	end := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if end < 2 {
		return m, malformed("bad PRI")
	}
	pri, err := strconv.Atoi(string(b[1:end]))
	if err != nil || pri < 0 || pri > 191 || (end > 2 && b[1] == '0') {
		return m, malformed("bad PRI %q", b[1:end])
	}
	m.Facility, m.Severity = pri/8, pri%8
	rest := b[end+1:]
	if bytes.HasPrefix(rest, []byte("1 ")) {
		return parse5424(m, rest[2:])
	}
	return parse3164(m, rest)
}

// field cuts the next space-terminated header field of at most max
// printable ASCII bytes.
func field(b []byte, name string, max int) (string, []byte, error) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return "", nil, malformed("%s: no space after it", name)
	}
	if i == 0 || i > max {
		return "", nil, malformed("%s: length %d not in 1-%d", name, i, max)
	}
	for _, c := range b[:i] {
		if c < 33 || c > 126 {
			return "", nil, malformed("%s: byte %#x is not printable ASCII", name, c)
		}
	}
	return string(b[:i]), b[i+1:], nil
}

func parse5424(m Message, b []byte) (Message, error) {
	m.Format = FormatRFC5424
	var err error
	if m.Timestamp, b, err = field(b, "TIMESTAMP", 32); err != nil {
		return m, err
	}
	if m.Hostname, b, err = field(b, "HOSTNAME", 255); err != nil {
		return m, err
	}
	if m.AppName, b, err = field(b, "APP-NAME", 48); err != nil {
		return m, err
	}
	if m.ProcID, b, err = field(b, "PROCID", 128); err != nil {
		return m, err
	}
	// MSGID may end the message when SD is "-" and there is no MSG, but
	// SD is mandatory, so a space always follows.
	if m.MsgID, b, err = field(b, "MSGID", 32); err != nil {
		return m, err
	}
	if len(b) == 0 {
		return m, malformed("no STRUCTURED-DATA")
	}
	if b[0] == '-' {
		b = b[1:]
	} else {
		if m.SD, b, err = parseSD(b); err != nil {
			return m, err
		}
	}
	switch {
	case len(b) == 0:
		m.Msg = b
	case b[0] == ' ':
		m.Msg = b[1:]
	default:
		return m, malformed("no space after STRUCTURED-DATA")
	}
	return m, nil
}

// parseSD parses one or more SD-ELEMENTs at the start of b.
func parseSD(b []byte) ([]SDElement, []byte, error) {
	var els []SDElement
	for len(b) > 0 && b[0] == '[' {
		b = b[1:]
		id, n := sdName(b)
		if n == 0 {
			return nil, nil, malformed("empty SD-ID")
		}
		el := SDElement{ID: id}
		b = b[n:]
		for {
			if len(b) == 0 {
				return nil, nil, malformed("unterminated SD-ELEMENT")
			}
			if b[0] == ']' {
				b = b[1:]
				break
			}
			if b[0] != ' ' {
				return nil, nil, malformed("want space or ']' in SD-ELEMENT %q", id)
			}
			b = b[1:]
			name, n := sdName(b)
			if n == 0 || len(b) < n+2 || b[n] != '=' || b[n+1] != '"' {
				return nil, nil, malformed("bad SD-PARAM in %q", id)
			}
			b = b[n+2:]
			var val []byte
			closed := false
			for i := 0; i < len(b); i++ {
				c := b[i]
				if c == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\' || b[i+1] == ']') {
					val = append(val, b[i+1])
					i++
					continue
				}
				if c == '"' {
					b = b[i+1:]
					closed = true
					break
				}
				val = append(val, c)
			}
			if !closed {
				return nil, nil, malformed("unterminated PARAM-VALUE in %q", id)
			}
			el.Params = append(el.Params, SDParam{Name: name, Value: string(val)})
		}
		els = append(els, el)
	}
	return els, b, nil
}

// sdName returns the SD-NAME at the start of b (1-32 PRINTUSASCII except
// '=', SP, ']', '"') and its length.
func sdName(b []byte) (string, int) {
	n := 0
	for n < len(b) && n < 32 {
		c := b[n]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			break
		}
		n++
	}
	return string(b[:n]), n
}

var months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func parse3164(m Message, b []byte) (Message, error) {
	m.Format = FormatRFC3164
	// Mmm dd hh:mm:ss: 15 bytes, day padded with a space.
	if len(b) < 16 || b[15] != ' ' {
		return m, malformed("RFC 3164: no TIMESTAMP")
	}
	ts := b[:15]
	ok := false
	for _, mo := range months {
		if string(ts[:3]) == mo {
			ok = true
		}
	}
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	if !ok || ts[3] != ' ' || !(ts[4] == ' ' || digit(ts[4])) || !digit(ts[5]) || ts[6] != ' ' ||
		!digit(ts[7]) || !digit(ts[8]) || ts[9] != ':' || !digit(ts[10]) || !digit(ts[11]) ||
		ts[12] != ':' || !digit(ts[13]) || !digit(ts[14]) {
		return m, malformed("RFC 3164: bad TIMESTAMP %q", ts)
	}
	m.Timestamp = string(ts)
	b = b[16:]
	var err error
	if m.Hostname, b, err = field(b, "HOSTNAME", 255); err != nil {
		return m, err
	}
	// TAG: up to 32 alphanumeric-ish bytes, ended by ':' or '['.
	i := 0
	for i < len(b) && i <= 32 && b[i] != ':' && b[i] != '[' && b[i] != ' ' {
		i++
	}
	if i == 0 || i > 32 || i == len(b) {
		return m, malformed("RFC 3164: bad TAG")
	}
	m.AppName = string(b[:i])
	b = b[i:]
	if b[0] == '[' {
		j := bytes.IndexByte(b, ']')
		if j < 0 {
			return m, malformed("RFC 3164: unterminated [pid]")
		}
		m.ProcID = string(b[1:j])
		b = b[j+1:]
	}
	if len(b) == 0 || b[0] != ':' {
		return m, malformed("RFC 3164: no ':' after TAG")
	}
	b = b[1:]
	if len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	m.Msg = b
	return m, nil
}

// ReadFrame reads one message from a TCP or TLS stream, telling the
// framing by its first byte as rsyslog does: a digit starts an
// octet-counted frame ("LEN SP MSG", RFC 6587 §3.4.1); anything else is
// a message ended by LF (§3.4.2), whose trailing CR, if any, is dropped.
// A frame longer than max bytes is an error (the stream cannot be
// resynchronised). The frame is returned in buf if it fits, else in a new
// slice. At the end of the stream it returns io.EOF, or
// io.ErrUnexpectedEOF inside a frame.
func ReadFrame(r *bufio.Reader, buf []byte, max int) (frame []byte, framing string, err error) {
	c, err := r.ReadByte()
	if err != nil {
		return nil, "", err
	}
	if c >= '1' && c <= '9' {
		n := int(c - '0')
		for {
			c, err = r.ReadByte()
			if err != nil {
				return nil, "", unexpected(err)
			}
			if c == ' ' {
				break
			}
			if c < '0' || c > '9' {
				return nil, "", malformed("octet count: unexpected byte %#x", c)
			}
			n = n*10 + int(c-'0')
			if n > max {
				return nil, "", malformed("octet count over %d", max)
			}
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, "", unexpected(err)
		}
		return buf, FramingOctetCounting, nil
	}
	buf = append(buf[:0], c)
	if c == '\n' {
		return buf[:0], FramingLF, nil
	}
	for {
		line, err := r.ReadSlice('\n')
		buf = append(buf, line...)
		if len(buf) > max+1 {
			return nil, "", malformed("line longer than %d", max)
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, "", unexpected(err)
		}
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	return buf, FramingLF, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
