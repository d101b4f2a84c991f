package syslog

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Message
		err  bool
	}{
		{"rfc5424 with sd and msg", `<165>1 2025-03-01T08:01:05.123Z relay01 alertrelay - cybertrace.detection [a@1 eventId="x\"y\]z\\w" p="q"][b@2] CEF:0|a|b|c|d|e|5|x=y`,
			Message{Format: FormatRFC5424, Facility: 20, Severity: 5, Timestamp: "2025-03-01T08:01:05.123Z", Hostname: "relay01",
				AppName: "alertrelay", ProcID: "-", MsgID: "cybertrace.detection",
				SD:  []SDElement{{ID: "a@1", Params: []SDParam{{"eventId", `x"y]z\w`}, {"p", "q"}}}, {ID: "b@2"}},
				Msg: []byte("CEF:0|a|b|c|d|e|5|x=y")}, false},
		{"rfc5424 nil sd no msg", `<0>1 - - - - - -`,
			Message{Format: FormatRFC5424, Timestamp: "-", Hostname: "-", AppName: "-", ProcID: "-", MsgID: "-", Msg: []byte{}}, false},
		{"rfc5424 RFC example", `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed`,
			Message{Format: FormatRFC5424, Facility: 4, Severity: 2, Timestamp: "2003-10-11T22:14:15.003Z", Hostname: "mymachine.example.com",
				AppName: "su", ProcID: "-", MsgID: "ID47", Msg: []byte("'su root' failed")}, false},
		{"rfc5424 unknown escape kept", `<13>1 - - - - - [a@1 k="a\nb"] m`,
			Message{Format: FormatRFC5424, Facility: 1, Severity: 5, Timestamp: "-", Hostname: "-", AppName: "-", ProcID: "-", MsgID: "-",
				SD: []SDElement{{ID: "a@1", Params: []SDParam{{"k", `a\nb`}}}}, Msg: []byte("m")}, false},
		{"rfc3164", `<164>Mar  1 08:01:05 relay01 alertrelay: CEF:0|x`,
			Message{Format: FormatRFC3164, Facility: 20, Severity: 4, Timestamp: "Mar  1 08:01:05", Hostname: "relay01",
				AppName: "alertrelay", Msg: []byte("CEF:0|x")}, false},
		{"rfc3164 with pid", `<13>Oct 11 22:14:15 host su[123]: hi`,
			Message{Format: FormatRFC3164, Facility: 1, Severity: 5, Timestamp: "Oct 11 22:14:15", Hostname: "host",
				AppName: "su", ProcID: "123", Msg: []byte("hi")}, false},
		{"no pri", `hello`, Message{}, true},
		{"pri too big", `<192>1 - - - - - -`, Message{}, true},
		{"pri leading zero", `<01>1 - - - - - -`, Message{}, true},
		{"unterminated sd", `<13>1 - - - - - [a@1 k="v"`, Message{}, true},
		{"unterminated value", `<13>1 - - - - - [a@1 k="v]`, Message{}, true},
		{"space after sd missing", `<13>1 - - - - - [a@1]x`, Message{}, true},
		{"msgid too long", `<13>1 - - - - ` + strings.Repeat("m", 33) + ` -`, Message{}, true},
		{"3164 bad time", `<13>Foo  1 08:01:05 h t: m`, Message{}, true},
		{"3164 no colon", `<13>Mar  1 08:01:05 h tag m`, Message{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	in := "5 <1>1 " + "3 abc" + "<13>line one\r\n" + "\n" + "12 two\nlines\nx!" + "<14>last\n" + "7 short"
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	type frame struct{ Data, Framing string }
	var got []frame
	var err error
	for {
		var f []byte
		var framing string
		f, framing, err = ReadFrame(r, nil, 100)
		if err != nil {
			break
		}
		got = append(got, frame{string(f), framing})
	}
	want := []frame{
		{"<1>1 ", FramingOctetCounting},
		{"abc", FramingOctetCounting},
		{"<13>line one", FramingLF},
		{"", FramingLF},
		{"two\nlines\nx!", FramingOctetCounting},
		{"<14>last", FramingLF},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
	for _, bad := range []string{"99999 x", "12x3 y", strings.Repeat("<", 200) + "\n"} {
		if _, _, err := ReadFrame(bufio.NewReader(strings.NewReader(bad)), nil, 100); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.20q: %v, want ErrMalformed", bad, err)
		}
	}
}

func TestEventID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<13>1 - - - - - [a@1 eventId="sd-id"] CEF:0|a|b|c|d|e|5|externalId=cef-id`, "sd-id"},
		{`<13>1 - - - - - - CEF:0|a|b|c|d|e|5|rt=1 externalId=cef\=id x=y`, "cef=id"},
		{`<13>1 - - - - - - CEF:0|a|b|c|d|e|5|xexternalId=no`, ""},
		{`<13>Mar  1 08:01:05 h t: {"event":{"id":"json-id"}}`, "json-id"},
		{`<13>Mar  1 08:01:05 h t: plain text`, ""},
	} {
		m, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := EventID(&m); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<165>1 2025-03-01T08:01:05.123Z relay01 alertrelay - ID [a@1 k="v\"\]\\"] CEF:0|a|b|c|d|e|5|x=y`,
		`<164>Mar  1 08:01:05 relay01 alertrelay[1]: m`,
		`<0>1 - - - - - -`, `<13>`, `<999>`, `<13>1 - - - - - [`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
			t.Fatalf("PRI out of range: %d %d", m.Facility, m.Severity)
		}
		if m.Format != FormatRFC5424 && m.Format != FormatRFC3164 {
			t.Fatalf("format %q", m.Format)
		}
		_ = EventID(&m)
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("5 hello<13>x\n3 abc"))
	f.Add([]byte("999999999999 x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(strings.NewReader(string(b)), 16)
		total := 0
		for i := 0; i <= len(b); i++ {
			fr, _, err := ReadFrame(r, nil, 64)
			if err != nil {
				return
			}
			if len(fr) > 65 {
				t.Fatalf("frame of %d bytes over max 64", len(fr))
			}
			total += len(fr)
		}
		if total > len(b) {
			t.Fatalf("read %d bytes of frames from %d bytes", total, len(b))
		}
	})
}
