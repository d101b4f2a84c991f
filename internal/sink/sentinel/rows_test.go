package sentinel

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

var fixedNow = time.Date(2025, 3, 1, 9, 30, 0, 123456789, time.UTC)

func TestAppendRow(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
		ok              bool
	}{
		{
			"all fields",
			`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"e1","kind":"alert","dataset":"cybertrace.detection","provider":"ct"},"x":1}`,
			`{"TimeGenerated":"2025-03-01T08:01:05.123Z","EventId":"e1","Dataset":"cybertrace.detection","SourceName":"ct","Kind":"alert","Event":{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"e1","kind":"alert","dataset":"cybertrace.detection","provider":"ct"},"x":1}}`,
			true,
		},
		{
			"escapes are copied as they are",
			`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"a\"b\\c\u00e9","provider":"src\/1"}}`,
			`{"TimeGenerated":"2025-03-01T08:01:05.123Z","EventId":"a\"b\\c\u00e9","SourceName":"src\/1","Event":{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"a\"b\\c\u00e9","provider":"src\/1"}}}`,
			true,
		},
		{
			"no timestamp: now; absent and non-string members left out",
			`{"event":{"id":7,"kind":null}}`,
			`{"TimeGenerated":"2025-03-01T09:30:00.123Z","Event":{"event":{"id":7,"kind":null}}}`,
			true,
		},
		{"not an object", `[1,2]`, ``, false},
		{"malformed", `{"event":{"id":"x"`, ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := appendRow([]byte("prefix"), []byte(tc.doc), fixedNow)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if string(got) != "prefix" {
					t.Errorf("appended %q on failure", got)
				}
				return
			}
			got = got[len("prefix"):]
			if string(got) != tc.want {
				t.Errorf("row\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("row is not valid JSON: %s", got)
			}
		})
	}
}

// rowFields is a row decoded by encoding/json.
type rowFields struct {
	TimeGenerated, EventId, Dataset, SourceName, Kind *string
	Event                                             json.RawMessage
}

// wantFields is what the row of doc must hold, from a decode of doc by
// encoding/json with exact key matching (the last of duplicate keys wins,
// as in event.ReadMeta).
func wantFields(t testing.TB, doc []byte, now time.Time) rowFields {
	str := func(raw json.RawMessage) *string {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		return &s
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		t.Fatal(err)
	}
	ts := str(top["@timestamp"])
	if ts == nil {
		s := now.UTC().Format(timeLayout)
		ts = &s
	}
	var ev map[string]json.RawMessage
	_ = json.Unmarshal(top["event"], &ev) // absent or not an object: no fields
	return rowFields{TimeGenerated: ts, EventId: str(ev["id"]), Dataset: str(ev["dataset"]),
		SourceName: str(ev["provider"]), Kind: str(ev["kind"]), Event: json.RawMessage(bytes.TrimSpace(doc))}
}

// FuzzAppendRow: every document encoding/json accepts as an object gets a
// row; the row is valid JSON, its Event is the document byte for byte and
// its other members are the document's fields.
func FuzzAppendRow(f *testing.F) {
	for _, s := range []string{
		`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"e1","kind":"alert","dataset":"d","provider":"p"}}`,
		`{"event":{"id":"a\"b\\c\u00e9\ud83d\ude00"}}`,
		`{"event":[]}`, `{}`, `[]`, `{"@timestamp":1}`, `{"event":{"id":{"x":"y"}}}`, ` {"event":{"ID":"upper"}} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		row, ok := appendRow(nil, doc, fixedNow)
		var probe map[string]json.RawMessage
		valid := json.Unmarshal(doc, &probe) == nil
		if !valid {
			return // structure-only reading may accept what encoding/json refuses
		}
		if !ok {
			t.Fatalf("refused a valid object: %q", doc)
		}
		var got rowFields
		if err := json.Unmarshal(row, &got); err != nil {
			t.Fatalf("row of %q is not valid JSON: %v\n%s", doc, err, row)
		}
		if !bytes.Equal(got.Event, bytes.TrimSpace(doc)) {
			t.Fatalf("Event %q, want the document %q", got.Event, doc)
		}
		if bytes.Count(doc, []byte(`"event"`)) > 1 {
			return // ReadMeta merges duplicate "event" objects; a map keeps the last
		}
		if diff := cmp.Diff(wantFields(t, doc, fixedNow), got); diff != "" {
			t.Fatalf("row of %q (-want +got):\n%s", doc, diff)
		}
	})
}

func TestEncodeAndPlan(t *testing.T) {
	s := &Sink{maxBody: 600, now: func() time.Time { return fixedNow }, target: "sentinel sink test"}
	b := event.NewBatch(8, 100)
	docs := []string{
		`{"event":{"id":"0"},"p":"` + strings.Repeat("a", 200) + `"}`,
		`not json`,
		`{"event":{"id":"2"},"p":"` + strings.Repeat("b", 200) + `"}`,
		`{"event":{"id":"3"},"p":"` + strings.Repeat("c", 700) + `"}`, // too large alone
		`{"event":{"id":"4"},"p":"` + strings.Repeat("d", 200) + `"}`,
		`{"event":{"id":"5"},"p":"` + strings.Repeat("e", 200) + `"}`,
	}
	for _, d := range docs {
		b.Append([]byte(d))
	}
	bad := s.encode(b)
	var badIdx []int
	for _, it := range bad {
		if !it.Permanent {
			t.Errorf("item %d not permanent", it.Index)
		}
		badIdx = append(badIdx, it.Index)
	}
	if diff := cmp.Diff([]int{1, 3}, badIdx); diff != "" {
		t.Errorf("bad documents (-want +got):\n%s", diff)
	}
	if !strings.Contains(bad[1].Err.Error(), "max_body_bytes=600") {
		t.Errorf("too-large error %q", bad[1].Err)
	}
	spans := s.plan()
	var got [][]int
	for _, sp := range spans {
		body := s.body(sp)
		if len(body) > s.maxBody {
			t.Errorf("body of %d bytes > %d", len(body), s.maxBody)
		}
		var rows []struct{ EventId string }
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Fatalf("body is not a JSON array: %v\n%s", err, body)
		}
		s.restore(sp)
		var ids []int
		for i, r := range rows {
			ids = append(ids, s.rows[sp.lo+i].doc)
			if want := docs[s.rows[sp.lo+i].doc][len(`{"event":{"id":"`)]; r.EventId != string(want) {
				t.Errorf("row %d has EventId %s, want %c", i, r.EventId, want)
			}
		}
		got = append(got, ids)
	}
	// Rows are about 250 bytes: two fit in 600, three do not.
	if diff := cmp.Diff([][]int{{0, 2}, {4, 5}}, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestParseTokenResponse(t *testing.T) {
	for _, tc := range []struct {
		body     string
		tok      string
		lifetime time.Duration
		errPart  string
	}{
		{`{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}`, "eyJ0", 3599 * time.Second, ""},
		{`{"token_type":"bearer","expires_in":"3600","ext_expires_in":"3600","access_token":"t"}`, "t", time.Hour, ""},
		{`{"access_token":"t"}`, "t", defaultLifetime, ""},
		{`{"access_token":"t","expires_in":-5}`, "t", defaultLifetime, ""},
		{`{"token_type":"Bearer","expires_in":3599}`, "", 0, "no access_token"},
		{`{"token_type":"pop","access_token":"t"}`, "", 0, "token_type"},
		{`{"access_token":"a b"}`, "", 0, "space or control"},
		{`{"access_token":"t","expires_in":"soon"}`, "", 0, "unreadable"},
		{`<html>`, "", 0, "unreadable"},
	} {
		tok, lifetime, err := parseTokenResponse([]byte(tc.body))
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("%s: err %v, want one containing %q", tc.body, err, tc.errPart)
			}
			continue
		}
		if err != nil || tok != tc.tok || lifetime != tc.lifetime {
			t.Errorf("%s: %q %v %v, want %q %v", tc.body, tok, lifetime, err, tc.tok, tc.lifetime)
		}
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}`))
	f.Add([]byte(`{"expires_in":"99999999999999999999"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, lifetime, err := parseTokenResponse(body)
		if err != nil {
			return
		}
		if tok == "" || lifetime <= 0 || strings.ContainsAny(tok, " \r\n\t") {
			t.Fatalf("accepted %q: token %q lifetime %v", body, tok, lifetime)
		}
	})
}

func TestParseAzureError(t *testing.T) {
	for _, tc := range []struct{ body, code, msg string }{
		{`{"error":{"code":"InvalidStream","message":"no such stream"}}`, "InvalidStream", "no such stream"},
		{`{"error":"invalid_client"}`, "", ""},
		{`Service request failed.`, "", ""},
		{``, "", ""},
	} {
		code, msg := parseAzureError([]byte(tc.body))
		if code != tc.code || msg != tc.msg {
			t.Errorf("%q: %q %q, want %q %q", tc.body, code, msg, tc.code, tc.msg)
		}
	}
}

func FuzzParseAzureError(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"InvalidStream","message":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code, _ := parseAzureError(body)
		if code != "" && !json.Valid(body) {
			t.Fatalf("code %q from invalid JSON %q", code, body)
		}
	})
}

func TestDescribeTokenError(t *testing.T) {
	ts := &tokenSource{secrets: [][]byte{[]byte(testSecret)}}
	for _, tc := range []struct{ body, want string }{
		{
			`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215]}`,
			", invalid_client: AADSTS7000215: Invalid client secret provided.",
		},
		{
			`{"error":"unauthorized_client","error_description":"Application not found","error_codes":[700016]}`,
			", unauthorized_client, AADSTS700016: Application not found",
		},
		{`{"error":"invalid_request"}`, ", invalid_request"},
		{`{"error":"x","error_description":"echo ` + testSecret + `"}`, ", x: echo [redacted]"},
		{`upstream said ` + testSecret, ": upstream said [redacted]"},
		{``, ""},
	} {
		if got := ts.describe([]byte(tc.body)); got != tc.want {
			t.Errorf("describe(%q)\n got %q\nwant %q", tc.body, got, tc.want)
		}
	}
}
