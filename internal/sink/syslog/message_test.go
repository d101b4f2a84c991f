package syslog

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/format/cef"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func testEncoder(cfg Config) *encoder {
	cfg.SetDefaults()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:514"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "relay01"
	}
	s, err := New(cfg, pipelineDepsFixed())
	if err != nil {
		panic(err)
	}
	return &s.enc
}

// TestGolden pins the messages of every sample document in each format.
func TestGolden(t *testing.T) {
	docs := sinktest.Golden[[]byte](t)
	for _, tc := range []struct {
		file string
		cfg  Config
	}{
		{"rfc5424_cef.golden", Config{}},
		{"rfc3164_cef.golden", Config{Format: FormatRFC3164}},
		{"rfc5424_json_fixed.golden", Config{Body: BodyJSON, Severity: "info", Facility: "local0", MsgID: "ALERT", SDID: "x@1"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			enc := testEncoder(tc.cfg)
			enc.max = 1 << 20
			var got []byte
			for _, d := range docs {
				var err error
				if got, _, err = enc.appendMessage(got, d); err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

// TestCEFParsesBack checks that every CEF body reads back, with the
// project's CEF parser, to the fields it was built from: escaping of '|',
// '\', '=' and newlines included.
func TestCEFParsesBack(t *testing.T) {
	docs := append(sinktest.Golden[[]byte](t), []byte(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"e|1","kind":"alert","dataset":"cynet.alert","severity":5},`+
		`"observer":{"vendor":"Ven|dor\\","product":"P"},"message":"a|b\\c\nd","rule":{"description":"x=y\\z\nline2"},`+
		`"user":{"name":"ACME\\bob"},"file":{"path":"c:\\a=b|c"}}`))
	for i, d := range docs {
		dd, err := decodeDoc(d)
		if err != nil {
			t.Fatal(err)
		}
		line := appendCEF(nil, dd)
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("doc %d: CEF has a raw newline: %q", i, line)
		}
		var ev event.Event
		if err := cef.Parse(line, &ev); err != nil {
			t.Fatalf("doc %d: %v\n%s", i, err, line)
		}
		get := func(g event.Group, k string) string {
			v, _ := ev.Get(g, k)
			return string(v)
		}
		wantName := firstOf(dd.Message, dd.Rule.Name, dd.Threat.Feed.Name, dd.Cybertrace.Category, dd.Cybertrace.Alert, dd.Event.Action, dd.Event.Dataset)
		wantName = strings.ReplaceAll(wantName, "\n", " ")
		got := map[string]string{
			"vendor":     get(event.GroupHeader, "deviceVendor"),
			"name":       get(event.GroupHeader, "name"),
			"externalId": get(event.GroupExtension, "externalId"),
			"msg":        get(event.GroupExtension, "msg"),
			"suser":      get(event.GroupExtension, "suser"),
			"filePath":   get(event.GroupExtension, "filePath"),
		}
		want := map[string]string{
			"vendor":     string(dd.Observer.Vendor),
			"name":       wantName,
			"externalId": string(dd.Event.ID),
			"msg":        string(dd.Rule.Description),
			"suser":      string(dd.User.Name),
			"filePath":   string(dd.File.Path),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("doc %d: fields (-want +got):\n%s\n%s", i, diff, line)
		}
	}
}

func TestSeverityMapping(t *testing.T) {
	for _, tc := range []struct {
		doc       string
		cef, slog int
	}{
		{`{"event":{"kind":"alert","dataset":"cynet.alert","severity":1}}`, 1, SevInfo},
		{`{"event":{"kind":"alert","dataset":"cynet.alert","severity":2}}`, 3, SevNotice},
		{`{"event":{"kind":"alert","dataset":"cynet.alert","severity":3}}`, 5, SevWarning},
		{`{"event":{"kind":"alert","dataset":"cynet.alert","severity":4}}`, 8, SevError},
		{`{"event":{"kind":"alert","dataset":"cynet.alert","severity":5}}`, 10, SevCritical},
		{`{"event":{"kind":"alert","dataset":"cynet.alert","severity":99}}`, 5, SevWarning},
		{`{"event":{"kind":"alert","dataset":"cybertrace.detection"},"threat":{"indicator":{"confidence":"High"}}}`, 8, SevWarning},
		{`{"event":{"kind":"alert","dataset":"cybertrace.detection"},"threat":{"indicator":{"confidence":"Medium"}}}`, 5, SevWarning},
		{`{"event":{"kind":"alert","dataset":"cybertrace.detection"},"threat":{"indicator":{"confidence":"Low"}}}`, 3, SevWarning},
		{`{"event":{"kind":"alert","dataset":"cybertrace.detection"},"threat":{"indicator":{"confidence":"None"}}}`, 1, SevWarning},
		{`{"event":{"kind":"alert","dataset":"cybertrace.detection"}}`, 5, SevWarning},
		{`{"event":{"kind":"event","dataset":"cybertrace.service_alert"}}`, 3, SevNotice},
		{`{"event":{"kind":"event","dataset":"cybertrace.lookup_finished"}}`, 1, SevNotice},
		{`{"event":{"kind":"event","dataset":"other"}}`, 5, SevNotice},
	} {
		d, err := decodeDoc([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		if c, s := cefSeverity(d), syslogSeverity(d); c != tc.cef || s != tc.slog {
			t.Errorf("%s: cef %d syslog %d, want %d %d", tc.doc, c, s, tc.cef, tc.slog)
		}
	}
}

func TestMessageFields(t *testing.T) {
	doc := []byte(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"a\"b]c\\d","kind":"event","dataset":"cybertrace.service_alert","provider":"ct"},"cybertrace":{"alert":"KL_ALERT_ServiceStarted"}}`)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"sd escaping", Config{Body: BodyJSON, Facility: "local4"},
			`<165>1 2025-03-01T08:01:05.123Z relay01 alertrelay - cybertrace.service_alert [alertrelay@32473 eventId="a\"b\]c\\d" dataset="cybertrace.service_alert" provider="ct"] ` + string(doc)},
		{"no sd, fixed msgid and severity", Config{Body: BodyJSON, SDID: "", MsgID: "M1", Severity: "crit", Facility: "0"},
			`<2>1 2025-03-01T08:01:05.123Z relay01 alertrelay - M1 - ` + string(doc)},
		{"rfc3164", Config{Body: BodyJSON, Format: FormatRFC3164, Facility: "user", Severity: "7", AppName: "relay"},
			`<15>Mar  1 08:01:05 relay01 relay: ` + string(doc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			sd := cfg.SDID
			enc := testEncoder(cfg)
			if tc.name == "no sd, fixed msgid and severity" {
				enc.sdID = sd
			}
			got, cut, err := enc.appendMessage(nil, doc)
			if err != nil || cut {
				t.Fatal(err, cut)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimestampFallsBackToNow(t *testing.T) {
	enc := testEncoder(Config{Body: BodyJSON, Severity: "info"})
	got, _, err := enc.appendMessage(nil, []byte(`{"@timestamp":"yesterday","event":{"id":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "<166>1 2025-03-01T09:00:00.000Z relay01 "; !strings.HasPrefix(string(got), want) {
		t.Errorf("got %q, want prefix %q", got, want)
	}
}

func TestTruncateAtRuneBoundary(t *testing.T) {
	enc := testEncoder(Config{Body: BodyOriginal, Severity: "info", SDID: ""})
	enc.sdID = ""
	enc.max = 500
	orig := strings.Repeat("é", 400) // 800 bytes
	doc := []byte(`{"event":{"id":"t1","original":"` + orig + `"}}`)
	got, cut, err := enc.appendMessage(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	if !cut || len(got) > 500 || len(got) < 498 || !utf8.Valid(got) {
		t.Errorf("cut=%v len=%d valid=%v", cut, len(got), utf8.Valid(got))
	}
}

func TestLFFramingReplacesNewlines(t *testing.T) {
	enc := testEncoder(Config{Body: BodyOriginal, Severity: "info"})
	enc.noLF = true
	got, _, err := enc.appendMessage(nil, []byte(`{"event":{"id":"t1","original":"line1\nline2\r\n"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(got), " line1 line2  ") {
		t.Errorf("got %q", got)
	}
}

func TestFrame(t *testing.T) {
	if got := string(appendFrame(nil, []byte("<13>1 - - - - - - hé\nllo"), true)); got != "25 <13>1 - - - - - - hé\nllo" {
		t.Errorf("octet counting: %q", got)
	}
	if got := string(appendFrame(nil, []byte("<13>x"), false)); got != "<13>x\n" {
		t.Errorf("lf: %q", got)
	}
}
