package cybertrace

import (
	"bytes"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// keyRE is the spec's tokenisation rule (vendor-protocols.md C2).
var keyRE = regexp.MustCompile(`(?:^| )([A-Za-z_][A-Za-z0-9_.\-]*)=`)

type pair struct{ key, value string }

// tokenize splits a key=value line into the text before the first key and
// the ordered pairs, per keyRE. It is a hand-written equivalent of keyRE
// (the regexp is slow under -race); TestTokenizeMatchesRegexp checks that
// they agree.
func tokenize(line string) (prefix string, pairs []pair) {
	type match struct{ start, keyStart, keyEnd int }
	var ms []match
	for i := 0; i < len(line); i++ {
		if i > 0 && line[i-1] != ' ' || !isKeyStart(line[i]) {
			continue
		}
		j := i + 1
		for j < len(line) && isKeyByte(line[j]) {
			j++
		}
		if j < len(line) && line[j] == '=' {
			start := i
			if i > 0 {
				start = i - 1
			}
			ms = append(ms, match{start, i, j})
			i = j
		}
	}
	if len(ms) == 0 {
		return line, nil
	}
	prefix = line[:ms[0].start]
	for i, m := range ms {
		end := len(line)
		if i+1 < len(ms) {
			end = ms[i+1].start
		}
		pairs = append(pairs, pair{line[m.keyStart:m.keyEnd], line[m.keyEnd+1 : end]})
	}
	return prefix, pairs
}

func isKeyStart(c byte) bool { return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }

func isKeyByte(c byte) bool {
	return isKeyStart(c) || '0' <= c && c <= '9' || c == '.' || c == '-'
}

// tokenizeRE is tokenize implemented with the spec's regexp.
func tokenizeRE(line string) (prefix string, pairs []pair) {
	ms := keyRE.FindAllStringSubmatchIndex(line, -1)
	if len(ms) == 0 {
		return line, nil
	}
	prefix = line[:ms[0][0]]
	for i, m := range ms {
		end := len(line)
		if i+1 < len(ms) {
			end = ms[i+1][0]
		}
		pairs = append(pairs, pair{line[m[2]:m[3]], line[m[1]:end]})
	}
	return prefix, pairs
}

func TestTokenizeMatchesRegexp(t *testing.T) {
	lines := append(SeedLines(), "", "a=", "a= b=", "x a=b=c d=e", " k=v", "-k=v", "a=x=1 _b.c-d=2", "Mar 01 08:01:02 alert=X")
	lines = append(lines, sample(17, DefaultGenOptions(), 400)...)
	lines = append(lines, sample(17, GenOptions{DateFormat: "Jan 02 15:04:05"}, 400)...)
	for _, l := range lines {
		p1, ps1 := tokenize(l)
		p2, ps2 := tokenizeRE(l)
		if p1 != p2 || !slices.Equal(ps1, ps2) {
			t.Fatalf("tokenizers disagree on %q:\n%q %v\n%q %v", l, p1, ps1, p2, ps2)
		}
	}
}

func keysOf(ps []pair) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.key
	}
	return out
}

func countKey(ps []pair, k string) int {
	n := 0
	for _, p := range ps {
		if p.key == k {
			n++
		}
	}
	return n
}

var templateKeys = []string{"category", "matchedIndicator", "url", "src", "ip", "md5", "sha1", "sha256", "usrName", "confidence"}

// contextKeys are all record-context field names the generator may emit.
var contextKeys = map[string]bool{
	"category": true, "first_seen": true, "last_seen": true, "mask": true, "popularity": true, "threat": true,
	"IP": true, "geo": true, "whois.org": true, "whois.created": true,
	"attack_type": true, "id": true, "industry": true, "stolen_data_type": true, "targeted_organization": true, "type": true,
	"ip": true, "ip_geo": true, "threat_score": true,
	"MD5": true, "SHA1": true, "SHA256": true, "file_size": true, "url": true,
}

func sample(seed int64, opts GenOptions, n int) []string {
	g := NewGenerator(seed, opts)
	out := make([]string, n)
	var b []byte
	for i := range out {
		b = g.Next(b[:0])
		out[i] = string(b)
	}
	return out
}

var optionVariants = map[string]GenOptions{
	"zero":   {},
	"dash":   DefaultGenOptions(),
	"layout": {DateFormat: "Jan 02 15:04:05"},
	"cef":    {CEF: true, DateFormat: DateDash},
	"alerts": {AlertWeight: 1, FinishedWeight: 1, DateFormat: time.RFC3339},
}

func TestGeneratorDeterministic(t *testing.T) {
	for name, opts := range optionVariants {
		t.Run(name, func(t *testing.T) {
			a, b := sample(7, opts, 3000), sample(7, opts, 3000)
			if diff := cmp.Diff(a, b); diff != "" {
				t.Fatalf("same seed, different output (-a +b):\n%s", diff)
			}
			c := sample(8, opts, 3000)
			same := 0
			for i := range a {
				if a[i] == c[i] {
					same++
				}
			}
			if same > len(a)/2 {
				t.Errorf("seeds 7 and 8 agree on %d of %d lines", same, len(a))
			}
		})
	}
}

func TestGeneratorNoLineBreaksValidUTF8(t *testing.T) {
	opts := maps.Clone(optionVariants)
	opts["evil-layout"] = GenOptions{DateFormat: "Jan 02\n15:04\r"}
	for name, o := range opts {
		t.Run(name, func(t *testing.T) {
			for i, l := range sample(3, o, 20000) {
				if strings.ContainsAny(l, "\r\n") {
					t.Fatalf("line %d contains CR/LF: %q", i, l)
				}
				if !utf8.ValidString(l) {
					t.Fatalf("line %d is not valid UTF-8: %q", i, l)
				}
				if l == "" {
					t.Fatalf("line %d is empty", i)
				}
			}
		})
	}
}

func TestGeneratorMix(t *testing.T) {
	const n = 40000
	var det, alert, fin int
	for _, l := range sample(11, DefaultGenOptions(), n) {
		switch {
		case strings.Contains(l, "alert=KL_ALERT_"):
			alert++
		case strings.Contains(l, "LookupFinished"):
			fin++
		default:
			det++
		}
	}
	check := func(what string, got, wantPct int) {
		pct := float64(got) * 100 / n
		if pct < float64(wantPct)*0.8-0.5 || pct > float64(wantPct)*1.2+0.5 {
			t.Errorf("%s: %.1f%%, want about %d%%", what, pct, wantPct)
		}
	}
	check("detections", det, DefaultDetectionWeight)
	check("alerts", alert, DefaultAlertWeight)
	check("finished", fin, DefaultFinishedWeight)

	for _, l := range sample(1, GenOptions{AlertWeight: 1}, 500) {
		if !strings.HasPrefix(l, "alert=KL_ALERT_") {
			t.Fatalf("AlertWeight only: got %q", l)
		}
	}
}

func TestGeneratorAlertsAndFinished(t *testing.T) {
	seen := map[string]int{}
	var finZero, finSome int
	for _, l := range sample(5, DefaultGenOptions(), 20000) {
		if !strings.Contains(l, "alert=") {
			continue
		}
		prefix, ps := tokenize(l)
		if len(ps) == 0 || ps[0].key != "alert" {
			continue
		}
		switch {
		case ps[0].value == "LookupFinished":
			if prefix != "" {
				t.Errorf("finished event with date slot %q: %q", prefix, l)
			}
			if got := keysOf(ps); !slices.Equal([]string{"alert", "sent_events", "total"}, got) {
				t.Fatalf("finished keys: %v in %q", got, l)
			}
			if ps[1].value == "0" {
				finZero++
				if ps[2].value != "" || !strings.HasSuffix(l, " total=") {
					t.Errorf("sent_events=0 with non-empty total: %q", l)
				}
				continue
			}
			finSome++
			if !totalRE.MatchString(ps[2].value) {
				t.Errorf("bad total: %q", l)
			}
		default:
			if prefix != "-" {
				t.Errorf("alert without '-' date slot: %q", l)
			}
			name := ps[0].value
			seen[name]++
			wantFeed := strings.Contains(name, "Feed")
			if wantFeed {
				if len(ps) != 2 || ps[1].key != "feed" || !strings.HasSuffix(ps[1].value, ".json") {
					t.Errorf("feed alert without feed context: %q", l)
				}
			} else if len(ps) != 1 {
				t.Errorf("alert %s should carry no context: %q", name, l)
			}
		}
	}
	for _, name := range AlertNames() {
		if seen[name] == 0 {
			t.Errorf("alert %s never generated", name)
		}
	}
	if len(seen) != len(AlertNames()) {
		t.Errorf("unexpected alert names: %v", seen)
	}
	if finZero == 0 || finSome == 0 {
		t.Errorf("finished events: %d with sent_events=0, %d with hits", finZero, finSome)
	}
}

func TestGeneratorKeyValueLayout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       GenOptions
		wantPrefix func(string) bool
	}{
		{"dash", DefaultGenOptions(), func(p string) bool { return p == "-" }},
		{"none", GenOptions{}, func(p string) bool { return p == "" }},
		{"layout", GenOptions{DateFormat: "Jan 02 15:04:05"}, func(p string) bool {
			_, err := time.Parse("Jan 02 15:04:05", p)
			return err == nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cats := map[string]int{}
			dupCategory := map[string]bool{}
			var queryURLs, domainUsers, nonASCII, emptyCtx int
			for _, l := range sample(9, tc.opts, 6000) {
				prefix, ps := tokenize(l)
				if len(ps) == 0 {
					t.Fatalf("no pairs: %q", l)
				}
				// Reassembling the pairs must give back the line.
				var rb strings.Builder
				rb.WriteString(prefix)
				for i, p := range ps {
					if i > 0 || prefix != "" {
						rb.WriteByte(' ')
					}
					rb.WriteString(p.key + "=" + p.value)
				}
				if rb.String() != l {
					t.Fatalf("tokenisation does not round-trip:\n%q\n%q", l, rb.String())
				}
				if ps[0].key == "alert" {
					continue
				}
				if !tc.wantPrefix(prefix) {
					t.Fatalf("bad date slot %q in %q", prefix, l)
				}
				keys := keysOf(ps)
				if len(keys) <= len(templateKeys) || !slices.Equal(keys[:len(templateKeys)], templateKeys) {
					t.Fatalf("template keys out of order: %v\n%q", keys, l)
				}
				for _, p := range ps[:len(templateKeys)] {
					if p.value == "" {
						t.Fatalf("empty template slot %s (want -): %q", p.key, l)
					}
				}
				if ps[9].value != "100" {
					t.Fatalf("confidence %q", ps[9].value)
				}
				ctx := ps[len(templateKeys):]
				for i, p := range ctx {
					if !contextKeys[p.key] {
						t.Fatalf("unexpected context key %q in %q", p.key, l)
					}
					if i > 0 && ctx[i-1].key > p.key {
						t.Fatalf("context not sorted by name: %v", keysOf(ctx))
					}
					if p.value == "" {
						emptyCtx++
					}
				}
				cat := ps[0].value
				cats[cat]++
				if countKey(ps, "category") == 2 {
					dupCategory[cat] = true
				}
				if strings.HasSuffix(cat, "_IP") || cat == "KL_IP_Reputation" {
					if countKey(ps, "ip") != 2 || ps[4].value != ps[1].value {
						t.Fatalf("IP detection without duplicate ip: %q", l)
					}
				}
				if strings.Contains(ps[2].value, "?") && strings.Contains(ps[2].value, "&") {
					queryURLs++
				}
				if strings.Contains(ps[8].value, `\`) {
					domainUsers++
				}
				if !isASCII(l) {
					nonASCII++
				}
				for _, f := range []string{"first_seen", "last_seen"} {
					for _, p := range ctx {
						if p.key == f {
							if _, err := time.Parse("02.01.2006 15:04", p.value); err != nil {
								t.Fatalf("%s=%q: %v", f, p.value, err)
							}
						}
					}
				}
			}
			for _, c := range Categories() {
				if cats[c] == 0 {
					t.Errorf("category %s never generated", c)
				}
			}
			for _, c := range []string{"KL_Malicious_URL", "KL_BotnetCnC_URL", "KL_APT_URL", "KL_IoT_URL", "KL_IP_Reputation"} {
				if !dupCategory[c] {
					t.Errorf("%s: no line with duplicate category key", c)
				}
			}
			if queryURLs == 0 || domainUsers == 0 || nonASCII == 0 || emptyCtx == 0 {
				t.Errorf("variety: %d query URLs, %d DOMAIN\\user, %d non-ASCII lines, %d empty context values",
					queryURLs, domainUsers, nonASCII, emptyCtx)
			}
		})
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func TestSeedLines(t *testing.T) {
	seeds := SeedLines()
	if len(seeds) != 4 {
		t.Fatalf("got %d seed lines", len(seeds))
	}
	seeds[0] = "mutated"
	if SeedLines()[0] == "mutated" {
		t.Fatal("SeedLines returns shared storage")
	}
	gen := sample(21, DefaultGenOptions(), 10000)
	for _, s := range SeedLines() {
		if !strings.HasPrefix(s, "- category=") {
			t.Errorf("seed line does not start with '- category=': %q", s)
		}
		prefix, ps := tokenize(s)
		if prefix != "-" || !slices.Equal(keysOf(ps)[:len(templateKeys)], templateKeys) {
			t.Errorf("seed line does not tokenise as expected: %q", s)
		}
		// The generator's fixture for the seed's indicator reproduces the
		// seed's record context exactly.
		_, suffix, _ := strings.Cut(s, " confidence=100")
		head := "category=" + ps[0].value + " matchedIndicator=" + ps[1].value + " "
		found := false
		for _, l := range gen {
			if strings.Contains(l, head) && strings.HasSuffix(l, " confidence=100"+suffix) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no generated line reproduces the record context of %q", s)
		}
	}
}

var totalRE = regexp.MustCompile(`^(KL_[A-Za-z0-9_]+:[1-9][0-9]*;)+$`)

// parseCEF splits a CEF line into its seven header fields and the extension
// pairs. A key starts after a space, consists of [A-Za-z0-9_] and ends at an
// unescaped '='; it fails the test on any other unescaped '='.
func parseCEF(t *testing.T, line string) (header []string, pairs []pair) {
	t.Helper()
	rest := line
	for range 7 { // our header uses no escapes
		i := strings.IndexByte(rest, '|')
		if i < 0 {
			t.Fatalf("short CEF header: %q", line)
		}
		header = append(header, rest[:i])
		rest = rest[i+1:]
	}
	type match struct{ start, keyStart, eq int }
	var ms []match
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			i++ // skip the escaped byte
		case '=':
			k := i
			for k > 0 && isCEFKeyByte(rest[k-1]) {
				k--
			}
			if k == i || k == 0 || rest[k-1] != ' ' {
				t.Fatalf("unescaped '=' inside a value at %d: %q", i, line)
			}
			ms = append(ms, match{k - 1, k, i})
		}
	}
	if len(ms) == 0 || ms[0].start != 0 {
		t.Fatalf("extension does not start with ' key=': %q", rest)
	}
	for i, m := range ms {
		end := len(rest)
		if i+1 < len(ms) {
			end = ms[i+1].start
		}
		pairs = append(pairs, pair{rest[m.keyStart:m.eq], rest[m.eq+1 : end]})
	}
	return header, pairs
}

func isCEFKeyByte(c byte) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

func cefUnescape(s string) string {
	r := strings.NewReplacer(`\\`, `\`, `\=`, `=`, `\n`, "\n", `\r`, "\r")
	return r.Replace(s)
}

func TestGeneratorCEF(t *testing.T) {
	wantHeader := strings.Split(strings.TrimSuffix(CEFHeader, "|"), "|")
	lead := []string{"reason", "dst", "src", "fileHash", "request", "sourceServiceName", "sproc", "suser", "msg", "externalId"}
	tail := []string{"cs5Label", "cs5", "cn3Label", "cn3", "cs6Label", "cs6"}
	act := map[string][]string{
		"KL_Malicious_URL":         {"cs1", "flexString1", "flexString2", "cn2", "cs3", "cs4", "cs2"},
		"KL_Phishing_URL":          {"cs1", "flexString1", "flexString2", "cn2", "deviceFacility", "cs2"},
		"KL_Malicious_Hash_MD5":    {"flexString1", "flexString2", "cn2", "cs3", "cs4", "fsize"},
		"KL_Malicious_Hash_SHA1":   {"flexString1", "flexString2", "cn2", "cs3", "cs4", "fsize"},
		"KL_Malicious_Hash_SHA256": {"flexString1", "flexString2", "cn2", "cs3", "cs4", "fsize"},
	}
	var escaped, n int
	for _, l := range sample(13, GenOptions{CEF: true, DateFormat: DateDash}, 6000) {
		if !strings.HasPrefix(l, "CEF:") {
			if !strings.HasPrefix(l, "- alert=KL_ALERT_") && !strings.HasPrefix(l, "alert=LookupFinished") {
				t.Fatalf("non-CEF line that is neither alert nor finished: %q", l)
			}
			continue
		}
		n++
		if !strings.HasPrefix(l, CEFHeader+" reason=") {
			t.Fatalf("bad CEF prefix: %q", l)
		}
		header, ps := parseCEF(t, l)
		if !slices.Equal(wantHeader, header) {
			t.Fatalf("header (-want +got):\n%s", cmp.Diff(wantHeader, header))
		}
		reason := ps[0].value
		want := slices.Concat(lead, act[reason], tail)
		if got := keysOf(ps); !slices.Equal(want, got) {
			t.Fatalf("extension keys (-want +got):\n%s\n%q", cmp.Diff(want, got), l)
		}
		vals := map[string]string{}
		for _, p := range ps {
			if p.value == "" {
				t.Fatalf("empty extension value for %s (want -): %q", p.key, l)
			}
			vals[p.key] = cefUnescape(p.value)
		}
		if vals["msg"] != "CyberTrace detected "+reason || vals["cs5Label"] != "MatchedIndicator" ||
			vals["cn3Label"] != "Confidence" || vals["cn3"] != "100" || vals["cs6Label"] != "Context" {
			t.Fatalf("fixed extension values wrong: %q", l)
		}
		cs6 := ps[len(ps)-1].value
		if !strings.HasSuffix(cs6, " ") || !strings.HasSuffix(l, " ") {
			t.Fatalf("cs6 context must end with a space: %q", l)
		}
		// Name:Value items; a word starting with a known field name and ':'
		// starts an item.
		for i, w := range strings.Split(strings.TrimSuffix(cs6, " "), " ") {
			name, _, ok := strings.Cut(w, ":")
			starts := ok && contextKeys[name]
			if i == 0 && !starts {
				t.Fatalf("cs6 does not start with a Name:Value item: %q", cs6)
			}
		}
		if strings.Contains(l, `\=`) || strings.Contains(l, `\\`) {
			escaped++
		}
	}
	if n < 5000 || escaped == 0 {
		t.Errorf("%d CEF detections, %d with escapes", n, escaped)
	}
}

func TestGeneratorDateSlot(t *testing.T) {
	start := time.Date(2024, time.December, 31, 23, 59, 0, 0, time.UTC)
	var prev time.Time
	for _, l := range sample(4, GenOptions{DateFormat: time.RFC3339Nano, Start: start}, 2000) {
		if strings.HasPrefix(l, "alert=LookupFinished") {
			continue
		}
		ts, _, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("no date slot: %q", l)
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("date slot %q: %v", ts, err)
		}
		if tm.Before(start) || tm.Before(prev) {
			t.Fatalf("clock went backwards: %v after %v", tm, prev)
		}
		prev = tm
	}
	fixed := time.Date(2025, time.March, 1, 8, 1, 2, 0, time.UTC)
	l := sample(4, GenOptions{DetectionWeight: 1, DateFormat: "Jan 02 15:04:05", Now: func() time.Time { return fixed }}, 1)[0]
	if !strings.HasPrefix(l, "Mar 01 08:01:02 category=") {
		t.Fatalf("Now not used: %q", l)
	}
}

func TestGeneratorAppends(t *testing.T) {
	g := NewGenerator(1, GenOptions{})
	dst := []byte("prefix|")
	dst = g.Next(dst)
	if !bytes.HasPrefix(dst, []byte("prefix|")) || len(dst) < 30 {
		t.Fatalf("Next did not append: %q", dst)
	}
}

func BenchmarkGenerator(b *testing.B) {
	for _, name := range []string{"kv", "cef"} {
		b.Run(name, func(b *testing.B) {
			g := NewGenerator(1, GenOptions{DateFormat: "Jan 02 15:04:05", CEF: name == "cef"})
			buf := make([]byte, 0, 4096)
			var n int
			b.ReportAllocs()
			for b.Loop() {
				buf = g.Next(buf[:0])
				n += len(buf)
			}
			b.SetBytes(int64(n / max(b.N, 1)))
		})
	}
}
