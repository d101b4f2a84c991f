package kv

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

// The documented 5.x example configuration (spec B5), with the record
// context rendered as " name=value".
const (
	docEventFormat   = "%RE_DATE% category=%Category% matchedIndicator=%MatchedIndicator% url=%RE_URL% src=%SRC_IP% ip=%RE_IP% md5=%RE_MD5% sha1=%RE_SHA1% sha256=%RE_SHA256% usrName=%RE_USERNAME%%RecordContext%"
	docContextFormat = " %ParamName%=%ParamValue%"
)

func TestTemplate(t *testing.T) {
	tests := []struct {
		name       string
		event, ctx string
		line       string
		prefix     string
		want       []string
		kind       event.Kind
		wantErr    error
	}{
		{name: "documented layout with duplicate category",
			event: docEventFormat, ctx: docContextFormat,
			line:   "Mar 01 08:01:02 category=KL_Malicious_URL matchedIndicator=fakess123.nu/* url=http://fakess123.nu src=10.0.0.5 ip=- md5=- sha1=- sha256=- usrName=alice first_seen=10.07.2015 23:53 category=malware threat=HEUR:Trojan.Script.Generic",
			prefix: "Mar 01 08:01:02",
			want: []string{"template category=KL_Malicious_URL", "template matchedIndicator=fakess123.nu/*", "template url=http://fakess123.nu",
				"template src=10.0.0.5", "template usrName=alice", "context first_seen=10.07.2015 23:53", "context category=malware", "context threat=HEUR:Trojan.Script.Generic"},
			kind: event.KindDetection},
		{name: "username with spaces before context",
			event: docEventFormat, ctx: docContextFormat,
			line: "- category=C matchedIndicator=M url=- src=- ip=- md5=- sha1=- sha256=- usrName=John Smith popularity=1",
			want: []string{"template category=C", "template matchedIndicator=M", "template usrName=John Smith", "context popularity=1"},
			kind: event.KindDetection},
		{name: "tab separated without keys, trailing-space context",
			event: "%Category%\t%MatchedIndicator%\t%Confidence%\t%SourceId%\t%RecordContext%", ctx: "%ParamName%:%ParamValue% ",
			line: "KL_Malicious_Hash_MD5\tC912705B4BBB14EC7E78FA8B370532C9\t100\tdefault\tMD5:C912705B4BBB14EC7E78FA8B370532C9 first_seen:01.02.2013 10:00 popularity:1 ",
			want: []string{"template category=KL_Malicious_Hash_MD5", "template matchedIndicator=C912705B4BBB14EC7E78FA8B370532C9",
				"template confidence=100", "template sourceId=default", "context MD5=C912705B4BBB14EC7E78FA8B370532C9",
				"context first_seen=01.02.2013 10:00", "context popularity=1"},
			kind: event.KindDetection},
		{name: "pipe separated (KUMA look-alike)",
			event: "Category=%Category%|MatchedIndicator=%MatchedIndicator%%RecordContext%", ctx: "|%ParamName%=%ParamValue%",
			line: "Category=KL_Phishing_URL|MatchedIndicator=fakess123ap.nu/*|first_seen=19.05.2024 08:32|popularity=1",
			want: []string{"template Category=KL_Phishing_URL", "template MatchedIndicator=fakess123ap.nu/*", "context first_seen=19.05.2024 08:32", "context popularity=1"},
			kind: event.KindDetection},
		{name: "alert lines bypass the template",
			event: docEventFormat, ctx: docContextFormat,
			line: "alert=KL_ALERT_ServiceStopped",
			want: []string{"template alert=KL_ALERT_ServiceStopped"}, kind: event.KindServiceAlert},
		{name: "mismatch",
			event: "X %Category% Y", line: "Z KL", wantErr: ErrTemplateMismatch},
		{name: "missing literal",
			event: "%Category% Y=%RE_URL%", line: "KL no", wantErr: ErrTemplateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := NewTemplate(tt.event, tt.ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ev event.Event
			err = tpl.Parse([]byte(tt.line), &ev)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := view(tt.line, &ev, nil)
			if d := cmp.Diff(tt.want, got.Fields); d != "" {
				t.Errorf("fields (-want +got):\n%s", d)
			}
			if got.Prefix != tt.prefix || ev.Kind != tt.kind {
				t.Errorf("prefix, kind = %q, %v; want %q, %v", got.Prefix, ev.Kind, tt.prefix, tt.kind)
			}
		})
	}
}

func TestNewTemplateErrors(t *testing.T) {
	for _, tt := range []struct{ event, ctx string }{
		{"%Category%%MatchedIndicator%", ""},
		{"no placeholders", ""},
		{"%Category", ""},
		{"%Category% %RecordContext%", "%ParamName%%ParamValue%"},
		{"%Category% %RecordContext%", "%ParamValue%=%ParamName%"},
		{"%Category% %RecordContext%", "%ParamName%=%ParamValue%"},
	} {
		if _, err := NewTemplate(tt.event, tt.ctx); err == nil {
			t.Errorf("NewTemplate(%q, %q) = nil error", tt.event, tt.ctx)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	seedFuzz(f)
	tpl, err := NewTemplate(docEventFormat, docContextFormat)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev event.Event
		if err := tpl.Parse(line, &ev); err != nil {
			return
		}
		for _, fl := range ev.Fields {
			if isEmpty(fl.Value) {
				t.Fatalf("empty value kept for %q", fl.Key)
			}
		}
	})
}

func BenchmarkTemplate(b *testing.B) {
	tpl, _ := NewTemplate("%RE_DATE% category=%Category% matchedIndicator=%MatchedIndicator% url=%RE_URL% src=%SRC_IP% ip=%RE_IP% md5=%RE_MD5% sha1=%RE_SHA1% sha256=%RE_SHA256% usrName=%RE_USERNAME% confidence=%Confidence%%RecordContext%", docContextFormat)
	line := []byte(readLines(b, "testdata/seed.txt")[0])
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	var ev event.Event
	for b.Loop() {
		ev.Reset()
		if err := tpl.Parse(line, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
