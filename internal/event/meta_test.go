package event

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadMeta(t *testing.T) {
	type str = string
	for _, tc := range []struct {
		name, doc                                 string
		ts, id, dataset, provider, kind, original str
		ok                                        bool
	}{
		{"ours", `{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"a1","kind":"alert","category":["threat"],"dataset":"cybertrace.detection","provider":"ct","original":"x=\"1\" y"},"host":{"name":"h"}}`,
			"2025-03-01T08:01:05.123Z", "a1", "cybertrace.detection", "ct", "alert", `x=\"1\" y`, true},
		{"order and space", ` { "host" : {"a":[1,{"b":null}]} , "event" : { "provider" : "p" , "id" : "i" } , "@timestamp" : "t" } `,
			"t", "i", "", "p", "", "", true},
		{"not strings", `{"@timestamp":5,"event":{"id":7,"dataset":null}}`, "", "", "", "", "", "", true},
		{"event not object", `{"event":"x","@timestamp":"t"}`, "t", "", "", "", "", "", true},
		{"empty", `{}`, "", "", "", "", "", "", true},
		{"truncated", `{"@timestamp":"t","event":{"id":"i","data`, "t", "i", "", "", "", "", false},
		{"not an object", `[1,2]`, "", "", "", "", "", "", false},
		{"garbage", `{"a" 1}`, "", "", "", "", "", "", false},
	} {
		m, ok := ReadMeta([]byte(tc.doc))
		got := []string{string(m.Timestamp), string(m.ID), string(m.Dataset), string(m.Provider), string(m.Kind), string(m.Original)}
		want := []string{tc.ts, tc.id, tc.dataset, tc.provider, tc.kind, tc.original}
		if diff := cmp.Diff(want, got); diff != "" || ok != tc.ok {
			t.Errorf("%s: ok=%v (want %v), diff (-want +got):\n%s", tc.name, ok, tc.ok, diff)
		}
	}
}

// TestReadRouting: on every golden document, and on the table's, what
// ReadRouting finds equals ReadMeta's fields other than Original, whatever
// the members' order.
func TestReadRouting(t *testing.T) {
	var docs [][]byte
	for _, f := range []string{"../normalize/testdata/cybertrace_kv.golden.ndjson", "../normalize/testdata/cynet_alerts.golden.ndjson"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, bytes.Split(bytes.TrimSpace(b), []byte("\n"))...)
	}
	docs = append(docs,
		[]byte(`{"event":{"provider":"p","id":"i","kind":"k","dataset":"d","original":"o"},"@timestamp":"t","x":1}`),
		[]byte(`{"x":[1,2],"event":{"id":"i"},"@timestamp":"t"}`),
		[]byte(`{"@timestamp":"t","event":{"original":"o","id":"i","dataset":"d","provider":"p","kind":"k"}}`),
	)
	for _, d := range docs {
		full, _ := ReadMeta(d)
		full.Original = nil
		fast, ok := ReadRouting(d)
		if !ok || !cmp.Equal(full, fast) {
			t.Errorf("ReadRouting(%.80s...) = %+v, %v; ReadMeta gives %+v", d, fast, ok, full)
		}
	}
}

func TestUnquote(t *testing.T) {
	for _, in := range []string{`plain`, `a\"b\\c\/d`, `\b\f\n\r\t`, `\u00e9\u4e2d`, `\ud83d\ude00 emoji`, `\ud83d alone`, `\u12`, `\x`} {
		got := string(Unquote(nil, []byte(in)))
		var want string
		if err := json.Unmarshal([]byte(`"`+in+`"`), &want); err != nil {
			continue // invalid escapes: only "no panic" is promised
		}
		if got != want {
			t.Errorf("Unquote(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzReadMeta(f *testing.F) {
	f.Add([]byte(`{"@timestamp":"t","event":{"id":"i","original":"a\"b"}}`))
	f.Add([]byte(`{"a":[[[[{}]]]],"event":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// ReadMeta checks structure only, not number or literal grammar:
		// it may accept what encoding/json rejects, never the reverse.
		m, ok := ReadMeta(b)
		if json.Valid(b) {
			var v any
			if json.Unmarshal(b, &v) == nil {
				if _, isObj := v.(map[string]any); isObj && !ok {
					t.Fatalf("valid object rejected: %q", b)
				}
			}
		}
		_ = Unquote(nil, m.Original)
		if ok {
			r, rok := ReadRouting(b)
			m.Original = nil
			if !rok || !cmp.Equal(m, r) {
				t.Fatalf("ReadRouting %+v %v, ReadMeta %+v on %q", r, rok, m, b)
			}
		}
	})
}

func BenchmarkReadMeta(b *testing.B) {
	doc := []byte(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"0000000001a0000000000001","kind":"alert","category":["threat"],"type":["indicator"],"dataset":"cybertrace.detection","module":"cybertrace","provider":"ct","created":"2025-03-01T08:01:05.123Z","original":"- category=KL_Malicious_Hash_MD5 matchedIndicator=776735A8CA96DB15B422879DA599F474 url=- src=- ip=- md5=776735A8CA96DB15B422879DA599F474"},"observer":{"vendor":"Kaspersky","product":"CyberTrace"},"threat":{"feed":{"name":"KL_Malicious_Hash_MD5"}}}`)
	b.SetBytes(int64(len(doc)))
	b.Run("ReadMeta", func(b *testing.B) {
		for b.Loop() {
			if _, ok := ReadMeta(doc); !ok {
				b.Fatal("not ok")
			}
		}
	})
	b.Run("ReadRouting", func(b *testing.B) {
		for b.Loop() {
			if _, ok := ReadRouting(doc); !ok {
				b.Fatal("not ok")
			}
		}
	})
}

func TestSkip(t *testing.T) {
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		in  string
		at  int
		end int // -1: not ok
	}{
		{`"abc"x`, 0, 5},
		{`"a\"b\\"c"`, 0, 8},
		{`"unterminated\"`, 0, -1},
		{`{"a":[1,{"b":null}],"c":"}"} x`, 0, 28},
		{`{ "a" : 1 , "b" : [ ] }`, 0, 23},
		{`[1,2]]`, 0, 5},
		{`-1.5e3,`, 0, 6},
		{`x[1]`, 1, 4},
		{`{"a" 1}`, 0, -1},
		{`{"a":}`, 0, -1},
		{`{1:2}`, 0, -1},
		{`[1,]`, 0, -1},
		{`[1}`, 0, -1},
		{`{"a":1`, 0, -1},
		{``, 0, -1},
		{`}`, 0, -1},
		{`1`, -1, -1},
		{`1`, 2, -1},
		{nested(maxDepth + 1), 0, 2 * (maxDepth + 1)},
		{nested(maxDepth + 2), 0, -1},
	} {
		end, ok := SkipValue([]byte(tc.in), tc.at)
		if ok != (tc.end >= 0) || ok && end != tc.end {
			t.Errorf("SkipValue(%.40q, %d) = %d, %v; want %d", tc.in, tc.at, end, ok, tc.end)
		}
	}
	if end, ok := SkipString([]byte(`x"a\"b"`), 1); !ok || end != 7 {
		t.Errorf("SkipString = %d, %v; want 7", end, ok)
	}
	for _, at := range []int{-1, 0, 7} {
		if _, ok := SkipString([]byte(`x"a\"b"`), at); ok {
			t.Errorf("SkipString at %d: ok, want not a string", at)
		}
	}
	if got := SkipSpace([]byte(" \t\r\n x "), 0); got != 5 {
		t.Errorf("SkipSpace = %d, want 5", got)
	}
	if got := SkipSpace([]byte("x  "), 1); got != 3 {
		t.Errorf("SkipSpace at the end = %d, want 3", got)
	}
}

// FuzzSkipValue checks the exported scanners against encoding/json: on
// valid JSON, SkipValue ends where the value ends, and inside an array
// where each element does (SkipString where a string does); on any input
// they never panic and stay in bounds.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,{"b":null}],"c":"d\"e"}`, ` [ 1 , "x\\" , true, {}, [] ] `, `"\u00e9\\"`, `-1.5e+3`,
		`{"a" 1}`, `[1,]`, `{"a":}`, `"unterminated`, `[[[[{"a":[]}]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		i := SkipSpace(b, 0)
		end, ok := SkipValue(b, i)
		if ok && (end <= i || end > len(b)) {
			t.Fatalf("SkipValue(%q, %d) = %d out of bounds", b, i, end)
		}
		if i < len(b) && b[i] == '"' {
			if se, sok := SkipString(b, i); se != end || sok != ok {
				t.Fatalf("on %q SkipString = %d, %v, SkipValue = %d, %v", b, se, sok, end, ok)
			}
		}
		// encoding/json allows 10000 levels of nesting, SkipValue fewer.
		if !json.Valid(b) || bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) > maxDepth {
			return
		}
		if !ok || SkipSpace(b, end) != len(b) {
			t.Fatalf("valid JSON %q: SkipValue = %d, %v, want %d", b, end, ok, len(bytes.TrimRight(b, " \t\r\n")))
		}
		var elems []json.RawMessage
		if json.Unmarshal(b, &elems) != nil {
			return // not an array
		}
		j := SkipSpace(b, i+1)
		for k, want := range elems {
			e, ok := SkipValue(b, j)
			if !ok || !bytes.Equal(b[j:e], bytes.TrimSpace(want)) {
				t.Fatalf("element %d of %q: SkipValue = %q, %v; want %q", k, b, b[j:max(e, j)], ok, want)
			}
			if j = SkipSpace(b, e); k < len(elems)-1 {
				j = SkipSpace(b, j+1) // past the comma
			}
		}
	})
}
