package cybertrace

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// DateDash is the GenOptions.DateFormat value that renders the date slot as
// a literal "-", as CyberTrace does when %RE_DATE% captured nothing (this is
// what the vendor's tutorial output shows).
const DateDash = "-"

// Default line-kind weights (detections, service alerts, finished events).
const (
	DefaultDetectionWeight = 90
	DefaultAlertWeight     = 7
	DefaultFinishedWeight  = 3
)

// defaultStart is the synthetic clock's start when GenOptions.Start is zero.
var defaultStart = time.Date(2025, time.March, 1, 8, 0, 0, 0, time.UTC)

// GenOptions configures a Generator. The zero value is usable: default mix,
// key=value layout, no date slot.
type GenOptions struct {
	// Relative weights of detection events, service alerts
	// (alert=KL_ALERT_*) and lookup-finished events
	// (alert=LookupFinished ...). Negative weights count as zero; if all
	// three are zero the defaults 90/7/3 apply.
	DetectionWeight int
	AlertWeight     int
	FinishedWeight  int

	// DateFormat controls the date slot that precedes detections and
	// service alerts: "" means no date slot (the line starts with
	// "category=" or "alert="), DateDash ("-") writes "- " as in the
	// vendor's tutorial output, anything else is a Go time layout such as
	// "Jan 02 15:04:05" followed by one space. Finished events never carry
	// a date slot. CEF detections never carry one (they start with "CEF:").
	DateFormat string

	// CEF renders detections in the ArcSight CEF layout
	// (vendor-protocols.md B9) instead of key=value. Alerts and finished
	// events keep the key=value layout.
	CEF bool

	// Start is the first timestamp of the synthetic clock used for the date
	// slot (default 2025-03-01T08:00:00Z). The clock advances a random
	// 0-1.5 s per line, so output stays deterministic for a seed.
	Start time.Time

	// Now, if set, replaces the synthetic clock (e.g. time.Now). Output is
	// then only deterministic if Now is.
	Now func() time.Time
}

// DefaultGenOptions returns the default mix with the "-" date slot, which
// reproduces the layout of the vendor's sample output.
func DefaultGenOptions() GenOptions {
	return GenOptions{
		DetectionWeight: DefaultDetectionWeight,
		AlertWeight:     DefaultAlertWeight,
		FinishedWeight:  DefaultFinishedWeight,
		DateFormat:      DateDash,
	}
}

// Generator produces CyberTrace output lines. It is deterministic for a
// given seed and options (unless GenOptions.Now is non-deterministic) and
// allocation-free in steady state. A Generator is not safe for concurrent
// use.
type Generator struct {
	r     *rand.Rand
	opts  GenOptions
	wDet  int
	wAll  int
	clock time.Time
	extID int

	// Scratch state of the detection being built. Values live in vals and
	// are referenced by offsets so vals may grow.
	vals   []byte
	fields []field
	slots  [numSlots]span
	cat    *category
	match  span
	mask   span
	domain span
}

// span is a value stored in Generator.vals; the zero span is empty.
type span struct{ lo, hi int32 }

// field is one record-context field.
type field struct {
	name string
	v    span
}

// Template slots filled from regexes over the original event (B5).
const (
	slotURL = iota
	slotSrc
	slotIP
	slotMD5
	slotSHA1
	slotSHA256
	slotUser
	slotSvc
	slotProc
	numSlots
)

var (
	catCum   []int // cumulative category weights
	alertCum []int // cumulative alert weights
)

func init() {
	sum := 0
	for _, c := range categories {
		sum += c.weight
		catCum = append(catCum, sum)
	}
	sum = 0
	for _, w := range alertWeights {
		sum += w
		alertCum = append(alertCum, sum)
	}
}

// NewGenerator returns a Generator seeded with seed (PCG source).
func NewGenerator(seed int64, opts GenOptions) *Generator {
	s := uint64(seed)
	g := &Generator{
		r:    rand.New(rand.NewPCG(s, s^0x9E3779B97F4A7C15)),
		opts: opts,
		vals: make([]byte, 0, 1024),
	}
	d, a, f := max(opts.DetectionWeight, 0), max(opts.AlertWeight, 0), max(opts.FinishedWeight, 0)
	if d+a+f == 0 {
		d, a, f = DefaultDetectionWeight, DefaultAlertWeight, DefaultFinishedWeight
	}
	g.wDet, g.wAll = d, d+a+f
	g.opts.DetectionWeight, g.opts.AlertWeight, g.opts.FinishedWeight = d, a, f
	g.clock = opts.Start
	if g.clock.IsZero() {
		g.clock = defaultStart
	}
	g.extID = 1000 + g.r.IntN(1_000_000)
	return g
}

// Next appends one output line, without its trailing LF, to dst and returns
// the extended slice. The line never contains LF or CR.
func (g *Generator) Next(dst []byte) []byte {
	g.clock = g.clock.Add(time.Duration(g.r.IntN(1500)) * time.Millisecond)
	k := g.r.IntN(g.wAll)
	switch {
	case k < g.wDet:
		g.buildDetection()
		if g.opts.CEF {
			return g.appendCEF(dst)
		}
		return g.appendKV(dst)
	case k < g.wAll-g.opts.FinishedWeight:
		return g.appendAlert(dst)
	default:
		return g.appendFinished(dst)
	}
}

// ---- value helpers ----

func (g *Generator) mark() int32 { return int32(len(g.vals)) }

func (g *Generator) end(lo int32) span { return span{lo, int32(len(g.vals))} }

func (g *Generator) str(s string) span {
	lo := g.mark()
	g.vals = append(g.vals, s...)
	return g.end(lo)
}

func (g *Generator) val(s span) []byte { return g.vals[s.lo:s.hi] }

func (g *Generator) addField(name string, v span) {
	g.fields = append(g.fields, field{name, v})
}

func (g *Generator) addStr(name, v string) { g.addField(name, g.str(v)) }

func (g *Generator) addInt(name string, n int) {
	lo := g.mark()
	g.vals = strconv.AppendInt(g.vals, int64(n), 10)
	g.addField(name, g.end(lo))
}

func (g *Generator) chance(pct int) bool { return g.r.IntN(100) < pct }

func pick[T any](g *Generator, s []T) T { return s[g.r.IntN(len(s))] }

func (g *Generator) tenAddr() span {
	lo := g.mark()
	g.vals = append(g.vals, "10."...)
	g.vals = strconv.AppendInt(g.vals, int64(g.r.IntN(256)), 10)
	g.vals = append(g.vals, '.')
	g.vals = strconv.AppendInt(g.vals, int64(g.r.IntN(256)), 10)
	g.vals = append(g.vals, '.')
	g.vals = strconv.AppendInt(g.vals, int64(1+g.r.IntN(254)), 10)
	return g.end(lo)
}

const hexUpper = "0123456789ABCDEF"

func (g *Generator) hexSpan(n int) span {
	lo := g.mark()
	var x uint64
	for i := range n {
		if i%16 == 0 {
			x = g.r.Uint64()
		}
		g.vals = append(g.vals, hexUpper[x&15])
		x >>= 4
	}
	return g.end(lo)
}

// lowerCopy stores a lower-cased copy of s (observed hashes are sometimes
// lower case; feeds are upper case).
func (g *Generator) lowerCopy(s span) span {
	lo := g.mark()
	for i := s.lo; i < s.hi; i++ {
		c := g.vals[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		g.vals = append(g.vals, c)
	}
	return g.end(lo)
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

// appendFeedDate renders t as dd.MM.yyyy HH:mm (B8).
func appendFeedDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	h, mi, _ := t.Clock()
	b = append2(b, d)
	b = append(b, '.')
	b = append2(b, int(m))
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(y), 10)
	b = append(b, ' ')
	b = append2(b, h)
	b = append(b, ':')
	return append2(b, mi)
}

// Range of synthetic first_seen/last_seen dates.
var (
	feedEpoch  = time.Date(2013, time.January, 1, 0, 0, 0, 0, time.UTC).Unix()
	feedLatest = time.Date(2025, time.February, 28, 23, 59, 0, 0, time.UTC).Unix()
)

// addSeen adds random first_seen and last_seen fields.
func (g *Generator) addSeen() {
	first := feedEpoch + int64(g.r.IntN(12*365*24*60))*60
	last := first + int64(g.r.IntN(int(min(3*365*24*60, (feedLatest-first)/60))+1))*60
	lo := g.mark()
	g.vals = appendFeedDate(g.vals, time.Unix(first, 0).UTC())
	g.addField("first_seen", g.end(lo))
	lo = g.mark()
	g.vals = appendFeedDate(g.vals, time.Unix(last, 0).UTC())
	g.addField("last_seen", g.end(lo))
}

// synthHost stores a random host name under a reserved TLD.
func (g *Generator) synthHost() span {
	lo := g.mark()
	g.vals = append(g.vals, pick(g, hostWords[:])...)
	g.vals = strconv.AppendInt(g.vals, int64(g.r.IntN(100)), 10)
	g.vals = append(g.vals, '.')
	g.vals = append(g.vals, pick(g, hostTLDs[:])...)
	return g.end(lo)
}

// ---- detection ----

func (g *Generator) pickCategory() *category {
	n := g.r.IntN(catCum[len(catCum)-1])
	for i, c := range catCum {
		if n < c {
			return categories[i]
		}
	}
	return categories[len(categories)-1]
}

func (g *Generator) buildDetection() {
	g.vals = g.vals[:0]
	g.fields = g.fields[:0]
	g.slots = [numSlots]span{}
	g.match, g.mask, g.domain = span{}, span{}, span{}
	c := g.pickCategory()
	g.cat = c
	var fx *fixture
	if c.synthetic == 0 || !g.chance(c.synthetic) {
		fx = c.fixtures[g.r.IntN(len(c.fixtures))]
	}
	switch c.kind {
	case kindURL, kindPhish:
		g.buildURL(c, fx)
	case kindIP:
		g.buildIP(fx)
	case kindHash:
		g.buildHash(c, fx)
	}
	if g.chance(65) {
		g.slots[slotSrc] = g.tenAddr()
	}
	if g.chance(55) {
		g.slots[slotUser] = g.str(pick(g, userNames[:]))
	}
	if s := pick(g, sources[:]); s[0] != "-" {
		g.slots[slotSvc] = g.str(s[0])
		g.slots[slotProc] = g.str(s[1])
	}
	// Context fields are sorted by name, as in the vendor's sample output.
	for i := 1; i < len(g.fields); i++ {
		for j := i; j > 0 && g.fields[j].name < g.fields[j-1].name; j-- {
			g.fields[j], g.fields[j-1] = g.fields[j-1], g.fields[j]
		}
	}
}

func (g *Generator) buildURL(c *category, fx *fixture) {
	// Observed URL (RE_URL) and the feed mask that matched it.
	lo := g.mark()
	if fx != nil {
		g.vals = append(g.vals, fx.url...)
	} else {
		if g.chance(30) {
			g.vals = append(g.vals, "https://"...)
		} else {
			g.vals = append(g.vals, "http://"...)
		}
		g.domain = g.synthHost() // a sub-span of the URL
	}
	hasPath := fx != nil && fx.mask[len(fx.mask)-1] != '*'
	if !hasPath && g.chance(55) {
		g.vals = append(g.vals, pick(g, urlSuffixes[:])...)
	}
	g.slots[slotURL] = g.end(lo)
	if fx != nil {
		g.domain = g.str(fx.domain)
		g.mask = g.str(fx.mask)
	} else {
		lo := g.mark()
		g.vals = append(g.vals, g.vals[g.domain.lo:g.domain.hi]...)
		g.vals = append(g.vals, "/*"...)
		g.mask = g.end(lo)
	}
	g.match = g.mask
	g.addField("mask", g.mask)
	if g.chance(20) {
		g.slots[slotIP] = g.tenAddr()
	}

	switch {
	case fx != nil:
		for _, f := range fx.fields {
			g.addStr(f.name, f.value)
		}
	case c.kind == kindPhish:
		g.addStr("attack_type", pick(g, attackTypes[:]))
		g.addSeen()
		g.addInt("id", 1_000_000+g.r.IntN(9_000_000))
		g.addStr("industry", pick(g, industries[:]))
		g.addInt("popularity", 1+g.r.IntN(5))
		g.addStr("stolen_data_type", pick(g, stolenData[:]))
		g.addStr("targeted_organization", pick(g, orgs[:]))
		g.addStr("type", "phishing")
	default:
		g.addStr("category", pick(g, urlCats[:]))
		g.addSeen()
		g.addInt("popularity", 1+g.r.IntN(5))
		g.addStr("threat", pick(g, urlThreats[:]))
	}
	if c.extraInfo {
		// How CyberTrace flattens nested record objects (geo, whois, IP) is
		// undocumented; these dotted/upper-case keys exercise parsers.
		if g.chance(30) {
			lo := g.mark()
			g.vals = append(g.vals, "203.0.113."...)
			g.vals = strconv.AppendInt(g.vals, int64(1+g.r.IntN(254)), 10)
			g.addField("IP", g.end(lo))
			g.addStr("geo", pick(g, geos[:]))
		}
		if g.chance(15) {
			g.addStr("whois.org", pick(g, whoisOrgs[:]))
			lo := g.mark()
			g.vals = append2(g.vals, 1+g.r.IntN(28))
			g.vals = append(g.vals, '.')
			g.vals = append2(g.vals, 1+g.r.IntN(12))
			g.vals = append(g.vals, '.')
			g.vals = strconv.AppendInt(g.vals, int64(2005+g.r.IntN(20)), 10)
			g.addField("whois.created", g.end(lo))
		}
	}
}

func (g *Generator) buildIP(fx *fixture) {
	var ip span
	if fx != nil {
		ip = g.str(fx.ip)
		for _, f := range fx.fields {
			g.addStr(f.name, f.value)
		}
	} else {
		lo := g.mark()
		if g.chance(50) {
			g.vals = append(g.vals, "198.51.100."...)
		} else {
			g.vals = append(g.vals, "203.0.113."...)
		}
		g.vals = strconv.AppendInt(g.vals, int64(1+g.r.IntN(254)), 10)
		ip = g.end(lo)
		g.addStr("category", pick(g, ipCats[:]))
		g.addSeen()
		g.addStr("ip_geo", pick(g, geos[:]))
		g.addInt("popularity", 1+g.r.IntN(5))
		g.addInt("threat_score", 50+g.r.IntN(51))
	}
	g.addField("ip", ip)
	g.match = ip
	g.slots[slotIP] = ip
}

func (g *Generator) buildHash(c *category, fx *fixture) {
	var h [3]span
	if fx != nil {
		h[0], h[1], h[2] = g.str(fx.md5), g.str(fx.sha1), g.str(fx.sha256)
		for _, f := range fx.fields {
			g.addStr(f.name, f.value)
		}
	} else {
		h[0], h[1], h[2] = g.hexSpan(32), g.hexSpan(40), g.hexSpan(64)
		g.addInt("file_size", 512+g.r.IntN(4<<20))
		g.addSeen()
		g.addInt("popularity", 1+g.r.IntN(5))
		g.addStr("threat", pick(g, hashThreats[:]))
	}
	g.addField("MD5", h[0])
	g.addField("SHA1", h[1])
	g.addField("SHA256", h[2])
	if c.urlField && g.chance(30) {
		// A "url" record field collides with the template's url key.
		lo := g.mark()
		g.vals = append(g.vals, "http://"...)
		g.vals = append(g.vals, pick(g, hostWords[:])...)
		g.vals = strconv.AppendInt(g.vals, int64(g.r.IntN(100)), 10)
		g.vals = append(g.vals, ".test/download/setup.exe"...)
		g.addField("url", g.end(lo))
	}
	g.match = h[c.hash]
	obs := h[c.hash]
	if g.chance(20) {
		obs = g.lowerCopy(obs)
	}
	g.slots[slotMD5+int(c.hash)] = obs
}

// ---- rendering ----

func (g *Generator) appendDate(dst []byte) []byte {
	switch f := g.opts.DateFormat; f {
	case "":
		return dst
	case DateDash:
		return append(dst, "- "...)
	default:
		t := g.clock
		if g.opts.Now != nil {
			t = g.opts.Now()
		}
		n := len(dst)
		dst = t.AppendFormat(dst, f)
		for i := n; i < len(dst); i++ {
			if dst[i] == '\n' || dst[i] == '\r' {
				dst[i] = ' '
			}
		}
		return append(dst, ' ')
	}
}

func (g *Generator) appendSlot(dst []byte, s span) []byte {
	if s.lo == s.hi {
		return append(dst, '-')
	}
	return append(dst, g.vals[s.lo:s.hi]...)
}

func (g *Generator) appendKV(dst []byte) []byte {
	dst = g.appendDate(dst)
	dst = append(dst, "category="...)
	dst = append(dst, g.cat.name...)
	dst = append(dst, " matchedIndicator="...)
	dst = g.appendSlot(dst, g.match)
	dst = append(dst, " url="...)
	dst = g.appendSlot(dst, g.slots[slotURL])
	dst = append(dst, " src="...)
	dst = g.appendSlot(dst, g.slots[slotSrc])
	dst = append(dst, " ip="...)
	dst = g.appendSlot(dst, g.slots[slotIP])
	dst = append(dst, " md5="...)
	dst = g.appendSlot(dst, g.slots[slotMD5])
	dst = append(dst, " sha1="...)
	dst = g.appendSlot(dst, g.slots[slotSHA1])
	dst = append(dst, " sha256="...)
	dst = g.appendSlot(dst, g.slots[slotSHA256])
	dst = append(dst, " usrName="...)
	dst = g.appendSlot(dst, g.slots[slotUser])
	dst = append(dst, " confidence=100"...)
	// %RecordContext% with RecordFieldContextFormat " %ParamName%=%ParamValue%".
	for _, f := range g.fields {
		dst = append(dst, ' ')
		dst = append(dst, f.name...)
		dst = append(dst, '=')
		dst = append(dst, g.val(f.v)...)
	}
	return dst
}

// appendCEFValue appends b with CEF extension escaping (\ = CR LF).
func appendCEFValue(dst, b []byte) []byte {
	for _, c := range b {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '=':
			dst = append(dst, '\\', '=')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func (g *Generator) appendCEFSlot(dst []byte, key string, s span) []byte {
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, '=')
	if s.lo == s.hi {
		return append(dst, '-')
	}
	return appendCEFValue(dst, g.val(s))
}

// fieldSpan returns the value of the named record field; the zero span if
// absent.
func (g *Generator) fieldSpan(name string) span {
	for _, f := range g.fields {
		if f.name == name {
			return f.v
		}
	}
	return span{}
}

func (g *Generator) appendCEF(dst []byte) []byte {
	dst = append(dst, CEFHeader...)
	dst = append(dst, " reason="...)
	dst = append(dst, g.cat.name...)
	dst = g.appendCEFSlot(dst, "dst", g.slots[slotIP])
	dst = g.appendCEFSlot(dst, "src", g.slots[slotSrc])
	dst = g.appendCEFSlot(dst, "fileHash", g.slots[slotMD5])
	dst = g.appendCEFSlot(dst, "request", g.slots[slotURL])
	dst = g.appendCEFSlot(dst, "sourceServiceName", g.slots[slotSvc])
	dst = g.appendCEFSlot(dst, "sproc", g.slots[slotProc])
	dst = g.appendCEFSlot(dst, "suser", g.slots[slotUser])
	dst = append(dst, " msg=CyberTrace detected "...)
	dst = append(dst, g.cat.name...)
	dst = append(dst, " externalId="...)
	g.extID += 1 + g.r.IntN(50)
	dst = strconv.AppendInt(dst, int64(g.extID), 10)
	switch g.cat.act {
	case actURL:
		dst = g.appendCEFSlot(dst, "cs1", g.mask)
		dst = g.appendCEFSlot(dst, "flexString1", g.fieldSpan("first_seen"))
		dst = g.appendCEFSlot(dst, "flexString2", g.fieldSpan("last_seen"))
		dst = g.appendCEFSlot(dst, "cn2", g.fieldSpan("popularity"))
		dst = g.appendCEFSlot(dst, "cs3", g.fieldSpan("threat"))
		dst = g.appendCEFSlot(dst, "cs4", g.fieldSpan("category"))
		dst = g.appendCEFSlot(dst, "cs2", g.domain)
	case actPhish:
		dst = g.appendCEFSlot(dst, "cs1", g.mask)
		dst = g.appendCEFSlot(dst, "flexString1", g.fieldSpan("first_seen"))
		dst = g.appendCEFSlot(dst, "flexString2", g.fieldSpan("last_seen"))
		dst = g.appendCEFSlot(dst, "cn2", g.fieldSpan("popularity"))
		dst = g.appendCEFSlot(dst, "deviceFacility", g.fieldSpan("industry"))
		dst = g.appendCEFSlot(dst, "cs2", g.domain)
	case actHash:
		dst = g.appendCEFSlot(dst, "flexString1", g.fieldSpan("first_seen"))
		dst = g.appendCEFSlot(dst, "flexString2", g.fieldSpan("last_seen"))
		dst = g.appendCEFSlot(dst, "cn2", g.fieldSpan("popularity"))
		dst = g.appendCEFSlot(dst, "cs3", g.fieldSpan("threat"))
		dst = g.appendCEFSlot(dst, "cs4", g.fieldSpan("url"))
		dst = g.appendCEFSlot(dst, "fsize", g.fieldSpan("file_size"))
	}
	dst = append(dst, " cs5Label=MatchedIndicator"...)
	dst = g.appendCEFSlot(dst, "cs5", g.match)
	dst = append(dst, " cn3Label=Confidence cn3=100 cs6Label=Context cs6="...)
	if len(g.fields) == 0 {
		return append(dst, '-')
	}
	// %RecordContext% with RecordFieldContextFormat "%ParamName%:%ParamValue% ".
	for _, f := range g.fields {
		dst = append(dst, f.name...)
		dst = append(dst, ':')
		dst = appendCEFValue(dst, g.val(f.v))
		dst = append(dst, ' ')
	}
	return dst
}

func (g *Generator) appendAlert(dst []byte) []byte {
	n := g.r.IntN(alertCum[len(alertCum)-1])
	i := 0
	for n >= alertCum[i] {
		i++
	}
	dst = g.appendDate(dst)
	dst = append(dst, "alert="...)
	dst = append(dst, alertNames[i]...)
	if alertHasFeed(i) {
		dst = append(dst, " feed="...)
		dst = append(dst, pick(g, feedFiles[:])...)
	}
	return dst
}

func (g *Generator) appendFinished(dst []byte) []byte {
	dst = append(dst, "alert=LookupFinished sent_events="...)
	var n int
	switch r := g.r.IntN(10); {
	case r < 4:
		n = 0
	case r < 8:
		n = 1
	default:
		n = 2 + g.r.IntN(3)
	}
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, " total="...)
	// <category>:<count>; per category hit, at most two distinct categories.
	if n == 0 {
		return dst
	}
	a := g.r.IntN(len(categories))
	k := n
	if n > 1 && g.r.IntN(2) == 0 {
		k = 1 + g.r.IntN(n-1)
	}
	dst = appendTotal(dst, categories[a].name, k)
	if k < n {
		b := (a + 1 + g.r.IntN(len(categories)-1)) % len(categories)
		dst = appendTotal(dst, categories[b].name, n-k)
	}
	return dst
}

func appendTotal(dst []byte, cat string, n int) []byte {
	dst = append(dst, cat...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, ';')
}
