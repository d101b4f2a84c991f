package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cynetAlerts returns the Entities of testdata/cynet_alerts.json, each
// exactly as it appears in the file (whitespace and escapes included).
func cynetAlerts(t testing.TB) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/cynet_alerts.json")
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Entities []json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	return env.Entities
}

func TestCynetGolden(t *testing.T) {
	n := NewCynet(CynetOptions{Source: "cynet-acme"})
	var out []byte
	for i, raw := range cynetAlerts(t) {
		start := len(out)
		var err error
		out, err = n.Append(out, raw, received)
		if err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
		if doc := out[start:]; !json.Valid(doc) || bytes.IndexByte(doc, '\n') >= 0 {
			t.Fatalf("alert %d: invalid document %s", i, doc)
		}
		out = append(out, '\n')
	}
	golden(t, "testdata/cynet_alerts.golden.ndjson", out)
}

// TestCynetPreservesMembers checks the cynet object against encoding/json's
// reading of the alert: every member with the same value, JSON-in-string
// members decoded when they hold an object or array, the enumeration names
// added, duplicates resolved to the first occurrence.
func TestCynetPreservesMembers(t *testing.T) {
	n := NewCynet(CynetOptions{Source: "cynet-acme"})
	for i, raw := range cynetAlerts(t) {
		doc, err := n.Append(nil, raw, received)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Cynet map[string]any `json:"cynet"`
		}
		if err := json.Unmarshal(doc, &got); err != nil {
			t.Fatal(err)
		}
		want := firstMembers(t, raw)
		for k, v := range want {
			if s, ok := v.(string); ok && strings.Contains(k, "Json") {
				var inner any
				if json.Unmarshal([]byte(s), &inner) == nil {
					switch inner.(type) {
					case map[string]any, []any:
						want[k] = inner
					}
				}
			}
		}
		for _, k := range []string{"severity_name", "status_name", "alert_type_name"} {
			if v, ok := got.Cynet[k]; ok {
				want[k] = v
			}
		}
		if d := cmp.Diff(want, got.Cynet); d != "" {
			t.Errorf("alert %d: cynet (-want +got):\n%s", i, d)
		}
	}
}

// firstMembers decodes an object keeping the first occurrence of each key.
func firstMembers(t *testing.T, raw []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	m := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if _, dup := m[tok.(string)]; !dup {
			m[tok.(string)] = v
		}
	}
	return m
}

// cynetDoc is the part of a document the table tests look at.
type cynetDoc struct {
	Timestamp string `json:"@timestamp"`
	Event     struct {
		ID, Original string
		Severity     *int64
	}
	Host        struct{ ID, IP string }
	File        struct{ Name, Path string }
	Destination struct{ IP, Domain string }
	Cynet       map[string]any
}

func appendCynet(t *testing.T, opt CynetOptions, raw string) cynetDoc {
	t.Helper()
	doc, err := NewCynet(opt).Append(nil, []byte(raw), received)
	if err != nil {
		t.Fatalf("Append(%s): %v", raw, err)
	}
	var d cynetDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	return d
}

func TestCynetA10(t *testing.T) {
	raw := string(cynetAlerts(t)[0])
	d := appendCynet(t, CynetOptions{Source: "x", IncludeOriginal: true}, raw)
	if d.Event.Original != raw {
		t.Errorf("event.original = %q", d.Event.Original)
	}
	if d.Event.ID != "cy-88231-1740816062" || d.Timestamp != "2025-03-01T08:01:02.000Z" {
		t.Errorf("id %q, @timestamp %q", d.Event.ID, d.Timestamp)
	}
	if d.Event.Severity == nil || *d.Event.Severity != 4 || d.Host.ID != "5512" || d.Host.IP != "10.1.4.17" {
		t.Errorf("event %+v host %+v", d.Event, d.Host)
	}
	if d.File.Name != "inv.exe" || d.File.Path != `c:\users\bob\downloads\inv.exe` {
		t.Errorf("file %+v", d.File)
	}
	if d.Destination != (struct{ IP, Domain string }{}) {
		t.Errorf("destination %+v: AlertIp 0 and an empty AlertDomain are none", d.Destination)
	}
	desc, _ := d.Cynet["IncidentJsonDescription"].(map[string]any)
	if desc["Host Ip"] != "10.1.4.17" {
		t.Errorf("IncidentJsonDescription = %#v", d.Cynet["IncidentJsonDescription"])
	}
	if d.Cynet["severity_name"] != "High" || d.Cynet["status_name"] != "Open" || d.Cynet["alert_type_name"] != "file" {
		t.Errorf("names %v %v %v", d.Cynet["severity_name"], d.Cynet["status_name"], d.Cynet["alert_type_name"])
	}
}

func TestCynetTimeAndID(t *testing.T) {
	for _, tt := range []struct{ raw, ts, id string }{
		{`{"ClientDbId":1,"LastSeenUtc":"2025-03-01T08:01:02Z","LastSeen":"2025-03-01T07:00:00","DateIn":"2025-01-01T00:00:00"}`, "2025-03-01T08:01:02.000Z", "cy-1-1740816062"},
		{`{"ClientDbId":1,"LastSeenUtc":"garbage","LastSeen":"2025-03-01T08:01:02","DateIn":"2025-01-01T00:00:00"}`, "2025-03-01T08:01:02.000Z", "cy-1-1740816062"},
		{`{"ClientDbId":1,"LastSeenUtc":null,"DateIn":"2025-03-01 08:01:02"}`, "2025-03-01T08:01:02.000Z", "cy-1-1740816062"},
		{`{"ClientDbId":-7}`, "2025-03-01T08:01:05.123Z", "cy--7"},
		{`{"ClientDbId":"12","LastSeenUtc":"2025-03-01T08:01:02.9999999-01:30"}`, "2025-03-01T09:31:02.999Z", "cy-12-1740821462"},
	} {
		d := appendCynet(t, CynetOptions{}, tt.raw)
		if d.Timestamp != tt.ts || d.Event.ID != tt.id {
			t.Errorf("%s: @timestamp %s id %s, want %s %s", tt.raw, d.Timestamp, d.Event.ID, tt.ts, tt.id)
		}
	}
}

func TestParseCynetTime(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2025-03-01T08:01:02Z", time.Date(2025, 3, 1, 8, 1, 2, 0, time.UTC), true},
		{"2025-03-01T08:01:02", time.Date(2025, 3, 1, 8, 1, 2, 0, time.UTC), true},
		{"2025-03-01 08:01:02", time.Date(2025, 3, 1, 8, 1, 2, 0, time.UTC), true},
		{"2025-03-01T08:01:02.407Z", time.Date(2025, 3, 1, 8, 1, 2, 407e6, time.UTC), true},
		{"2025-03-01T08:01:02.1234567891Z", time.Date(2025, 3, 1, 8, 1, 2, 123456789, time.UTC), true},
		{"2025-03-01T08:01:02+0200", time.Date(2025, 3, 1, 6, 1, 2, 0, time.UTC), true},
		{"2025-03-01T08:01:02-00:30", time.Date(2025, 3, 1, 8, 31, 2, 0, time.UTC), true},
		{"2025-02-29T08:01:02Z", time.Time{}, false},
		{"2025-03-01T24:00:00Z", time.Time{}, false},
		{"2025-03-01T08:01:02.Z", time.Time{}, false},
		{"2025-03-01T08:01:02 Z", time.Time{}, false},
		{"2025-03-01T08:01:02+2:00", time.Time{}, false},
		{"2025-03-01", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := parseCynetTime([]byte(tt.in))
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseCynetTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCynetEnumNames(t *testing.T) {
	sev := map[int64]string{1: "Information", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 99: "Unknown", 0: "unknown", 6: "unknown", -1: "unknown", 100: "unknown"}
	for n, want := range sev {
		if got := cynetSeverityName(n); got != want {
			t.Errorf("severity %d = %q, want %q", n, got, want)
		}
	}
	status := map[int64]string{0: "Open", 1: "Pending", 2: "Ignored", 3: "Closed", 4: "unknown", -1: "unknown"}
	for n, want := range status {
		if got := cynetStatusName(n); got != want {
			t.Errorf("status %d = %q, want %q", n, got, want)
		}
	}
	types := map[int64]string{0: "file", 1: "domain", 2: "ip", 3: "url", 4: "user", 5: "host", 6: "system", 7: "unknown", -1: "unknown", 1 << 40: "unknown"}
	for n, want := range types {
		if got := cynetAlertTypeName(n); got != want {
			t.Errorf("alert type %d = %q, want %q", n, got, want)
		}
	}
	// Only integers (or strings of one) are named.
	for raw, want := range map[string]any{
		`{"ClientDbId":1,"Severity":4}`:    "High",
		`{"ClientDbId":1,"Severity":"5"}`:  "Critical",
		`{"ClientDbId":1,"Severity":7}`:    "unknown",
		`{"ClientDbId":1,"Severity":4.5}`:  nil,
		`{"ClientDbId":1,"Severity":null}`: nil,
		`{"ClientDbId":1}`:                 nil,
	} {
		if got := appendCynet(t, CynetOptions{}, raw).Cynet["severity_name"]; got != want {
			t.Errorf("%s: severity_name = %v, want %v", raw, got, want)
		}
	}
}

func TestCynetAlertIP(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		le   bool
		want string // "" for none
	}{
		{0, false, ""},
		{3221225985, false, "192.0.2.1"},
		{-1073741311, false, "192.0.2.1"}, // the same as a signed 32-bit integer
		{16777343, false, "1.0.0.127"},
		{16777343, true, "127.0.0.1"}, // .NET IPAddress.Address order
		{3221225985, true, "1.2.0.192"},
		{4294967295, false, "255.255.255.255"},
		{1, false, "0.0.0.1"},
		{4294967296, false, ""},
		{-2147483649, false, ""},
	} {
		v, ok := cynetAlertIP(tt.n, tt.le)
		got := ""
		if ok {
			got = string(appendIPv4(nil, v))
			if _, err := netip.ParseAddr(got); err != nil {
				t.Errorf("%d: %q does not parse: %v", tt.n, got, err)
			}
		}
		if got != tt.want {
			t.Errorf("cynetAlertIP(%d, %v) = %q, want %q", tt.n, tt.le, got, tt.want)
		}
	}
	d := appendCynet(t, CynetOptions{}, `{"ClientDbId":1,"AlertIp":3221225985,"AlertDomain":"fakess123.nu"}`)
	if d.Destination.IP != "192.0.2.1" || d.Destination.Domain != "fakess123.nu" {
		t.Errorf("destination %+v", d.Destination)
	}
	d = appendCynet(t, CynetOptions{AlertIPLittleEndian: true}, `{"ClientDbId":1,"AlertIp":"16777343"}`)
	if d.Destination.IP != "127.0.0.1" {
		t.Errorf("destination %+v", d.Destination)
	}
}

func TestCynetJSONInString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`"{\"a\":1}"`, `{"a":1}`},
		{`"[1, 2,\n 3]"`, `[1,2,3]`},
		{`" \t{\"a\" : { \"b\" : [ ] } }\r\n"`, `{"a":{"b":[]}}`},
		{`"{\"s\":\"\\u00e9\\ud83d\\ude00\\\"x\"}"`, `{"s":"\u00e9\ud83d\ude00\"x"}`},
		{`"{\"lone\":\"\\ud800\"}"`, `{"lone":"\ud800"}`}, // escapes inside inner strings stay escapes
		{`"{\"a\":1} x"`, `"{\"a\":1} x"`},
		{`"{\"a\":1"`, `"{\"a\":1"`},
		{`"42"`, `"42"`},
		{`"\"str\""`, `"\"str\""`},
		{`""`, `""`},
		{`"{\"a\":\"\u0001\"}"`, `"{\"a\":\"\u0001\"}"`}, // a control character inside the inner string: not JSON
		{`"\u007b\u007d"`, `{}`},
		{`{"already":"object"}`, `{"already":"object"}`},
	} {
		raw := `{"ClientDbId":1,"IncidentJsonDescription":` + tt.in + `}`
		doc, err := NewCynet(CynetOptions{}).Append(nil, []byte(raw), received)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !json.Valid(doc) {
			t.Fatalf("invalid: %s", doc)
		}
		want := `"cynet":{"ClientDbId":1,"IncidentJsonDescription":` + tt.want + `}}`
		if !bytes.HasSuffix(doc, []byte(want)) {
			t.Errorf("%s:\n got %s\nwant suffix %s", tt.in, doc, want)
		}
	}
	// Members not named *Json* are never decoded.
	doc, _ := NewCynet(CynetOptions{}).Append(nil, []byte(`{"ClientDbId":1,"Description":"{\"a\":1}"}`), received)
	if !bytes.Contains(doc, []byte(`"Description":"{\"a\":1}"`)) {
		t.Errorf("decoded a member without Json in its name: %s", doc)
	}
}

func TestCynetInvalidUTF8(t *testing.T) {
	raw := []byte("{\"ClientDbId\":1,\"UserName\":\"a\xffb\",\"k\xfe\":[\"\xc3\",  1],\"IncidentJsonDescription\":\"{\\\"x\\\":\\\"\xff\\\"}\"}")
	doc, err := NewCynet(CynetOptions{IncludeOriginal: true}).Append(nil, raw, received)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(doc) || !bytes.Contains(doc, []byte(`"user":{"name":"a`+"\ufffd"+`b"}`)) ||
		!bytes.Contains(doc, []byte(`"k`+"\ufffd"+`":["`+"\ufffd"+`",1]`)) || !bytes.Contains(doc, []byte(`"IncidentJsonDescription":{"x":"`+"\ufffd"+`"}`)) {
		t.Errorf("got %s", doc)
	}
}

func TestCynetErrors(t *testing.T) {
	deep := `{"ClientDbId":1,"x":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`
	for _, tt := range []struct {
		raw  string
		want error
	}{
		{``, ErrCynetInvalid},
		{`[]`, ErrCynetInvalid},
		{`"x"`, ErrCynetInvalid},
		{`null`, ErrCynetInvalid},
		{`{}`, ErrCynetNoID},
		{`{"ClientDbId":null}`, ErrCynetNoID},
		{`{"ClientDbId":"abc"}`, ErrCynetNoID},
		{`{"ClientDbId":1.5}`, ErrCynetNoID},
		{`{"ClientDbId":1e3}`, ErrCynetNoID},
		{`{"ClientDbId":99999999999999999999}`, ErrCynetNoID},
		{`{"ClientDbId":{"a":1}}`, ErrCynetNoID},
		{`{"clientdbid":1}`, ErrCynetNoID},
		{`{"ClientDbId":1}{}`, ErrCynetInvalid},
		{`{"ClientDbId":1} x`, ErrCynetInvalid},
		{`{"ClientDbId":1,}`, ErrCynetInvalid},
		{`{"ClientDbId":1`, ErrCynetInvalid},
		{`{"ClientDbId" 1}`, ErrCynetInvalid},
		{`{ClientDbId:1}`, ErrCynetInvalid},
		{`{"ClientDbId":01}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":tru}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":"\x"}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":"\u12"}`, ErrCynetInvalid},
		{"{\"ClientDbId\":1,\"a\":\"\n\"}", ErrCynetInvalid},
		{`{"ClientDbId":1,"a":[1,]}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":{"b"}}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":-}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":1.}`, ErrCynetInvalid},
		{`{"ClientDbId":1,"a":1e}`, ErrCynetInvalid},
		{deep, ErrCynetInvalid},
	} {
		dst := []byte("keep")
		got, err := NewCynet(CynetOptions{}).Append(dst, []byte(tt.raw), received)
		if !errors.Is(err, tt.want) {
			t.Errorf("%.60s: err = %v, want %v", tt.raw, err, tt.want)
		}
		if string(got) != "keep" {
			t.Errorf("%.60s: dst changed to %q", tt.raw, got)
		}
	}
	ok := `{"ClientDbId":1,"x":` + strings.Repeat("[", maxJSONDepth-2) + strings.Repeat("]", maxJSONDepth-2) + `}`
	doc, err := NewCynet(CynetOptions{}).Append(nil, []byte(ok), received)
	if err != nil || !json.Valid(doc) {
		t.Errorf("nesting at the limit: %v", err)
	}
}

func TestCynetDuplicateMembers(t *testing.T) {
	d := appendCynet(t, CynetOptions{}, `{"ClientDbId":1,"Severity":4,"X":1,"ClientDbId":2,"Severity":1,"X":2}`)
	if d.Event.ID != "cy-1" || *d.Event.Severity != 4 || d.Cynet["X"] != 1.0 || d.Cynet["severity_name"] != "High" {
		t.Errorf("first occurrence must win: %+v %v", d.Event, d.Cynet)
	}
}

func TestBaseName(t *testing.T) {
	for in, want := range map[string]string{
		`c:\\users\\bob\\inv.exe`: `inv.exe`,
		`/usr/bin/x`:              `x`,
		`a\/b`:                    `b`,
		`dir\\`:                   ``,
		`plain`:                   `plain`,
		`x\u005cy`:                `x\u005cy`, // an escaped backslash written as \u005c is not split (rare)
		`a\"b\\c`:                 `c`,
	} {
		if got := string(baseName([]byte(in))); got != want {
			t.Errorf("baseName(%s) = %s, want %s", in, got, want)
		}
	}
}

// benchAlert is a realistic alert of about 1.5 KB.
const benchAlert = `{"ClientDbId":88239,"Uniqueness":"5f1c9a7e3b","IncidentName":"Suspicious PowerShell Execution","IncidentDescription":"PowerShell was started with an encoded command by an Office process","IncidentJsonDescription":"{\"Hostname\":\"WS-021\",\"Host Ip\":\"10.1.4.21\",\"Alert Name\":\"Suspicious PowerShell Execution\",\"Parent Process Details\":{\"Process SHA256\":\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\",\"Process Path\":\"C:\\\\Program Files\\\\Microsoft Office\\\\WINWORD.EXE\"},\"Extra Info\":{\"Detection Engine\":\"AI\"}}","IncidentRecomendation":"Isolate the host and review the command line","HostId":5517,"HostIp":"10.1.4.21","HostName":"WS-021","ProductId":3,"Sha256":"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08","Path":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","CommandLine":"powershell.exe -NoProfile -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=","AlertIp":0,"AlertDomain":"","AlertUrl":"","DomainId":12,"DomainCrc":-1944331431,"UserId":901,"UserName":"ACME\\bob","Severity":4,"Status":0,"AlertType":0,"DateIn":"2025-03-01T07:58:40","LastSeen":"2025-03-01T08:01:02","DateChanged":"2025-03-01T08:01:02","FirstSeenUtc":"2025-03-01T07:58:40Z","LastSeenUtc":"2025-03-01T08:01:02Z","EpsLastSeenLocal":"2025-03-01T09:01:02","EpsLastSeenUtc":"2025-03-01T08:01:02Z","RemediationStatus":0,"EpsActionStatus":0,"EpsRemediationActionPerformed":0,"AutoRemediationId":0,"File":{"ClientDbId":7001,"Sha256":"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08","CommonFileName":"powershell.exe","MetaProductName":"Microsoft Windows Operating System","Company":"Microsoft Corporation","RiskLevel":2,"EndPoints":118,"Antivirus":null,"VtRiskLevel":0,"LastSeen":"2025-03-01T08:01:02","DateIn":"2024-11-02T10:00:00"},"AutoRemediate":{"AlertId":88239,"Severity":"High"},"AlertGraphJsonResolved":"[{\"id\":1,\"type\":\"process\"}]","AlertGraphJsonRaw":"","ScanGroupName":"Workstations"}`

func BenchmarkCynet(b *testing.B) {
	n := NewCynet(CynetOptions{Source: "cynet-acme"})
	raw := []byte(benchAlert)
	var buf []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = n.Append(buf[:0], raw, received); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}

func FuzzCynet(f *testing.F) {
	for _, raw := range cynetAlerts(f) {
		f.Add([]byte(raw))
	}
	for _, s := range []string{benchAlert, `{}`, `{"ClientDbId":1,"AJson":"[1,{\"a\":\"\\ud800\"}]"}`, `{"ClientDbId":1} x`, `[`} {
		f.Add([]byte(s))
	}
	n := NewCynet(CynetOptions{Source: "fuzz", IncludeOriginal: true})
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := n.Append([]byte("x"), raw, received)
		if err != nil {
			if string(doc) != "x" {
				t.Fatalf("dst changed on error")
			}
			// Everything encoding/json accepts as an object must pass
			// syntax checks (barring extreme nesting).
			if i := skipWS(raw, 0); json.Valid(raw) && i < len(raw) && raw[i] == '{' &&
				bytes.Count(raw, []byte("{"))+bytes.Count(raw, []byte("[")) < maxJSONDepth-2 && !errors.Is(err, ErrCynetNoID) {
				t.Fatalf("rejected valid JSON %q: %v", raw, err)
			}
			return
		}
		doc = doc[1:]
		if !json.Valid(doc) || bytes.IndexByte(doc, '\n') >= 0 {
			t.Fatalf("invalid document for %q: %s", raw, doc)
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
	})
}
