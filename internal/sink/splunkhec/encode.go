package splunkhec

import (
	"net/url"
	"strconv"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// route is the Splunk metadata of the events of one (provider, dataset)
// pair, resolved from the config once and cached.
type route struct {
	index, sourcetype, source string // resolved values; index may be ""

	// prefix is the envelope from the metadata to the event (endpoint
	// event): "host":..,"source":..,"sourcetype":..,"index":..,
	// "fields":{..},"event":
	prefix []byte
	// query is the raw endpoint's "?index=..&sourcetype=..&source=..&host=.."
	query string
	// group numbers the distinct metadata tuples within one Write (raw).
	group int
}

// maxRoutes bounds the route cache: beyond it (a pathological number of
// provider/dataset pairs) routes are built per event, uncached.
const maxRoutes = 4096

// routeFor returns the route of a document whose raw (JSON-escaped)
// event.provider and event.dataset bodies are given.
func (s *Sink) routeFor(provider, dataset []byte) *route {
	key := append(s.keyBuf[:0], provider...)
	key = append(key, 0)
	key = append(key, dataset...)
	s.keyBuf = key
	if r, ok := s.routes[string(key)]; ok { // no allocation for the lookup
		return r
	}
	r := s.newRoute(provider, dataset)
	if len(s.routes) < maxRoutes {
		s.routes[string(key)] = r
	}
	return r
}

func (s *Sink) newRoute(providerRaw, datasetRaw []byte) *route {
	provider := string(event.Unquote(nil, providerRaw))
	dataset := string(event.Unquote(nil, datasetRaw))
	o := s.cfg.Sources[provider]
	r := &route{index: first(o.Index, s.cfg.Index), source: first(o.Source, s.cfg.Source),
		sourcetype: first(o.Sourcetype, s.cfg.Sourcetype)}
	if r.source == "" {
		r.source = "alertrelay"
		if provider != "" {
			r.source += ":" + provider
		}
	}
	if r.sourcetype == "" {
		r.sourcetype = "alertrelay"
		if dataset != "" {
			r.sourcetype += ":" + dataset
		}
	}

	var p []byte
	if s.cfg.Host != "" {
		p = append(p, `"host":`...)
		p = event.AppendJSONStr(p, s.cfg.Host)
		p = append(p, ',')
	}
	p = append(p, `"source":`...)
	p = event.AppendJSONStr(p, r.source)
	p = append(p, `,"sourcetype":`...)
	p = event.AppendJSONStr(p, r.sourcetype)
	if r.index != "" {
		p = append(p, `,"index":`...)
		p = event.AppendJSONStr(p, r.index)
	}
	if len(s.cfg.Fields) > 0 {
		p = append(p, `,"fields":{`...)
		for i, k := range sortedKeys(s.cfg.Fields) {
			if i > 0 {
				p = append(p, ',')
			}
			p = event.AppendJSONStr(p, k)
			p = append(p, ':')
			p = event.AppendJSONStr(p, s.cfg.Fields[k])
		}
		p = append(p, '}')
	}
	p = append(p, `,"event":`...)
	r.prefix = p

	q := url.Values{}
	if r.index != "" {
		q.Set("index", r.index)
	}
	q.Set("sourcetype", r.sourcetype)
	q.Set("source", r.source)
	if s.cfg.Host != "" {
		q.Set("host", s.cfg.Host)
	}
	r.query = "?" + q.Encode()
	return r
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// appendEnvelope appends the HEC event envelope of doc:
// {"time":<epoch.ms>,<r.prefix><doc>}. time is left out when the document
// has no usable @timestamp (HEC then uses the time of receipt).
func appendEnvelope(dst []byte, r *route, ts, doc []byte) []byte {
	dst = append(dst, `{"time":`...)
	if d, ok := AppendEpoch(dst, ts); ok {
		dst = append(d, ',')
	} else {
		dst = dst[:len(dst)-len(`"time":`)]
	}
	dst = append(dst, r.prefix...)
	dst = append(dst, doc...)
	return append(dst, '}', '\n')
}

// appendRaw appends the raw-endpoint line of a document: the text of
// event.original when the document has one, else the document itself,
// followed by '\n'. CR and LF inside the original become spaces, so that
// HEC's line breaking sees one event. A blank original (which HEC would
// drop without a word) is replaced by the document.
func appendRaw(dst []byte, original, doc []byte) []byte {
	n := len(dst)
	dst = event.Unquote(dst, original)
	blank := true
	for i := n; i < len(dst); i++ {
		switch dst[i] {
		case '\n', '\r':
			dst[i] = ' '
		case ' ', '\t':
		default:
			blank = false
		}
	}
	if blank {
		dst = append(dst[:n], doc...)
	}
	return append(dst, '\n')
}

// AppendEpoch appends the time of ts, an RFC 3339 timestamp body as
// event.Meta holds it (2025-03-01T08:01:05.123Z), as HEC wants it: epoch
// seconds with a fraction (1740816065.123). The usual form, UTC with
// milliseconds, is converted without allocating; other RFC 3339 forms go
// through time.Parse. It returns dst unchanged and false when ts is nil,
// not RFC 3339, or before 1970.
func AppendEpoch(dst, ts []byte) ([]byte, bool) {
	if sec, ok := fastEpoch(ts); ok {
		dst = strconv.AppendInt(dst, sec, 10)
		return append(dst, '.', ts[20], ts[21], ts[22]), true
	}
	if len(ts) == 0 || len(ts) > 64 {
		return dst, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil || t.Unix() < 0 {
		return dst, false
	}
	dst = strconv.AppendInt(dst, t.Unix(), 10)
	ms := t.Nanosecond() / int(time.Millisecond)
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)), true
}

// fastEpoch converts "YYYY-MM-DDThh:mm:ss.mmmZ" to epoch seconds.
func fastEpoch(ts []byte) (int64, bool) {
	if len(ts) != 24 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' ||
		ts[16] != ':' || ts[19] != '.' || ts[23] != 'Z' {
		return 0, false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22} {
		if ts[i] < '0' || ts[i] > '9' {
			return 0, false
		}
	}
	d2 := func(i int) int { return int(ts[i]-'0')*10 + int(ts[i+1]-'0') }
	year := d2(0)*100 + d2(2)
	month, day := d2(5), d2(8)
	hour, minute, sec := d2(11), d2(14), d2(17)
	if year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false // leap seconds and odd values take the slow path
	}
	days := daysFromCivil(year, month, day)
	return days*86400 + int64(hour*3600+minute*60+sec), true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d (Howard
// Hinnant's algorithm, proleptic Gregorian calendar).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y >= 1969 here, so no negative division
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}
