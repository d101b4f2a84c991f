package event

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain ascii value that is long enough for the fast path",
		`quote " and backslash \ inside`, "tab\tnew\nline\rcr\x00nul\x1f",
		"ünïcödé and 日本語", "line sep \u2028 para \u2029",
		"12345678\"2345678\\", strings.Repeat("a", 7) + "\x01" + strings.Repeat("b", 9),
		"<html> & 'single'", "\x7f delete",
	}
	for _, c := range cases {
		got := AppendJSONString(nil, []byte(c))
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", c, got, err)
		}
		if back != c {
			t.Errorf("round trip %q -> %s -> %q", c, got, back)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add([]byte("plain"), uint8(0))
	f.Add([]byte("\xff\xfe bad utf8 \" \\ \x01"), uint8(3))
	f.Fuzz(func(t *testing.T, s []byte, off uint8) {
		got := AppendJSONString([]byte("prefix"), s)
		if string(got[:6]) != "prefix" {
			t.Fatal("prefix clobbered")
		}
		var back string
		if err := json.Unmarshal(got[6:], &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", got[6:], err)
		}
		if utf8.Valid(s) && back != string(s) {
			t.Fatalf("round trip %q -> %q", s, back)
		}
		if !utf8.Valid(s) && back != strings.ToValidUTF8(string(s), "\uFFFD") && !utf8.ValidString(back) {
			t.Fatalf("repair %q -> %q", s, back)
		}
	})
}

func TestPlain8(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := []byte("abcdefgh")
		b[c%8] = byte(c)
		v := uint64(0)
		for i := 7; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		want := c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
		if got := plain8(v); got != want {
			t.Errorf("byte %#x: plain8 = %v, want %v", c, got, want)
		}
	}
}

func TestBatch(t *testing.T) {
	b := NewBatch(2, 4)
	b.Append([]byte("one"))
	buf := b.Buffer()
	buf = append(buf, "two"...)
	b.Commit(buf)
	b.Commit(b.Buffer()) // nothing appended: ignored
	b.Append([]byte("three"))
	if b.Len() != 3 || b.Size() != 14 || string(b.Doc(1)) != "two" {
		t.Fatalf("len %d size %d doc1 %q", b.Len(), b.Size(), b.Doc(1))
	}
	if got := string(b.NDJSON()); got != "one\ntwo\nthree\n" {
		t.Errorf("ndjson %q", got)
	}
	s := b.Slice(1, 3)
	if d := cmp.Diff([]string{"two", "three"}, []string{string(s.Doc(0)), string(s.Doc(1))}); d != "" {
		t.Error(d)
	}
	o := NewBatch(0, 0)
	o.AppendBatch(s)
	o.AppendBatch(b)
	if o.Len() != 5 || string(o.Doc(4)) != "three" {
		t.Errorf("AppendBatch: %d docs, last %q", o.Len(), o.Doc(4))
	}
	b.Reset()
	if b.Len() != 0 || b.Size() != 0 {
		t.Error("Reset")
	}
}

func TestBatchPoolReusesAfterLastRelease(t *testing.T) {
	p := NewBatchPool(4, 8, 2)
	b := p.Get()
	b.Append([]byte("x"))
	b.Retain()  // a queue holds it
	b.Release() // the source lets go
	if b.Len() != 1 {
		t.Fatal("batch emptied while still referenced")
	}
	b.Release() // the queue acks: back to the pool, emptied
	if b.Len() != 0 {
		t.Fatal("released batch not reset")
	}
	defer func() {
		if recover() == nil {
			t.Error("releasing too often did not panic")
		}
	}()
	NewBatch(1, 1).Release()
	n := NewBatch(1, 1)
	n.Release()
	n.Release()
}

func TestIDs(t *testing.T) {
	g := NewIDGenSeed(1)
	a, b := g.Next(), g.Next()
	if len(a) != 24 || a >= b || a[:11] != b[:11] {
		t.Errorf("ids %q %q", a, b)
	}
	if NewIDGen().Next()[:11] == NewIDGen().Next()[:11] {
		t.Error("two generators share a prefix")
	}
}

func BenchmarkAppendJSONString(b *testing.B) {
	s := []byte("HEUR:Trojan.Win32.Generic first_seen 10.07.2015 23:53 http://example.com/path?q=1")
	var buf []byte
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendJSONString(buf[:0], s)
	}
}
