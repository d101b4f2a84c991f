package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Errors for alerts that cannot be encoded; the poller dead-letters them.
var (
	// ErrCynetInvalid: the alert is not a well-formed JSON object.
	ErrCynetInvalid = errors.New("cynet alert is not a JSON object")
	// ErrCynetNoID: the alert has no integer ClientDbId.
	ErrCynetNoID = errors.New("cynet alert has no integer ClientDbId")
)

// CynetOptions control the Cynet mapping.
type CynetOptions struct {
	// Source is the name of the configured source: event.provider.
	Source string
	// IncludeOriginal adds the alert object as received as event.original.
	IncludeOriginal bool
	// AlertIPLittleEndian reads the integer AlertIp least significant byte
	// first (the order of .NET's IPAddress.Address). The vendor does not
	// document the order; the default is network order, most significant
	// byte first.
	AlertIPLittleEndian bool
}

// Cynet encodes Cynet 360 alerts (one object of the API's Entities array)
// into canonical documents. It is immutable and safe for concurrent use.
type Cynet struct {
	opt CynetOptions
	// eventFixed is the constant run of event.* members after event.id.
	eventFixed []byte
}

// NewCynet returns a Cynet encoder.
func NewCynet(opt CynetOptions) *Cynet {
	b := []byte(`,"kind":"alert","category":["intrusion_detection"],"type":["info"],"dataset":`)
	b = event.AppendJSONStr(b, event.KindCynetAlert.String())
	b = append(b, `,"module":"cynet","provider":`...)
	b = event.AppendJSONStr(b, opt.Source)
	return &Cynet{opt: opt, eventFixed: b}
}

// The top-level members the mapping reads.
const (
	cyClientDbID = iota
	cyIncidentName
	cyIncidentDescription
	cyHostID
	cyHostIP
	cyHostName
	cyUserName
	cySha256
	cySha256Hex
	cyPath
	cyCommandLine
	cyAlertURL
	cyAlertDomain
	cyAlertIP
	cySeverity
	cyStatus
	cyAlertType
	cyLastSeenUtc
	cyLastSeen
	cyDateIn
	cyFieldCount
)

func cynetField(name string) int {
	switch name {
	case "ClientDbId":
		return cyClientDbID
	case "IncidentName":
		return cyIncidentName
	case "IncidentDescription":
		return cyIncidentDescription
	case "HostId":
		return cyHostID
	case "HostIp":
		return cyHostIP
	case "HostName":
		return cyHostName
	case "UserName":
		return cyUserName
	case "Sha256":
		return cySha256
	case "Sha256Hex":
		return cySha256Hex
	case "Path":
		return cyPath
	case "CommandLine":
		return cyCommandLine
	case "AlertUrl":
		return cyAlertURL
	case "AlertDomain":
		return cyAlertDomain
	case "AlertIp":
		return cyAlertIP
	case "Severity":
		return cySeverity
	case "Status":
		return cyStatus
	case "AlertType":
		return cyAlertType
	case "LastSeenUtc":
		return cyLastSeenUtc
	case "LastSeen":
		return cyLastSeen
	case "DateIn":
		return cyDateIn
	}
	return -1
}

// cynetSeverityName names the top-level Severity (spec A7).
func cynetSeverityName(n int64) string {
	switch n {
	case 1:
		return "Information"
	case 2:
		return "Low"
	case 3:
		return "Medium"
	case 4:
		return "High"
	case 5:
		return "Critical"
	case 99:
		return "Unknown"
	}
	return "unknown"
}

// cynetStatusName names Status (spec A7).
func cynetStatusName(n int64) string {
	switch n {
	case 0:
		return "Open"
	case 1:
		return "Pending"
	case 2:
		return "Ignored"
	case 3:
		return "Closed"
	}
	return "unknown"
}

var cynetAlertTypes = [...]string{"file", "domain", "ip", "url", "user", "host", "system"}

// cynetAlertTypeName names AlertType (spec A7).
func cynetAlertTypeName(n int64) string {
	if n >= 0 && n < int64(len(cynetAlertTypes)) {
		return cynetAlertTypes[n]
	}
	return "unknown"
}

// jsKind is the type of a JSON value.
type jsKind uint8

const (
	jsNone jsKind = iota
	jsString
	jsNumber
	jsObject
	jsArray
	jsLiteral // true, false, null
)

// cyMember is one top-level member of an alert, as offsets into the raw
// object: the key token and the value token, quotes included.
type cyMember struct {
	k0, k1, v0, v1 int32
	kind           jsKind
	keyBad         bool // the key has invalid UTF-8
	dirty          bool // the value has whitespace inside or invalid UTF-8: copy it through appendCompact
	drop           bool // a later occurrence of a key: the first one wins
}

// cyAlert is an alert split into its members.
type cyAlert struct {
	raw []byte
	ms  []cyMember
	idx [cyFieldCount]int16 // member index of each field the mapping reads, -1 if absent
}

// maxJSONDepth bounds nesting, counted as in the output document (the
// alert's member values open level 3, inside "cynet"), so an accepted alert
// never makes a document nested deeper than this.
const maxJSONDepth = 1000

// Append appends the canonical document of one Cynet alert (raw: one
// object of the Entities array, as received) to dst. On error dst is
// returned unchanged.
func (n *Cynet) Append(dst []byte, raw []byte, received time.Time) ([]byte, error) {
	out, _, _, err := n.AppendKeyed(dst, raw, received)
	return out, err
}

// AppendKeyed is Append that also returns what de-duplication needs, from
// the same single scan of the alert: the ClientDbId and the LastSeen as
// sent (LastSeenUtc when LastSeen is absent).
func (n *Cynet) AppendKeyed(dst []byte, raw []byte, received time.Time) (out []byte, id int64, lastSeen []byte, err error) {
	var msBuf [64]cyMember // most alerts have 30-50 members: no allocation
	a := cyAlert{raw: raw}
	ms, err := splitCynet(raw, msBuf[:0], &a.idx)
	if err != nil {
		return dst, 0, nil, err
	}
	a.ms = ms
	id, ok := a.int(cyClientDbID)
	if !ok {
		return dst, 0, nil, ErrCynetNoID
	}
	if lastSeen = a.content(cyLastSeen); lastSeen == nil {
		lastSeen = a.content(cyLastSeenUtc)
	}

	w := jw{b: dst}
	w.begin()
	version, hasVersion := a.time(cyLastSeenUtc)
	if !hasVersion {
		if version, hasVersion = a.time(cyLastSeen); !hasVersion {
			version, hasVersion = a.time(cyDateIn)
		}
	}
	ts := received
	if hasVersion {
		ts = version
	}
	w.time("@timestamp", ts)

	w.open("event")
	w.key("id")
	w.b = append(w.b, `"cy-`...)
	w.b = strconv.AppendInt(w.b, id, 10)
	if hasVersion {
		w.b = append(w.b, '-')
		w.b = strconv.AppendInt(w.b, version.Unix(), 10)
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, n.eventFixed...)
	if sev, ok := a.int(cySeverity); ok {
		w.key("severity")
		w.b = strconv.AppendInt(w.b, sev, 10)
	}
	w.time("created", received)
	if n.opt.IncludeOriginal {
		w.str("original", raw)
	}
	w.close()
	w.b = append(w.b, `,"observer":{"vendor":"Cynet","product":"Cynet 360"}`...)

	if a.nonEmpty(cyIncidentName) {
		a.str(&w, "message", cyIncidentName)
	}
	if a.nonEmpty(cyIncidentName) || a.nonEmpty(cyIncidentDescription) {
		w.open("rule")
		a.strOpt(&w, "name", cyIncidentName)
		a.strOpt(&w, "description", cyIncidentDescription)
		w.close()
	}
	hostIP, hasHostIP := validIP(a.content(cyHostIP))
	if a.nonEmpty(cyHostID) || a.nonEmpty(cyHostName) || hasHostIP {
		w.open("host")
		if a.nonEmpty(cyHostID) {
			w.key("id")
			if m := &a.ms[a.idx[cyHostID]]; m.kind == jsNumber {
				w.b = append(append(append(w.b, '"'), raw[m.v0:m.v1]...), '"') // a JSON number needs no escaping
			} else {
				a.appendValue(&w, a.idx[cyHostID])
			}
		}
		a.strOpt(&w, "name", cyHostName)
		if hasHostIP {
			w.str("ip", hostIP)
		}
		w.close()
	}
	if a.nonEmpty(cyUserName) {
		w.open("user")
		a.str(&w, "name", cyUserName)
		w.close()
	}
	a.appendFile(&w)
	if a.nonEmpty(cyCommandLine) {
		w.open("process")
		a.str(&w, "command_line", cyCommandLine)
		w.close()
	}
	if a.nonEmpty(cyAlertURL) {
		w.open("url")
		a.str(&w, "full", cyAlertURL)
		w.close()
	}
	ipNum, _ := a.int(cyAlertIP)
	alertIP, hasAlertIP := cynetAlertIP(ipNum, n.opt.AlertIPLittleEndian)
	if a.nonEmpty(cyAlertDomain) || hasAlertIP {
		w.open("destination")
		a.strOpt(&w, "domain", cyAlertDomain)
		if hasAlertIP {
			w.key("ip")
			w.b = append(w.b, '"')
			w.b = appendIPv4(w.b, alertIP)
			w.b = append(w.b, '"')
		}
		w.close()
	}

	w.open("cynet")
	a.appendVendor(&w)
	w.close()
	w.close()
	return w.b, id, lastSeen, nil
}

// appendFile writes file.*: the path, its last element and the SHA-256 in
// lower case (the vendor's upper case stays under cynet).
func (a *cyAlert) appendFile(w *jw) {
	hash := cySha256
	if !a.nonEmpty(hash) {
		hash = cySha256Hex
	}
	if !a.nonEmpty(cyPath) && !a.nonEmpty(hash) {
		return
	}
	w.open("file")
	if a.nonEmpty(cyPath) {
		// The path token just written is canonical, so its last element
		// is a valid token body too.
		start := a.str(w, "path", cyPath)
		if name := baseName(w.b[start+1 : len(w.b)-1]); len(name) > 0 {
			w.key("name")
			w.b = append(w.b, '"')
			w.b = append(w.b, name...) // name aliases w.b: append copies from the old array if it grows
			w.b = append(w.b, '"')
		}
	}
	if a.nonEmpty(hash) {
		w.open("hash")
		w.key("sha256")
		start := len(w.b)
		a.appendValue(w, a.idx[hash])
		lowerASCII(w.b[start:]) // JSON escapes stay valid: their letters are lower case or hex digits
		w.close()
	}
	w.close()
}

// baseName returns what follows the last path separator ('/', or '\'
// written as the JSON escape "\\") in the contents of a JSON string token,
// cut at an escape boundary so that it is a valid token body itself.
func baseName(s []byte) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '/':
			start = i + 1
		case '\\':
			switch s[i+1] {
			case '\\', '/':
				start = i + 2
				i++
			case 'u':
				i += 5
			default:
				i++
			}
		}
	}
	return s[start:]
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// appendVendor writes every member as received, in order, with the
// JSON-in-string members decoded and the enumerations named.
func (a *cyAlert) appendVendor(w *jw) {
	for i := range a.ms {
		m := &a.ms[i]
		if m.drop {
			continue
		}
		w.sep()
		if m.keyBad {
			w.b = appendFixedString(w.b, a.raw[m.k0:m.k1])
		} else {
			w.b = append(w.b, a.raw[m.k0:m.k1]...)
		}
		w.b = append(w.b, ':')
		if m.kind != jsString || !isJSONName(a.raw[m.k0+1:m.k1-1]) || !a.appendDecoded(w, m) {
			a.appendValue(w, int16(i))
		}
		switch int16(i) {
		case a.idx[cySeverity]:
			if v, ok := a.int(cySeverity); ok {
				w.lit("severity_name", cynetSeverityName(v))
			}
		case a.idx[cyStatus]:
			if v, ok := a.int(cyStatus); ok {
				w.lit("status_name", cynetStatusName(v))
			}
		case a.idx[cyAlertType]:
			if v, ok := a.int(cyAlertType); ok {
				w.lit("alert_type_name", cynetAlertTypeName(v))
			}
		}
	}
}

// isJSONName says whether a member named k may hold JSON inside a string:
// IncidentJsonDescription, AlertGraphJsonResolved, AlertGraphJsonRaw and
// any other name containing "Json".
func isJSONName(k []byte) bool {
	for i := 0; i+4 <= len(k); i++ {
		if k[i] == 'J' && k[i+1] == 's' && k[i+2] == 'o' && k[i+3] == 'n' {
			return true
		}
	}
	return false
}

// appendDecoded writes the string member m decoded when its text is a JSON
// object or array; otherwise it writes nothing and returns false.
func (a *cyAlert) appendDecoded(w *jw, m *cyMember) bool {
	body := a.raw[m.v0+1 : m.v1-1]
	// Cheap rejection of the common non-JSON text before unescaping.
	if i := skipWS(body, 0); i == len(body) || body[i] != '{' && body[i] != '[' && body[i] != '\\' {
		return false
	}
	// Unescape into w.b's spare tail, then compact from there to after
	// it, then move the result down: no scratch buffer to allocate.
	start := len(w.b)
	w.b = appendUnescaped(w.b, body)
	text := w.b[start:] // stays readable if the appends below move w.b
	i := skipWS(text, 0)
	end, kind, dirty, ok := scanValue(text, i, 3)
	if !ok || (kind != jsObject && kind != jsArray) || skipWS(text, end) != len(text) {
		w.b = w.b[:start]
		return false
	}
	mid := len(w.b)
	if dirty {
		w.b = appendCompact(w.b, text[i:end])
	} else {
		w.b = append(w.b, text[i:end]...)
	}
	n := copy(w.b[start:], w.b[mid:])
	w.b = w.b[:start+n]
	return true
}

// appendValue writes member i's value token, compacted and with invalid
// UTF-8 replaced when needed.
func (a *cyAlert) appendValue(w *jw, i int16) {
	m := &a.ms[i]
	v := a.raw[m.v0:m.v1]
	switch {
	case !m.dirty:
		w.b = append(w.b, v...)
	case m.kind == jsString:
		w.b = appendFixedString(w.b, v)
	default:
		w.b = appendCompact(w.b, v)
	}
}

// nonEmpty says whether field f is a non-empty string (HostId: or a
// number other than 0). Other types (null, objects) are not mapped to ECS
// fields.
func (a *cyAlert) nonEmpty(f int) bool {
	i := a.idx[f]
	if i < 0 {
		return false
	}
	m := &a.ms[i]
	return m.kind == jsString && m.v1-m.v0 > 2 ||
		m.kind == jsNumber && f == cyHostID && string(a.raw[m.v0:m.v1]) != "0" // HostId 0: no host
}

// str writes string field f as the member k in canonical form: a token
// without escapes is copied, one with escapes is decoded and encoded again
// as every other string in the document is ("http:\/\/x" becomes
// "http://x"). Under cynet the vendor's tokens stay as they were.
// It returns the offset in w.b where the value starts.
func (a *cyAlert) str(w *jw, k string, f int) int {
	w.key(k)
	start := len(w.b)
	m := &a.ms[a.idx[f]]
	tok := a.raw[m.v0:m.v1]
	if m.kind != jsString || !m.dirty && bytes.IndexByte(tok, '\\') < 0 {
		a.appendValue(w, a.idx[f])
		return start
	}
	// Decode into w.b's spare tail, encode after it, move the result down.
	w.b = appendUnescaped(w.b, tok[1:len(tok)-1])
	text := w.b[start:] // stays readable if the append below moves w.b
	mid := len(w.b)
	w.b = event.AppendJSONString(w.b, text)
	n := copy(w.b[start:], w.b[mid:])
	w.b = w.b[:start+n]
	return start
}

func (a *cyAlert) strOpt(w *jw, k string, f int) {
	if a.nonEmpty(f) {
		a.str(w, k, f)
	}
}

// content returns the body of field f when it is a string without escapes
// (IP addresses, timestamps), else nil.
func (a *cyAlert) content(f int) []byte {
	i := a.idx[f]
	if i < 0 {
		return nil
	}
	m := &a.ms[i]
	if m.kind != jsString {
		return nil
	}
	b := a.raw[m.v0+1 : m.v1-1]
	for _, c := range b {
		if c == '\\' {
			return nil
		}
	}
	return b
}

// int reads field f as an integer: a JSON integer or a string of one.
func (a *cyAlert) int(f int) (int64, bool) {
	i := a.idx[f]
	if i < 0 {
		return 0, false
	}
	m := &a.ms[i]
	switch m.kind {
	case jsNumber:
		return parseInt64(a.raw[m.v0:m.v1])
	case jsString:
		return parseInt64(a.content(f))
	}
	return 0, false
}

func (a *cyAlert) time(f int) (time.Time, bool) {
	return parseCynetTime(a.content(f))
}

// parseInt64 reads an optionally negative decimal integer.
func parseInt64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// cynetAlertIP converts the integer AlertIp to an IPv4 address, most
// significant byte first unless littleEndian. 0 means none; values that
// fit neither uint32 nor int32 (read as its two's complement) are none.
func cynetAlertIP(n int64, littleEndian bool) (uint32, bool) {
	if n == 0 || n < math.MinInt32 || n > math.MaxUint32 {
		return 0, false
	}
	v := uint32(n)
	if littleEndian {
		v = v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
	}
	return v, true
}

func appendIPv4(b []byte, v uint32) []byte {
	b = strconv.AppendUint(b, uint64(v>>24), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(v>>16&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(v>>8&0xff), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(v&0xff), 10)
}

// parseCynetTime reads the API's timestamps: yyyy-MM-ddTHH:mm:ss (or a
// space instead of T), an optional fraction of any length (precision kept
// to the nanosecond), and an optional zone (Z or ±hh:mm or ±hhmm); no zone
// means UTC (spec A4).
func parseCynetTime(b []byte) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoi(b[0:4])
	month, ok2 := atoi(b[5:7])
	day, ok3 := atoi(b[8:10])
	hour, ok4 := atoi(b[11:13])
	min, ok5 := atoi(b[14:16])
	sec, ok6 := atoi(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		i, scale := 1, 100000000
		for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	offset := 0
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case (len(rest) == 6 && rest[3] == ':' || len(rest) == 5) && (rest[0] == '+' || rest[0] == '-'):
		hh, okh := atoi(rest[1:3])
		mm, okm := atoi(rest[len(rest)-2:])
		if !okh || !okm || hh > 23 || mm > 59 {
			return time.Time{}, false
		}
		offset = (hh*60 + mm) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC)
	if t.Day() != day {
		return time.Time{}, false
	}
	return t.Add(-time.Duration(offset) * time.Second), true
}

// splitCynet checks that b is one JSON object and appends its members to
// ms, noting in idx where the mapped fields are. (A function rather than a
// method storing into *cyAlert, so that ms's array can stay on the caller's
// stack.)
func splitCynet(b []byte, ms []cyMember, idx *[cyFieldCount]int16) ([]cyMember, error) {
	for i := range idx {
		idx[i] = -1
	}
	if len(b) > math.MaxInt32 {
		return ms, fmt.Errorf("%w: %d bytes", ErrCynetInvalid, len(b))
	}
	i := skipWS(b, 0)
	if i == len(b) || b[i] != '{' {
		return ms, ErrCynetInvalid
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return ms, endCynet(b, i+1)
	}
	var seenKeys [4]uint64 // a 256-bit filter over key hashes: keys are compared only on a hit
	for {
		if i == len(b) || b[i] != '"' {
			return ms, syntaxErr(i)
		}
		k1, keyBad, ok := scanString(b, i)
		if !ok {
			return ms, syntaxErr(i)
		}
		m := cyMember{k0: int32(i), k1: int32(k1), keyBad: keyBad}
		i = skipWS(b, k1)
		if i == len(b) || b[i] != ':' {
			return ms, syntaxErr(i)
		}
		i = skipWS(b, i+1)
		end, kind, dirty, ok := scanValue(b, i, 3)
		if !ok {
			return ms, syntaxErr(i)
		}
		m.v0, m.v1, m.kind, m.dirty = int32(i), int32(end), kind, dirty

		key := b[m.k0+1 : m.k1-1]
		h := memberHash(key)
		if seenKeys[h>>6]&(1<<(h&63)) != 0 && hasKey(b, ms, key) {
			m.drop = true
		}
		seenKeys[h>>6] |= 1 << (h & 63)
		if !m.drop {
			if f := cynetField(string(key)); f >= 0 {
				idx[f] = int16(len(ms))
			}
		}
		if len(ms) == math.MaxInt16 {
			return ms, fmt.Errorf("%w: too many members", ErrCynetInvalid)
		}
		ms = append(ms, m)

		i = skipWS(b, end)
		if i == len(b) {
			return ms, syntaxErr(i)
		}
		if b[i] == '}' {
			return ms, endCynet(b, i+1)
		}
		if b[i] != ',' {
			return ms, syntaxErr(i)
		}
		i = skipWS(b, i+1)
	}
}

// memberHash hashes a member name to 0-255 from its length and three of
// its bytes (Cynet's names share prefixes and suffixes: Host*, *Utc).
func memberHash(k []byte) uint {
	if len(k) == 0 {
		return 0
	}
	h := uint(len(k))*131 + uint(k[0])*31 + uint(k[len(k)/2])*7 + uint(k[len(k)-1])
	return (h ^ h>>8) & 255
}

func hasKey(b []byte, ms []cyMember, key []byte) bool {
	for j := range ms {
		if string(b[ms[j].k0+1:ms[j].k1-1]) == string(key) {
			return true
		}
	}
	return false
}

// endCynet accepts only whitespace after the object.
func endCynet(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return fmt.Errorf("%w: data after the object at offset %d", ErrCynetInvalid, i)
	}
	return nil
}

func syntaxErr(i int) error { return fmt.Errorf("%w: syntax error at offset %d", ErrCynetInvalid, i) }
