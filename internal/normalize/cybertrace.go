// Package normalize turns parsed vendor events into alertrelay's canonical
// JSON document: ECS-style top-level fields plus the vendor's own fields,
// untouched, under the vendor's name. The mapping is written up in
// docs/events.md and pinned by golden files in testdata/.
//
// Every function here is pure apart from drawing an event ID, and appends to
// a caller-owned buffer, so encoding allocates nothing.
package normalize

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// DefaultTimeLayouts are tried, in order, on the text before the first key
// of a CyberTrace line (the %Date% / %RE_DATE% slot, whose format the
// vendor does not document).
var DefaultTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05",
	"Jan _2 15:04:05",
	"Jan 02 15:04:05",
	"02.01.2006 15:04:05",
	"02.01.2006 15:04",
}

// Options control the CyberTrace mapping.
type Options struct {
	// Source is the name of the configured source: event.provider.
	Source string
	// IncludeOriginal adds the raw line as event.original.
	IncludeOriginal bool
	// Location is the zone of times without one (CyberTrace dates, feed
	// first_seen/last_seen). Nil means UTC.
	Location *time.Location
	// TimeLayouts for the date slot; nil means DefaultTimeLayouts.
	TimeLayouts []string
}

// CyberTrace encodes CyberTrace events. It is immutable and safe for
// concurrent use.
type CyberTrace struct {
	opt Options
	ids *event.IDGen
	// eventFixed[kind] is the constant run of event.* members that follows
	// event.id, encoded once.
	eventFixed [event.KindLookupFinished + 1][]byte
}

// NewCyberTrace returns an encoder that draws event IDs from ids.
func NewCyberTrace(opt Options, ids *event.IDGen) *CyberTrace {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.TimeLayouts == nil {
		opt.TimeLayouts = DefaultTimeLayouts
	}
	n := &CyberTrace{opt: opt, ids: ids}
	for k := range n.eventFixed {
		kind := event.Kind(k)
		b := []byte(`,"kind":"event","category":["host"],"type":["info"]`)
		if kind == event.KindDetection {
			b = []byte(`,"kind":"alert","category":["threat"],"type":["indicator"]`)
		}
		b = append(b, `,"dataset":`...)
		b = event.AppendJSONStr(b, kind.String())
		b = append(b, `,"module":"cybertrace","provider":`...)
		b = event.AppendJSONStr(b, opt.Source)
		n.eventFixed[k] = b
	}
	return n
}

// cefKeys maps the CyberTrace ArcSight extension keys onto the names of the
// key=value template, so both wire formats produce the same document.
var cefKeys = map[string]string{
	"reason": "category", "dst": "ip", "src": "src", "fileHash": "md5",
	"request": "url", "suser": "usrName", "externalId": "externalId",
	"sourceServiceName": "sourceServiceName", "sproc": "sproc",
}

// cefLabelKeys maps csN/cnN labels onto template names.
var cefLabelKeys = map[string]string{"MatchedIndicator": "matchedIndicator", "Confidence": "confidence"}

// view is what the mapping needs from an event, resolved once.
type view struct {
	category, matched, url, src, ip, md5, sha1, sha256, user, confidence, alert []byte
	firstSeen, lastSeen                                                         []byte
}

func (v *view) set(key []byte, val []byte) {
	var p *[]byte
	switch string(key) {
	case "category":
		p = &v.category
	case "matchedIndicator":
		p = &v.matched
	case "url":
		p = &v.url
	case "src":
		p = &v.src
	case "ip":
		p = &v.ip
	case "md5":
		p = &v.md5
	case "sha1":
		p = &v.sha1
	case "sha256":
		p = &v.sha256
	case "usrName":
		p = &v.user
	case "confidence":
		p = &v.confidence
	case "alert":
		p = &v.alert
	default:
		return
	}
	if *p == nil { // first occurrence wins (spec C1)
		*p = val
	}
}

// resolve reads the template fields (or their CEF equivalents) of ev.
func resolve(ev *event.Event) view {
	var v view
	for i := range ev.Fields {
		f := &ev.Fields[i]
		switch f.Group {
		case event.GroupTemplate:
			v.set(f.Key, f.Value)
		case event.GroupExtension:
			if k, ok := cefKeys[string(f.Key)]; ok {
				v.set([]byte(k), f.Value)
			} else if k, ok := cefLabelKeys[string(cefLabel(ev, f.Key))]; ok {
				v.set([]byte(k), f.Value)
			}
		case event.GroupContext:
			switch string(f.Key) {
			case "first_seen":
				if v.firstSeen == nil {
					v.firstSeen = f.Value
				}
			case "last_seen":
				if v.lastSeen == nil {
					v.lastSeen = f.Value
				}
			}
		}
	}
	return v
}

// cefLabel returns the value of "<key>Label" for a CEF custom field such as
// cs5 or cn3, or nil.
func cefLabel(ev *event.Event, key []byte) []byte {
	if len(key) != 3 || (key[0] != 'c') || (key[1] != 's' && key[1] != 'n') {
		return nil
	}
	for i := range ev.Fields {
		f := &ev.Fields[i]
		if f.Group == event.GroupExtension && len(f.Key) == 8 && bytes.HasPrefix(f.Key, key) && string(f.Key[3:]) == "Label" {
			return f.Value
		}
	}
	return nil
}

// Append appends ev's canonical JSON document to dst.
func (n *CyberTrace) Append(dst []byte, ev *event.Event) []byte {
	v := resolve(ev)
	if ev.Kind != event.KindDetection && v.alert == nil {
		v.alert = v.category // CEF alert channel: the alert name is in reason
	}
	w := jw{b: dst}
	w.begin()
	ts := ev.Received
	if t, ok := n.parseTime(ev.Prefix, ev.Received); ok {
		ts = t
	}
	w.time("@timestamp", ts)

	w.open("event")
	w.key("id")
	w.b = append(w.b, '"')
	w.b = n.ids.Append(w.b)
	w.b = append(w.b, '"')
	w.b = append(w.b, n.eventFixed[ev.Kind]...) // kind, category, type, dataset, module, provider
	if ev.Kind != event.KindDetection {
		w.strOpt("action", v.alert)
	}
	w.time("created", ev.Received)
	if n.opt.IncludeOriginal {
		w.str("original", ev.Raw)
	}
	w.close()
	w.b = append(w.b, `,"observer":{"vendor":"Kaspersky","product":"CyberTrace"}`...)

	if ev.Kind == event.KindDetection {
		n.appendThreat(&w, &v)
		if ip, ok := validIP(v.src); ok {
			w.open("source")
			w.str("ip", ip)
			w.close()
		}
		if len(v.user) > 0 {
			w.open("user")
			w.str("name", v.user)
			w.close()
		}
		if len(v.url) > 0 {
			w.open("url")
			w.str("full", v.url)
			w.close()
		}
		if len(v.md5)+len(v.sha1)+len(v.sha256) > 0 {
			w.open("file")
			appendHashes(&w, &v)
			w.close()
		}
	}

	w.open("cybertrace")
	if ev.Format == event.FormatCEF {
		appendCEF(&w, ev, &v)
	} else {
		appendGroup(&w, ev, event.GroupTemplate)
	}
	if hasGroup(ev, event.GroupContext) {
		w.open("context")
		appendGroup(&w, ev, event.GroupContext)
		w.close()
	}
	w.close()
	w.close()
	return w.b
}

// appendThreat writes threat.*: the feed that matched and the indicator
// itself (the feed's value, which for URL feeds is a mask such as
// "example.com/*"). What was observed in the event goes to the top-level
// url/file/source/user fields instead, so nothing is written twice.
func (n *CyberTrace) appendThreat(w *jw, v *view) {
	w.open("threat")
	if len(v.category) > 0 {
		w.open("feed")
		w.str("name", v.category)
		w.close()
	}
	w.open("indicator")
	typ := indicatorType(v)
	w.lit("type", typ)
	w.strOpt("name", v.matched)
	w.lit("provider", "Kaspersky CyberTrace")
	if c := confidenceName(v.confidence); c != "" {
		w.lit("confidence", c)
	}
	if len(v.matched) > 0 {
		switch typ {
		case "ipv4-addr", "ipv6-addr":
			if ip, ok := validIP(v.matched); ok {
				w.str("ip", ip)
			}
		case "url":
			w.open("url")
			w.str("original", v.matched)
			w.close()
		case "file":
			if alg := hashName(len(v.matched)); alg != "" {
				w.open("file")
				w.open("hash")
				w.str(alg, v.matched)
				w.close()
				w.close()
			}
		}
	}
	if t, ok := parseFeedTime(v.firstSeen, n.opt.Location); ok {
		w.time("first_seen", t)
	}
	if t, ok := parseFeedTime(v.lastSeen, n.opt.Location); ok {
		w.time("last_seen", t)
	}
	w.close()
	w.close()
}

// hashName names a hex digest by its length.
func hashName(n int) string {
	switch n {
	case 32:
		return "md5"
	case 40:
		return "sha1"
	case 64:
		return "sha256"
	}
	return ""
}

func appendHashes(w *jw, v *view) {
	w.open("hash")
	w.strOpt("md5", v.md5)
	w.strOpt("sha1", v.sha1)
	w.strOpt("sha256", v.sha256)
	w.close()
}

// indicatorType picks the ECS threat.indicator.type (STIX 2.1 names) from
// the category's naming convention (KL_*_URL, KL_*_Hash_*, KL_*_IP,
// KL_IP_Reputation), falling back to what was observed.
func indicatorType(v *view) string {
	c := v.category
	switch {
	case bytes.HasSuffix(c, []byte("_URL")):
		return "url"
	case bytes.Contains(c, []byte("_Hash")):
		return "file"
	case bytes.HasSuffix(c, []byte("_IP")) || bytes.HasSuffix(c, []byte("IP_Reputation")):
		if bytes.IndexByte(v.matched, ':') >= 0 {
			return "ipv6-addr"
		}
		return "ipv4-addr"
	case len(v.url) > 0:
		return "url"
	case len(v.md5)+len(v.sha1)+len(v.sha256) > 0:
		return "file"
	case len(v.ip) > 0:
		if bytes.IndexByte(v.ip, ':') >= 0 {
			return "ipv6-addr"
		}
		return "ipv4-addr"
	}
	return "unknown"
}

// confidenceName maps CyberTrace's 0-100 confidence onto ECS's keyword scale.
func confidenceName(c []byte) string {
	n, ok := atoi(c)
	switch {
	case !ok:
		return ""
	case n >= 75:
		return "High"
	case n >= 50:
		return "Medium"
	case n > 0:
		return "Low"
	}
	return "None"
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// validIP returns b when it is a literal IP address; ECS ip fields reject
// anything else at index time. Dotted IPv4, the common case, is checked
// without allocating.
func validIP(b []byte) ([]byte, bool) {
	if len(b) == 0 || len(b) > 45 {
		return nil, false
	}
	if bytes.IndexByte(b, ':') < 0 {
		return b, isIPv4(b)
	}
	if _, err := netip.ParseAddr(string(b)); err != nil {
		return nil, false
	}
	return b, true
}

// isIPv4 reports whether b is four decimal octets 0-255 without leading
// zeros, as netip.ParseAddr accepts them.
func isIPv4(b []byte) bool {
	parts, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n > 255 || (digits > 1 && b[i-digits] == '0') {
				return false
			}
			parts++
			n, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits == 3 {
			return false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return parts == 4
}

// appendGroup writes the fields of group g as members; a key that occurs
// more than once in the group becomes an array of its values, in order.
func appendGroup(w *jw, ev *event.Event, g event.Group) {
	fs := ev.Fields
	// A 64-bit filter over the group's keys: most lines have no duplicate
	// key in a group, and then no key is compared with another at all.
	var seen, collide uint64
	for i := range fs {
		if fs[i].Group == g {
			bit := keyBit(fs[i].Key)
			collide |= seen & bit
			seen |= bit
		}
	}
	for i := range fs {
		f := &fs[i]
		if f.Group != g {
			continue
		}
		if collide&keyBit(f.Key) == 0 {
			w.dynStr(f.Key, f.Value)
			continue
		}
		if seenBefore(fs[:i], g, f.Key) {
			continue
		}
		dups := 0
		for j := i + 1; j < len(fs); j++ {
			if fs[j].Group == g && bytes.Equal(fs[j].Key, f.Key) {
				dups++
			}
		}
		if dups == 0 {
			w.dynStr(f.Key, f.Value)
			continue
		}
		w.sep()
		w.b = appendKey(w.b, f.Key)
		w.b = append(w.b, ':', '[')
		w.b = event.AppendJSONString(w.b, f.Value)
		for j := i + 1; j < len(fs); j++ {
			if fs[j].Group == g && bytes.Equal(fs[j].Key, f.Key) {
				w.b = append(w.b, ',')
				w.b = event.AppendJSONString(w.b, fs[j].Value)
			}
		}
		w.b = append(w.b, ']')
	}
}

// keyBit hashes a key to one of 64 bits.
func keyBit(k []byte) uint64 {
	if len(k) == 0 {
		return 1
	}
	h := uint(len(k))*31 + uint(k[0])*7 + uint(k[len(k)-1])
	return 1 << (h & 63)
}

func seenBefore(fs []event.Field, g event.Group, key []byte) bool {
	for i := range fs {
		if fs[i].Group == g && len(fs[i].Key) == len(key) && bytes.Equal(fs[i].Key, key) {
			return true
		}
	}
	return false
}

func hasGroup(ev *event.Event, g event.Group) bool {
	for i := range ev.Fields {
		if ev.Fields[i].Group == g {
			return true
		}
	}
	return false
}

// appendCEF writes the template-equivalent names resolved from a CEF line,
// then the CEF header and extensions verbatim under "cef".
func appendCEF(w *jw, ev *event.Event, v *view) {
	w.strOpt("category", v.category)
	w.strOpt("matchedIndicator", v.matched)
	w.strOpt("url", v.url)
	w.strOpt("src", v.src)
	w.strOpt("ip", v.ip)
	w.strOpt("md5", v.md5)
	w.strOpt("usrName", v.user)
	w.strOpt("confidence", v.confidence)
	w.strOpt("alert", v.alert)
	w.open("cef")
	appendGroup(w, ev, event.GroupHeader)
	appendGroup(w, ev, event.GroupExtension)
	w.close()
}

// parseTime reads the date slot. Layouts without a year take the year of
// the received time (the previous year if that puts the event more than a
// day in the future, as around New Year).
func (n *CyberTrace) parseTime(p []byte, received time.Time) (time.Time, bool) {
	if len(p) == 0 {
		return time.Time{}, false
	}
	for _, layout := range n.opt.TimeLayouts {
		// Cheap shape checks first: time.Parse allocates on failure.
		if layout == time.RFC3339Nano {
			if len(p) < 20 || p[4] != '-' || p[10] != 'T' {
				continue
			}
		} else if len(layout) != len(p) {
			continue
		}
		t, err := time.ParseInLocation(layout, string(p), n.opt.Location)
		if err != nil {
			continue
		}
		if t.Year() == 0 {
			r := received.In(n.opt.Location)
			t = t.AddDate(r.Year(), 0, 0)
			if t.Sub(r) > 24*time.Hour {
				t = t.AddDate(-1, 0, 0)
			}
		}
		return t, true
	}
	return time.Time{}, false
}

// parseFeedTime reads feed record dates, dd.MM.yyyy HH:mm or dd.MM.yyyy,
// by hand: they occur twice in most detections and time.Parse is slow and
// allocates on failure.
func parseFeedTime(b []byte, loc *time.Location) (time.Time, bool) {
	if (len(b) != 16 && len(b) != 10) || b[2] != '.' || b[5] != '.' {
		return time.Time{}, false
	}
	day, ok1 := atoi(b[0:2])
	month, ok2 := atoi(b[3:5])
	year, ok3 := atoi(b[6:10])
	hour, min := 0, 0
	ok4, ok5 := true, true
	if len(b) == 16 {
		if b[10] != ' ' || b[13] != ':' {
			return time.Time{}, false
		}
		hour, ok4 = atoi(b[11:13])
		min, ok5 = atoi(b[14:16])
	}
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || day < 1 || day > 31 || month < 1 || month > 12 || hour > 23 || min > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, min, 0, 0, loc)
	if t.Day() != day { // 31.02. normalised into March
		return time.Time{}, false
	}
	return t, true
}
