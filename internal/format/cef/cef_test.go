package cef

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

// field is a comparable rendering of event.Field.
type field struct {
	Group string `json:"group"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

var groupNames = map[event.Group]string{
	event.GroupTemplate:  "template",
	event.GroupContext:   "context",
	event.GroupHeader:    "header",
	event.GroupExtension: "extension",
}

func fieldsOf(ev *event.Event, groups ...event.Group) []field {
	out := []field{}
	for _, f := range ev.Fields {
		keep := len(groups) == 0
		for _, g := range groups {
			keep = keep || f.Group == g
		}
		if keep {
			out = append(out, field{groupNames[f.Group], string(f.Key), string(f.Value)})
		}
	}
	return out
}

// hdr returns the seven header fields for the given values.
func hdr(vals ...string) []field {
	keys := []string{"version", "deviceVendor", "deviceProduct", "deviceVersion", "signatureId", "name", "severity"}
	out := make([]field, len(keys))
	for i, k := range keys {
		out[i] = field{"header", k, vals[i]}
	}
	return out
}

func ext(kv ...string) []field {
	var out []field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, field{"extension", kv[i], kv[i+1]})
	}
	return out
}

func ctx(kv ...string) []field {
	var out []field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, field{"context", kv[i], kv[i+1]})
	}
	return out
}

func cat(parts ...[]field) []field {
	out := []field{}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const h7 = "CEF:0|V|P|1.0|2|N|8|"

var stdHdr = hdr("0", "V", "P", "1.0", "2", "N", "8")

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		prefix string // "" means nil
		want   []field
	}{
		{"header only", h7, "", stdHdr},
		{"header only, trailing blanks", h7 + "   ", "", stdHdr},
		{"empty header fields", "CEF:0|||||||", "", hdr("0", "", "", "", "", "", "")},
		{"header escapes", `CEF:1|A\|B|C\\D|x\y|\|\||N \\\| x|Very-High|`, "",
			hdr("1", "A|B", `C\D`, `x\y`, "||", `N \| x`, "Very-High")},
		{"header keeps extension escapes", `CEF:0|a\=b|a\nb|v|s|n|1|`, "",
			hdr("0", `a\=b`, `a\nb`, "v", "s", "n", "1")},
		{"simple pairs", h7 + "src=1.2.3.4 dst=5.6.7.8", "",
			cat(stdHdr, ext("src", "1.2.3.4", "dst", "5.6.7.8"))},
		{"space after header pipe", h7 + " src=1.2.3.4", "", cat(stdHdr, ext("src", "1.2.3.4"))},
		{"values with spaces", h7 + "msg=CyberTrace detected KL_Malicious_Hash_MD5 externalId=4411", "",
			cat(stdHdr, ext("msg", "CyberTrace detected KL_Malicious_Hash_MD5", "externalId", "4411"))},
		{"double spaces between pairs", h7 + "a=1  b=x y   c=3", "",
			cat(stdHdr, ext("a", "1", "b", "x y", "c", "3"))},
		{"trailing spaces trimmed", h7 + "a=1 b=two words   ", "",
			cat(stdHdr, ext("a", "1", "b", "two words"))},
		{"leading spaces of a value kept", h7 + "a=  x b=1", "",
			cat(stdHdr, ext("a", "  x", "b", "1"))},
		{"equals inside value", h7 + "request=http://x/?a=b&c=d msg=k=v", "",
			cat(stdHdr, ext("request", "http://x/?a=b&c=d", "msg", "k=v"))},
		{"key alphabet", h7 + "ad.field_1=a x[0]=b my-key=c", "",
			cat(stdHdr, ext("ad.field_1", "a", "x[0]", "b", "my-key", "c"))},
		{"non-key before equals", h7 + "msg=a, b=c d+e=f", "",
			cat(stdHdr, ext("msg", "a,", "b", "c d+e=f"))},
		{"extension escapes", h7 + `msg=a\=b c\\d e\nf\rg h\|i \t`, "",
			cat(stdHdr, ext("msg", "a=b c\\d e\nf\rg h\\|i \\t"))},
		{"escaped equals is no boundary", h7 + `msg=x k\=v y=1`, "",
			cat(stdHdr, ext("msg", "x k=v", "y", "1"))},
		{"escaped backslash before equals", h7 + `msg=a\\ b=1`, "",
			cat(stdHdr, ext("msg", `a\`, "b", "1"))},
		{"lone trailing backslash", h7 + `msg=a\`, "", cat(stdHdr, ext("msg", `a\`))},
		{"dash and empty dropped", h7 + "dst=- src=10.0.0.1 request=- suser= msg=-- x=", "",
			cat(stdHdr, ext("src", "10.0.0.1", "msg", "--"))},
		{"dash with trailing spaces dropped", h7 + "dst=-   src=1", "", cat(stdHdr, ext("src", "1"))},
		{"duplicate keys kept", h7 + "a=1 a=2", "", cat(stdHdr, ext("a", "1", "a", "2"))},
		{"syslog prefix", "<134>Mar 01 08:01:02 host CEF:0|V|P|1.0|2|N|8|a=1", "<134>Mar 01 08:01:02 host",
			cat(stdHdr, ext("a", "1"))},
		{"blank prefix is nil", "  \t" + h7 + "a=1", "", cat(stdHdr, ext("a", "1"))},
		{"context after label", h7 + "cs6Label=Context cs6=first_seen:11.07.2019 22:11 last_seen:14.07.2020 13:35 popularity:1 ", "",
			cat(stdHdr,
				ext("cs6Label", "Context", "cs6", "first_seen:11.07.2019 22:11 last_seen:14.07.2020 13:35 popularity:1"),
				ctx("first_seen", "11.07.2019 22:11", "last_seen", "14.07.2020 13:35", "popularity", "1"))},
		{"context before label", h7 + "cs3=a:1 b:- c: d:x:y cs3Label=Context z=1", "",
			cat(stdHdr,
				ext("cs3", "a:1 b:- c: d:x:y", "cs3Label", "Context", "z", "1"),
				ctx("a", "1", "d", "x:y"))},
		{"context label case-insensitive", h7 + "cs1Label=context cs1=a:1", "",
			cat(stdHdr, ext("cs1Label", "context", "cs1", "a:1"), ctx("a", "1"))},
		{"context names", h7 + "cs2Label=Context cs2=whois.org:GitHub, Inc. _x-1:y 9a:b MD5:AB", "",
			cat(stdHdr,
				ext("cs2Label", "Context", "cs2", "whois.org:GitHub, Inc. _x-1:y 9a:b MD5:AB"),
				ctx("whois.org", "GitHub, Inc.", "_x-1", "y 9a:b", "MD5", "AB"))},
		{"context leading text ignored", h7 + "cs6Label=Context cs6=junk here a:1", "",
			cat(stdHdr, ext("cs6Label", "Context", "cs6", "junk here a:1"), ctx("a", "1"))},
		{"context url value", h7 + "cs6Label=Context cs6=url:http://x/a b:2", "",
			cat(stdHdr, ext("cs6Label", "Context", "cs6", "url:http://x/a b:2"), ctx("url", "http://x/a", "b", "2"))},
		{"context unescaped first", h7 + `cs6Label=Context cs6=path:C:\\x eq:a\=b`, "",
			cat(stdHdr, ext("cs6Label", "Context", "cs6", `path:C:\x eq:a=b`), ctx("path", `C:\x`, "eq", "a=b"))},
		{"other label not context", h7 + "cs5Label=MatchedIndicator cs5=a:1", "",
			cat(stdHdr, ext("cs5Label", "MatchedIndicator", "cs5", "a:1"))},
		{"cs7 is not a context slot", h7 + "cs7Label=Context cs7=a:1", "",
			cat(stdHdr, ext("cs7Label", "Context", "cs7", "a:1"))},
		{"two context slots", h7 + "cs1=a:1 cs6=b:2 cs6Label=Context cs1Label=Context", "",
			cat(stdHdr, ext("cs1", "a:1", "cs6", "b:2", "cs6Label", "Context", "cs1Label", "Context"), ctx("a", "1", "b", "2"))},
		{"pipes in extension", h7 + "msg=a|b c=|", "", cat(stdHdr, ext("msg", "a|b", "c", "|"))},
		{"marker inside prefix only first counts", "x CEF:0|a|b|c|d|e|f|msg=CEF:1|x", "x",
			cat(hdr("0", "a", "b", "c", "d", "e", "f"), ext("msg", "CEF:1|x"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev event.Event
			line := []byte(tt.line)
			if err := Parse(line, &ev); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Format != event.FormatCEF {
				t.Errorf("Format = %v, want cef", ev.Format)
			}
			if diff := cmp.Diff(tt.want, fieldsOf(&ev)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if tt.prefix == "" && ev.Prefix != nil {
				t.Errorf("Prefix = %q, want nil", ev.Prefix)
			} else if tt.prefix != "" && string(ev.Prefix) != tt.prefix {
				t.Errorf("Prefix = %q, want %q", ev.Prefix, tt.prefix)
			}
			if ev.Kind != event.KindUnknown || ev.Raw != nil || !ev.Time.IsZero() {
				t.Errorf("Parse touched Kind/Raw/Time")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want error
	}{
		{"empty", "", ErrNotCEF},
		{"kv line", "Mar 01 08:01:02 category=KL_Malicious_URL", ErrNotCEF},
		{"lower case marker", "cef:0|a|b|c|d|e|f|", ErrNotCEF},
		{"marker only", "CEF:", ErrMalformed},
		{"six pipes", "CEF:0|a|b|c|d|e|f", ErrMalformed},
		{"escaped seventh pipe", `CEF:0|a|b|c|d|e|f\|`, ErrMalformed},
		{"empty version", "CEF:|a|b|c|d|e|f|", ErrMalformed},
		{"non-numeric version", "CEF:x|a|b|c|d|e|f|", ErrMalformed},
		{"spaced version", "CEF: 0|a|b|c|d|e|f|", ErrMalformed},
		{"extension without key", h7 + "garbage", ErrMalformed},
		{"extension text before key", h7 + "junk a=1", ErrMalformed},
		{"extension starts with equals", h7 + "=1", ErrMalformed},
		{"extension key with bad byte", h7 + "a+b=1", ErrMalformed},
		{"extension key without value", h7 + "abc", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event.Event{Fields: []event.Field{{Key: []byte("k"), Value: []byte("v")}}}
			err := Parse([]byte(tt.line), &ev)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			if len(ev.Fields) != 1 || ev.Prefix != nil || ev.Format != event.FormatKV {
				t.Errorf("failed Parse modified the event: %+v", ev)
			}
		})
	}
}

func TestParseAppendsAndReuses(t *testing.T) {
	var ev event.Event
	if err := Parse([]byte(h7+`a=x\=y`), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Reset()
	line := []byte("p " + h7 + `cs6Label=Context cs6=k:v\=w b=\\`)
	if err := Parse(line, &ev); err != nil {
		t.Fatal(err)
	}
	want := cat(stdHdr, ext("cs6Label", "Context", "cs6", "k:v=w", "b", `\`), ctx("k", "v=w"))
	if diff := cmp.Diff(want, fieldsOf(&ev)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

// TestParseAliasing checks that values without escapes alias the line.
func TestParseAliasing(t *testing.T) {
	line := []byte(h7 + "a=hello b=x\\=y")
	var ev event.Event
	if err := Parse(line, &ev); err != nil {
		t.Fatal(err)
	}
	a, _ := ev.Get(event.GroupExtension, "a")
	line[len(h7)+2] = 'H'
	if string(a) != "Hello" {
		t.Errorf("value a = %q does not alias the line", a)
	}
	b, _ := ev.Get(event.GroupExtension, "b")
	if string(b) != "x=y" || cap(b) != len(b) {
		t.Errorf("value b = %q (cap %d), want x=y with capped capacity", b, cap(b))
	}
}

func TestParseAllocs(t *testing.T) {
	for _, name := range []string{"b10_detection.cef", "escapes.cef", "prefix_syslog.cef"} {
		line, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		if err := Parse(line, &ev); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			ev.Reset()
			if err := Parse(line, &ev); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per Parse, want 0", name, allocs)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	line, err := os.ReadFile("testdata/b10_detection.cef")
	if err != nil {
		b.Fatal(err)
	}
	line = []byte(strings.TrimSuffix(string(line), "\n"))
	var ev event.Event
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		ev.Reset()
		if err := Parse(line, &ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
