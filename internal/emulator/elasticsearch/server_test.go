package elasticsearch

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func start(t *testing.T, opt Options) *Server {
	t.Helper()
	s := New(opt)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var client = &http.Client{Timeout: 5 * time.Second}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func do(t *testing.T, method, url string, body []byte, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// bulkReply is the unfiltered reply, decoded for assertions.
type bulkReply struct {
	Took   *int `json:"took"`
	Errors *bool
	Items  []map[string]struct {
		Index   string `json:"_index"`
		ID      string `json:"_id"`
		Status  int    `json:"status"`
		Result  string `json:"result"`
		Version int    `json:"_version"`
		Error   *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
}

// outcome is op, status and error type of each item.
func outcomes(t *testing.T, body []byte) []string {
	t.Helper()
	var r bulkReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("reply %s: %v", body, err)
	}
	var out []string
	for _, it := range r.Items {
		for op, v := range it {
			s := op + " " + http.StatusText(v.Status)
			if v.Error != nil {
				s += " " + v.Error.Type
			}
			out = append(out, s)
		}
	}
	return out
}

func esError(t *testing.T, body []byte) (typ string, status int) {
	t.Helper()
	var e struct {
		Error struct {
			RootCause []struct{ Type string } `json:"root_cause"`
			Type      string
			Reason    string
		}
		Status int
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if len(e.Error.RootCause) != 1 || e.Error.RootCause[0].Type != e.Error.Type || e.Error.Reason == "" {
		t.Errorf("error body %s lacks root_cause/type/reason", body)
	}
	return e.Error.Type, e.Status
}

const docA = `{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"a1"},"m":1}`
const docB = `{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"b2"},"m":2}`

func TestBulkCreateConflictIndex(t *testing.T) {
	s := start(t, Options{})
	body := `{"create":{"_index":"alerts","_id":"a1"}}` + "\n" + docA + "\n" +
		`{"create":{"_index":"alerts","_id":"b2"}}` + "\n" + docB + "\n"
	r := do(t, "POST", s.URL()+"/_bulk", []byte(body), nil)
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if diff := cmp.Diff([]string{"create Created", "create Created"}, outcomes(t, r.Body)); diff != "" {
		t.Errorf("first send (-want +got):\n%s", diff)
	}
	if !bytes.HasPrefix(r.Body, []byte(`{"took":`)) || !bytes.Contains(r.Body, []byte(`"errors":false`)) {
		t.Errorf("reply %s: want took then errors:false", r.Body)
	}
	// The same again: 409 for both, nothing stored twice.
	r = do(t, "POST", s.URL()+"/_bulk", []byte(body), nil)
	if diff := cmp.Diff([]string{"create Conflict version_conflict_engine_exception", "create Conflict version_conflict_engine_exception"}, outcomes(t, r.Body)); diff != "" {
		t.Errorf("re-send (-want +got):\n%s", diff)
	}
	if !bytes.Contains(r.Body, []byte(`"errors":true`)) || !bytes.Contains(r.Body, []byte("document already exists")) {
		t.Errorf("re-send reply %s", r.Body)
	}
	// index overwrites.
	r = do(t, "POST", s.URL()+"/alerts/_bulk", []byte(`{"index":{"_id":"a1"}}`+"\n"+docB+"\n"), nil)
	if diff := cmp.Diff([]string{"index OK"}, outcomes(t, r.Body)); diff != "" {
		t.Errorf("index (-want +got):\n%s", diff)
	}
	d, ok := s.Doc("alerts", "a1")
	if !ok || d.Version != 2 || string(d.Source) != docB || d.EventID != "b2" {
		t.Errorf("after index: %+v %v", d, ok)
	}
	if diff := cmp.Diff(map[string]int{"b2": 2}, s.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	if s.Count() != 2 || s.Conflicts() != 2 || s.Items() != 5 || s.Requests() != 3 {
		t.Errorf("count %d conflicts %d items %d requests %d", s.Count(), s.Conflicts(), s.Items(), s.Requests())
	}
}

func TestDataStreamRules(t *testing.T) {
	s := start(t, Options{})
	noTS := `{"event":{"id":"x"}}`
	body := `{"create":{"_index":"logs-alertrelay-default","_id":"a1"}}` + "\n" + docA + "\n" +
		`{"index":{"_index":"logs-alertrelay-default","_id":"b2"}}` + "\n" + docB + "\n" +
		`{"create":{"_index":"logs-alertrelay-default","_id":"x"}}` + "\n" + noTS + "\n" +
		`{"create":{"_index":"logs-alertrelay-default"}}` + "\n" + `"not an object"` + "\n"
	r := do(t, "POST", s.URL()+"/_bulk", []byte(body), nil)
	want := []string{
		"create Created",
		"index Bad Request illegal_argument_exception",
		"create Bad Request document_parsing_exception",
		"create Bad Request mapper_parsing_exception",
	}
	if diff := cmp.Diff(want, outcomes(t, r.Body)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !bytes.Contains(r.Body, []byte(`"_index":".ds-logs-alertrelay-default-`)) {
		t.Errorf("reply does not name the backing index: %s", r.Body)
	}
	if s.Count() != 1 {
		t.Errorf("count %d", s.Count())
	}
}

func TestFilterPath(t *testing.T) {
	for _, tc := range []struct {
		filter, want string
	}{
		{"errors,items.*.status,items.*.error", `{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse: the source is not a JSON object","index_uuid":"emulator","shard":"0","index":"i"}}}]}`},
		// Successful items have no error: Elasticsearch drops them, so
		// positions shift. This is why the sink asks for status too.
		{"items.*.error", `{"items":[{"create":{"error":{"type":"mapper_parsing_exception","reason":"failed to parse: the source is not a JSON object","index_uuid":"emulator","shard":"0","index":"i"}}}]}`},
		{"errors", `{"errors":true}`},
		{"items.*._id,items.*.result", `{"items":[{"create":{"_id":"1","result":"created"}},{"create":{"_id":"2"}}]}`},
	} {
		s := start(t, Options{})
		body := `{"create":{"_index":"i","_id":"1"}}` + "\n" + docA + "\n" + `{"create":{"_index":"i","_id":"2"}}` + "\n" + "[1]\n"
		r := do(t, "POST", s.URL()+"/_bulk?filter_path="+tc.filter, []byte(body), nil)
		if string(r.Body) != tc.want {
			t.Errorf("filter_path=%s:\n got %s\nwant %s", tc.filter, r.Body, tc.want)
		}
		if !json.Valid(r.Body) {
			t.Errorf("invalid JSON %s", r.Body)
		}
	}
}

func TestWholeRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		header map[string]string
		status int
		typ    string
	}{
		{"no final newline", `{"create":{"_index":"i"}}` + "\n" + docA, nil, 400, "illegal_argument_exception"},
		{"source missing", `{"create":{"_index":"i"}}` + "\n", nil, 400, "illegal_argument_exception"},
		{"bad action", `{"upsert":{"_index":"i"}}` + "\n" + docA + "\n", nil, 400, "illegal_argument_exception"},
		{"not json", "hello\n" + docA + "\n", nil, 400, "illegal_argument_exception"},
		{"empty", "", nil, 400, "action_request_validation_exception"},
		{"no index", `{"create":{"_id":"1"}}` + "\n" + docA + "\n", nil, 400, "action_request_validation_exception"},
		{"id too long", `{"create":{"_index":"i","_id":"` + strings.Repeat("x", 513) + `"}}` + "\n" + docA + "\n", nil, 400, "action_request_validation_exception"},
		{"bad gzip", "xx\n", map[string]string{"Content-Encoding": "gzip"}, 400, "illegal_argument_exception"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			r := do(t, "POST", s.URL()+"/_bulk", []byte(tc.body), tc.header)
			typ, status := esError(t, r.Body)
			if r.Status != tc.status || status != tc.status || typ != tc.typ {
				t.Errorf("HTTP %d, body status %d type %s; want %d %s (%s)", r.Status, status, typ, tc.status, tc.typ, r.Body)
			}
			if s.Count() != 0 {
				t.Errorf("stored %d", s.Count())
			}
		})
	}
	s := start(t, Options{})
	if r := do(t, "POST", s.URL()+"/_bulk", []byte("x\n"), map[string]string{"Content-Type": "text/plain"}); r.Status != 406 {
		t.Errorf("text/plain: %d", r.Status)
	}
	if r := do(t, "GET", s.URL()+"/_bulk", nil, nil); r.Status != 405 || r.Header.Get("Allow") == "" {
		t.Errorf("GET /_bulk: %d", r.Status)
	}
}

func TestTooLarge(t *testing.T) {
	s := start(t, Options{MaxBodyBytes: 200})
	line := `{"create":{"_index":"i"}}` + "\n" + docA + "\n"
	big := strings.Repeat(line, 3) // > 200 bytes
	if r := do(t, "POST", s.URL()+"/_bulk", []byte(big), nil); r.Status != 413 || len(r.Body) != 0 {
		t.Errorf("plain: %d %q", r.Status, r.Body)
	}
	// Compressed below the limit, but not once decompressed.
	if r := do(t, "POST", s.URL()+"/_bulk", gz(t, big), map[string]string{"Content-Encoding": "gzip"}); r.Status != 413 {
		t.Errorf("gzip: %d", r.Status)
	}
	if r := do(t, "POST", s.URL()+"/_bulk", []byte(line), nil); r.Status != 200 {
		t.Errorf("small: %d", r.Status)
	}
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGzip(t *testing.T) {
	s := start(t, Options{})
	body := strings.Repeat(`{"create":{"_index":"i"}}`+"\n"+docA+"\n", 50)
	z := gz(t, body)
	r := do(t, "POST", s.URL()+"/_bulk", z, map[string]string{"Content-Encoding": "gzip"})
	if r.Status != 200 || bytes.Contains(r.Body, []byte(`"errors":true`)) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if s.Count() != 50 || s.BytesOnWire() != int64(len(z)) {
		t.Errorf("count %d, wire %d (want 50, %d)", s.Count(), s.BytesOnWire(), len(z))
	}
	if string(s.Docs()[0].Source) != docA {
		t.Errorf("stored %q", s.Docs()[0].Source)
	}
}

func TestAuth(t *testing.T) {
	opt := Options{APIKeyID: "kid", APIKey: "ksecret", Username: "elastic", Password: "pw"}
	s := start(t, opt)
	body := []byte(`{"create":{"_index":"i"}}` + "\n" + docA + "\n")
	basic := "Basic " + "ZWxhc3RpYzpwdw==" // elastic:pw
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"api key", "ApiKey " + opt.EncodedAPIKey(), 200},
		{"basic", basic, 200},
		{"none", "", 401},
		{"wrong key", "ApiKey a2lkOm5vcGU=", 401},
	} {
		h := map[string]string{}
		if tc.auth != "" {
			h["Authorization"] = tc.auth
		}
		for _, path := range []string{"/", "/_bulk"} {
			method := "POST"
			if path == "/" {
				method = "GET"
			}
			r := do(t, method, s.URL()+path, body, h)
			if r.Status != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.name, path, r.Status, tc.want)
			}
			if tc.want == 401 {
				if typ, _ := esError(t, r.Body); typ != "security_exception" || len(r.Header.Values("WWW-Authenticate")) != 2 {
					t.Errorf("%s: type %s, WWW-Authenticate %v", tc.name, typ, r.Header.Values("WWW-Authenticate"))
				}
			}
		}
	}
	if s.Count() != 2 {
		t.Errorf("count %d, want 2", s.Count())
	}
}

func TestInfo(t *testing.T) {
	for _, tc := range []struct {
		opt                  Options
		dist, version, tagln string
		product              string
	}{
		{Options{}, "", DefaultESVersion, "You Know, for Search", "Elasticsearch"},
		{Options{Distribution: DistOpenSearch}, "opensearch", DefaultOSVersion, "The OpenSearch Project: https://opensearch.org/", ""},
	} {
		s := start(t, tc.opt)
		r := do(t, "GET", s.URL()+"/", nil, nil)
		var info struct {
			Version struct{ Number, Distribution string }
			Tagline string
		}
		if err := json.Unmarshal(r.Body, &info); err != nil {
			t.Fatal(err)
		}
		if info.Version.Number != tc.version || info.Version.Distribution != tc.dist || info.Tagline != tc.tagln ||
			r.Header.Get("X-Elastic-Product") != tc.product {
			t.Errorf("%+v, X-Elastic-Product %q", info, r.Header.Get("X-Elastic-Product"))
		}
	}
}

func TestFaults(t *testing.T) {
	s := start(t, Options{})
	body := []byte(strings.Repeat(`{"create":{"_index":"i"}}`+"\n"+docA+"\n", 3))

	s.FailNext(1, 429, "7")
	r := do(t, "POST", s.URL()+"/_bulk", body, nil)
	if typ, st := esError(t, r.Body); r.Status != 429 || st != 429 || typ != "es_rejected_execution_exception" || r.Header.Get("Retry-After") != "7" {
		t.Errorf("FailNext: %d %s %s", r.Status, typ, r.Header.Get("Retry-After"))
	}

	s.FailNextItems(2, 429)
	r = do(t, "POST", s.URL()+"/_bulk", body, nil)
	want := []string{"create Too Many Requests es_rejected_execution_exception", "create Too Many Requests es_rejected_execution_exception", "create Created"}
	if diff := cmp.Diff(want, outcomes(t, r.Body)); diff != "" {
		t.Errorf("FailNextItems (-want +got):\n%s", diff)
	}

	s.RejectMatching(`"m":2`)
	r = do(t, "POST", s.URL()+"/_bulk", []byte(`{"create":{"_index":"i"}}`+"\n"+docA+"\n"+`{"create":{"_index":"i"}}`+"\n"+docB+"\n"), nil)
	if diff := cmp.Diff([]string{"create Created", "create Bad Request mapper_parsing_exception"}, outcomes(t, r.Body)); diff != "" {
		t.Errorf("RejectMatching (-want +got):\n%s", diff)
	}
	if s.Count() != 2 {
		t.Errorf("count %d, want 2", s.Count())
	}
}

func TestSetDownKeepsStore(t *testing.T) {
	s := start(t, Options{})
	body := []byte(`{"create":{"_index":"i","_id":"1"}}` + "\n" + docA + "\n")
	do(t, "POST", s.URL()+"/_bulk", body, nil)
	url := s.URL()
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Post(url+"/_bulk", "application/json", bytes.NewReader(body)); err == nil {
		t.Error("request succeeded while down")
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if s.URL() != url {
		t.Errorf("URL changed: %s -> %s", url, s.URL())
	}
	r := do(t, "POST", url+"/_bulk", body, nil)
	if diff := cmp.Diff([]string{"create Conflict version_conflict_engine_exception"}, outcomes(t, r.Body)); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
}

func TestIDsOnlyAndDiscard(t *testing.T) {
	body := []byte(`{"create":{"_index":"i","_id":"a1"}}` + "\n" + docA + "\n" + `{"create":{"_index":"i","_id":"a1"}}` + "\n" + docA + "\n")
	s := start(t, Options{IDsOnly: true})
	do(t, "POST", s.URL()+"/_bulk", body, nil)
	docs := s.Docs()
	if len(docs) != 1 || docs[0].Source != nil || docs[0].EventID != "a1" || s.Conflicts() != 1 {
		t.Errorf("IDsOnly: %+v, conflicts %d", docs, s.Conflicts())
	}
	d := start(t, Options{DiscardDocs: true})
	r := do(t, "POST", d.URL()+"/_bulk", body, nil)
	if d.Count() != 2 || len(d.Docs()) != 0 || len(d.IDs()) != 0 || bytes.Contains(r.Body, []byte(`"errors":true`)) {
		t.Errorf("DiscardDocs: count %d, docs %d, reply %s", d.Count(), len(d.Docs()), r.Body)
	}
}

func TestParseAction(t *testing.T) {
	for _, tc := range []struct {
		line string
		want action
		ok   bool
	}{
		{`{"create":{"_index":"a","_id":"b"}}`, action{op: "create", index: "a", id: "b", hasID: true}, true},
		{` { "index" : { "_id" : "x\"y" , "pipeline":"p", "require_alias":true, "dynamic_templates":{"a":"b"} } } `, action{op: "index", id: `x"y`, hasID: true}, true},
		{`{"delete":{}}`, action{op: "delete"}, true},
		{`{"create":{"_index":1}}`, action{}, false},
		{`{"create":{"_index":"a"}`, action{}, false},
		{`{"create":{"_index":"a"}}x`, action{}, false},
		{`{"create":{"_index":"a"},"index":{}}`, action{}, false},
		{`{"upsert":{}}`, action{}, false},
		{`[]`, action{}, false},
		{``, action{}, false},
	} {
		got, err := parseAction([]byte(tc.line))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.line, err)
			continue
		}
		if tc.ok && got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

func FuzzParseAction(f *testing.F) {
	for _, s := range []string{`{"create":{"_index":"a","_id":"b"}}`, `{"index":{"_id":"\u00e9","x":[1,{"y":null}]}}`, `{"delete":{}}`, `{`, `{"create":{"_id":"\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		a, err := parseAction(line)
		if err == nil {
			switch a.op {
			case "create", "index", "delete", "update":
			default:
				t.Fatalf("op %q accepted", a.op)
			}
			if !json.Valid(line) {
				// The scanner checks structure only; it must at least
				// have seen an object.
				if !bytes.Contains(line, []byte("{")) {
					t.Fatalf("accepted %q", line)
				}
			}
		}
	})
}

// FuzzBulkBody: whatever the body, parseBulk and apply neither panic nor
// produce an invalid JSON reply.
func FuzzBulkBody(f *testing.F) {
	f.Add([]byte(`{"create":{"_index":"logs-a-b","_id":"1"}}` + "\n" + docA + "\n"))
	f.Add([]byte(`{"index":{"_index":"i"}}` + "\n[]\n" + `{"delete":{"_index":"i","_id":"1"}}` + "\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := New(Options{})
		items, status, _, _ := s.parseBulk(body, "")
		if status != 0 {
			return
		}
		failed := s.apply(items)
		out := appendResponse(nil, items, failed, 0, parseFilter(""))
		if !json.Valid(out) {
			t.Fatalf("invalid reply %q for %q", out, body)
		}
		out = appendResponse(nil, items, failed, 0, parseFilter("errors,items.*.status,items.*.error"))
		if !json.Valid(out) {
			t.Fatalf("invalid filtered reply %q", out)
		}
	})
}
