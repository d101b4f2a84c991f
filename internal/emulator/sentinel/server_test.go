package sentinel

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/testcert"
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

func tokenForm(o Options) url.Values {
	return url.Values{
		"client_id":     {o.ClientID},
		"client_secret": {o.ClientSecret},
		"scope":         {o.Scope},
		"grant_type":    {"client_credentials"},
	}
}

// postToken sends a token request and decodes the JSON reply.
func postToken(t *testing.T, s *Server, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := client.PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("token reply is not JSON: %v", err)
	}
	return resp.StatusCode, m
}

func getToken(t *testing.T, s *Server) string {
	t.Helper()
	o := s.Options()
	code, m := postToken(t, s, o.TenantID, tokenForm(o))
	if code != http.StatusOK {
		t.Fatalf("token: %d %v", code, m)
	}
	return m["access_token"].(string)
}

type ingestReq struct {
	dcr, stream, apiVersion string
	token                   string
	contentType, encoding   string
	body                    []byte
}

func (s *Server) ingestURL(dcr, stream, apiVersion string) string {
	u := s.URL() + "/dataCollectionRules/" + dcr + "/streams/" + stream
	if apiVersion != "" {
		u += "?api-version=" + apiVersion
	}
	return u
}

// ingest sends r, filling unset fields with valid values, and returns the
// status and the error code of the reply ("" for none).
func ingest(t *testing.T, s *Server, r ingestReq) (int, string, http.Header) {
	t.Helper()
	o := s.Options()
	if r.dcr == "" {
		r.dcr = o.DCRImmutableID
	}
	if r.stream == "" {
		r.stream = o.Stream
	}
	if r.apiVersion == "" {
		r.apiVersion = o.APIVersion
	} else if r.apiVersion == "-" {
		r.apiVersion = ""
	}
	if r.contentType == "" {
		r.contentType = "application/json"
	}
	req, err := http.NewRequest(http.MethodPost, s.ingestURL(r.dcr, r.stream, r.apiVersion), bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "-" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	req.Header.Set("Content-Type", r.contentType)
	if r.encoding != "" {
		req.Header.Set("Content-Encoding", r.encoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		if len(raw) != 0 {
			t.Errorf("204 with a body: %q", raw)
		}
		return resp.StatusCode, "", resp.Header
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("error reply %d is not {\"error\":{\"code\",\"message\"}}: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, e.Error.Code, resp.Header
}

func gz(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const twoRows = `[{"TimeGenerated":"2025-03-01T08:01:05.123Z","EventId":"a1","Event":{"x":1}},
 {"TimeGenerated":"2025-03-01T08:01:06.000Z","EventId":"a\u0032","Event":{"s":"]}\"["}}]`

func TestTokenEndpoint(t *testing.T) {
	s := start(t, Options{TokenLifetime: 90 * time.Minute})
	o := s.Options()
	withForm := func(k, v string) url.Values {
		f := tokenForm(o)
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name    string
		tenant  string
		form    url.Values
		status  int
		err     string
		aadsts  float64
		revealS bool
	}{
		{"ok", o.TenantID, tokenForm(o), 200, "", 0, false},
		{"unknown tenant", "other-tenant", tokenForm(o), 400, "invalid_request", 90002, false},
		{"unknown client", o.TenantID, withForm("client_id", "nope"), 400, "unauthorized_client", 700016, false},
		{"wrong secret", o.TenantID, withForm("client_secret", "wrong-secret"), 401, "invalid_client", 7000215, false},
		{"wrong scope", o.TenantID, withForm("scope", "https://graph.microsoft.com/.default"), 400, "invalid_scope", 70011, false},
		{"wrong grant", o.TenantID, withForm("grant_type", "password"), 400, "unsupported_grant_type", 70003, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m := postToken(t, s, tc.tenant, tc.form)
			if code != tc.status {
				t.Fatalf("status %d, want %d (%v)", code, tc.status, m)
			}
			if tc.err == "" {
				if m["token_type"] != "Bearer" || m["expires_in"] != float64(5400) || m["access_token"] == "" {
					t.Errorf("success reply %v", m)
				}
				return
			}
			if m["error"] != tc.err {
				t.Errorf("error %v, want %s", m["error"], tc.err)
			}
			codes, _ := m["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != tc.aadsts {
				t.Errorf("error_codes %v, want [%v]", m["error_codes"], tc.aadsts)
			}
			desc, _ := m["error_description"].(string)
			if !strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, "\r\nTrace ID: ") {
				t.Errorf("error_description %q", desc)
			}
			if strings.Contains(desc, o.ClientSecret) {
				t.Errorf("the description reveals the secret: %q", desc)
			}
		})
	}
	if got := s.TokenRequests(); got != 6 {
		t.Errorf("TokenRequests %d, want 6", got)
	}

	s.FailTokenNext(1, http.StatusServiceUnavailable)
	if code, m := postToken(t, s, o.TenantID, tokenForm(o)); code != 503 || m["error"] != "temporarily_unavailable" {
		t.Errorf("FailTokenNext: %d %v", code, m)
	}
	s.SetClientSecret("rotated")
	if code, _ := postToken(t, s, o.TenantID, tokenForm(o)); code != http.StatusUnauthorized {
		t.Errorf("after SetClientSecret the old secret got %d, want 401", code)
	}
}

func TestIngestReplies(t *testing.T) {
	s := start(t, Options{MaxBodyBytes: 4096})
	tok := getToken(t, s)
	big := []byte(`[{"EventId":"big","pad":"` + strings.Repeat("x", 5000) + `"}]`)
	for _, tc := range []struct {
		name   string
		req    ingestReq
		status int
		code   string
	}{
		{"accepted", ingestReq{token: tok, body: []byte(twoRows)}, 204, ""},
		{"accepted gzip", ingestReq{token: tok, encoding: "gzip", body: gz(t, []byte(twoRows))}, 204, ""},
		{"empty array", ingestReq{token: tok, body: []byte(`[]`)}, 204, ""},
		{"no token", ingestReq{token: "-", body: []byte(twoRows)}, 401, "InvalidToken"},
		{"unknown token", ingestReq{token: "forged", body: []byte(twoRows)}, 401, "InvalidToken"},
		{"no api-version", ingestReq{token: tok, apiVersion: "-", body: []byte(twoRows)}, 400, "MissingApiVersionParameter"},
		{"wrong api-version", ingestReq{token: tok, apiVersion: "2021-11-01-preview", body: []byte(twoRows)}, 400, "UnsupportedApiVersion"},
		{"malformed dcr", ingestReq{token: tok, dcr: "my-rule", body: []byte(twoRows)}, 400, "InvalidDcrImmutableId"},
		{"other dcr", ingestReq{token: tok, dcr: "dcr-ffffffffffffffffffffffffffffffff", body: []byte(twoRows)}, 404, "NotFound"},
		{"wrong stream", ingestReq{token: tok, stream: "Custom-Other_CL", body: []byte(twoRows)}, 400, "InvalidStream"},
		{"content type", ingestReq{token: tok, contentType: "text/plain", body: []byte(twoRows)}, 400, "InvalidContentType"},
		{"too large", ingestReq{token: tok, body: big}, 413, "ContentLengthLimitExceeded"},
		{"too large once inflated", ingestReq{token: tok, encoding: "gzip", body: gz(t, big)}, 413, "ContentLengthLimitExceeded"},
		{"bad gzip", ingestReq{token: tok, encoding: "gzip", body: []byte(twoRows)}, 400, "InvalidContentEncoding"},
		{"deflate", ingestReq{token: tok, encoding: "deflate", body: []byte(twoRows)}, 400, "UnsupportedContentEncoding"},
		{"not json", ingestReq{token: tok, body: []byte(`[{"a":1},`)}, 400, "InvalidPayload"},
		{"object not array", ingestReq{token: tok, body: []byte(`{"EventId":"x"}`)}, 400, "InvalidPayload"},
		{"array of strings", ingestReq{token: tok, body: []byte(`["a","b"]`)}, 400, "InvalidPayload"},
		{"empty body", ingestReq{token: tok, body: nil}, 500, "InternalServerError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, _ := ingest(t, s, tc.req)
			if status != tc.status || code != tc.code {
				t.Errorf("got %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
	// Only the three accepted bodies were recorded: 2 + 2 + 0 rows.
	if got := s.Count(); got != 4 {
		t.Errorf("Count %d, want 4", got)
	}
	if diff := cmp.Diff(map[string]int{"a1": 2, "a2": 2}, s.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	if got := len(s.Rows()); got != 4 {
		t.Errorf("Rows %d, want 4", got)
	}
	if want := `{"TimeGenerated":"2025-03-01T08:01:05.123Z","EventId":"a1","Event":{"x":1}}`; string(s.Rows()[0]) != want {
		t.Errorf("first row %s, want %s", s.Rows()[0], want)
	}
}

func TestIngestFaults(t *testing.T) {
	s := start(t, Options{})
	tok := getToken(t, s)

	s.FailNext(2, http.StatusTooManyRequests, "7")
	for i := range 2 {
		status, code, h := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)})
		if status != 429 || code != "TooManyRequests" || h.Get("Retry-After") != "7" {
			t.Errorf("request %d: %d %q Retry-After %q, want 429 TooManyRequests 7", i, status, code, h.Get("Retry-After"))
		}
	}
	if status, _, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)}); status != 204 {
		t.Errorf("after FailNext: %d, want 204", status)
	}

	s.FailAfter(1, 1, http.StatusServiceUnavailable, "")
	for i, want := range []int{204, 503, 204} {
		if status, _, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)}); status != want {
			t.Errorf("FailAfter: request %d got %d, want %d", i, status, want)
		}
	}

	s.SetForbidden(true)
	if status, code, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)}); status != 403 || code != "OperationFailed" {
		t.Errorf("forbidden: %d %q", status, code)
	}
	s.SetForbidden(false)

	s.RejectMatching(`"a1"`, http.StatusBadRequest, "InvalidPayload")
	if status, code, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)}); status != 400 || code != "InvalidPayload" {
		t.Errorf("RejectMatching: %d %q", status, code)
	}
	s.RejectMatching("", 0, "")

	s.ExpireTokens()
	if status, _, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)}); status != 401 {
		t.Errorf("after ExpireTokens: %d, want 401", status)
	}
	if got := s.Count(); got != 6 {
		t.Errorf("Count %d, want 6 (three accepted requests of two rows)", got)
	}
	if got := s.Requests(); got != 9 {
		t.Errorf("Requests %d, want 9", got)
	}
}

func TestTokenExpiry(t *testing.T) {
	s := start(t, Options{TokenLifetime: 50 * time.Millisecond})
	tok := getToken(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)})
		if status == http.StatusUnauthorized {
			break
		}
		if status != http.StatusNoContent || time.Now().After(deadline) {
			t.Fatalf("status %d; the token never expired", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSetDown(t *testing.T) {
	s := start(t, Options{})
	tok := getToken(t, s)
	addr := s.Addr()
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := fresh.Post(s.ingestURL(s.Options().DCRImmutableID, s.Options().Stream, DefaultAPIVersion), "application/json", strings.NewReader(twoRows))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("while down: %v, want connection refused", err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("address changed from %s to %s", addr, s.Addr())
	}
	client.CloseIdleConnections() // the restart closed them
	if status, _, _ := ingest(t, s, ingestReq{token: tok, body: []byte(twoRows)}); status != 204 {
		t.Errorf("after SetDown(false): %d (tokens must survive a restart)", status)
	}
}

func TestRecordingModes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      Options
		rows     int
		distinct int
	}{
		{"all", Options{}, 2, 2},
		{"ids only", Options{IDsOnly: true}, 0, 2},
		{"discard", Options{DiscardRows: true}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.opt)
			if status, _, _ := ingest(t, s, ingestReq{token: getToken(t, s), body: []byte(twoRows)}); status != 204 {
				t.Fatalf("status %d", status)
			}
			if s.Count() != 2 || len(s.Rows()) != tc.rows || s.Distinct() != tc.distinct {
				t.Errorf("Count %d Rows %d Distinct %d, want 2 %d %d", s.Count(), len(s.Rows()), s.Distinct(), tc.rows, tc.distinct)
			}
			if s.BytesOnWire() != int64(len(twoRows)) {
				t.Errorf("BytesOnWire %d, want %d", s.BytesOnWire(), len(twoRows))
			}
			s.Reset()
			if s.Count() != 0 || s.Requests() != 0 || s.Distinct() != 0 {
				t.Errorf("Reset left counters")
			}
		})
	}
}

func TestTLSAndMutualTLS(t *testing.T) {
	p := testcert.NewT(t)
	s := New(Options{})
	if err := s.StartTLS("127.0.0.1:0", p.ServerTLS(true)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	o := s.Options()
	for _, tc := range []struct {
		name   string
		client *http.Client
		ok     bool
	}{
		{"client certificate", &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: p.ClientTLS(true)}}, true},
		{"no client certificate", &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: p.ClientTLS(false)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.PostForm(s.URL()+"/"+o.TenantID+"/oauth2/v2.0/token", tokenForm(o))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			} else if err == nil {
				resp.Body.Close()
				t.Error("handshake succeeded without a client certificate")
			}
		})
	}
}

func TestSplitArray(t *testing.T) {
	for _, tc := range []struct {
		in    string
		elems []string
		ok    bool
	}{
		{`[]`, nil, true},
		{` [ ] `, nil, true},
		{`[{}]`, []string{`{}`}, true},
		{`[{"a":[1,{"b":"}"}]} , {"c":"\\\""}]`, []string{`{"a":[1,{"b":"}"}]}`, `{"c":"\\\""}`}, true},
		{`[{"a":true,"b":null,"c":-1.5e+3}]`, []string{`{"a":true,"b":null,"c":-1.5e+3}`}, true},
		{``, nil, false},
		{`{}`, nil, false},
		{`[1]`, nil, false},
		{`[{}`, nil, false},
		{`[{},]`, nil, false},
		{`[{}]x`, nil, false},
		{`[{"a":"unterminated}]`, nil, false},
		{`[{"a" 1}]`, nil, false},
		{`[{"a":}]`, nil, false},
		{`[{"a":1 "b":2}]`, nil, false},
		{`[{"a":@}]`, nil, false},
	} {
		var got []string
		n, err := SplitArray([]byte(tc.in), func(e []byte) { got = append(got, string(e)) })
		if (err == nil) != tc.ok {
			t.Errorf("SplitArray(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok {
			if n != len(tc.elems) {
				t.Errorf("SplitArray(%q) = %d elements, want %d", tc.in, n, len(tc.elems))
			}
			if diff := cmp.Diff(tc.elems, got); diff != "" {
				t.Errorf("SplitArray(%q) elements (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

func TestRowEventID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"TimeGenerated":"t","EventId":"abc","Event":{}}`, "abc"},
		{`{"Event":{"EventId":"inner"},"EventId":"outer"}`, "outer"},
		{`{"EventId":"a\"b\u0041"}`, `a"bA`},
		{`{"EventId":12}`, ""},
		{`{"x":1}`, ""},
		{`not json`, ""},
		{`{"EventId"`, ""},
	} {
		if got := RowEventID([]byte(tc.in)); got != tc.want {
			t.Errorf("RowEventID(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSplitArray checks SplitArray against encoding/json: on a valid JSON
// array of objects it must find the same elements; it never panics, and
// RowEventID agrees with a full decode.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{twoRows, `[]`, `[{}]`, `[{"EventId":"x\\"}]`, `[1,2]`, `{"a":1}`, `[{"a":[{"b":[]}]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got [][]byte
		n, err := SplitArray(data, func(e []byte) { got = append(got, e) })
		var want []json.RawMessage
		if json.Unmarshal(data, &want) != nil {
			return // structure-only checks may accept what encoding/json refuses
		}
		allObjects := true
		for _, w := range want {
			if bytes.TrimSpace(w)[0] != '{' {
				allObjects = false
			}
		}
		if !allObjects {
			if err == nil {
				t.Fatalf("accepted an array with a non-object element: %q", data)
			}
			return
		}
		if err != nil || n != len(want) {
			t.Fatalf("valid array of %d objects: n=%d err=%v (%q)", len(want), n, err, data)
		}
		for i := range want {
			if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
				t.Fatalf("element %d: %q, want %q", i, got[i], want[i])
			}
			if id, want := RowEventID(got[i]), firstEventID(t, want[i]); id != want {
				t.Fatalf("RowEventID(%q) = %q, want %q", got[i], id, want)
			}
		}
	})
}

// firstEventID decodes the first top-level "EventId" member of a valid
// JSON object with encoding/json: its string value, or "".
func firstEventID(t *testing.T, obj []byte) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if k == "EventId" {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return ""
			}
			return s
		}
	}
	return ""
}

func TestClosedServerRefusesSetDown(t *testing.T) {
	s := start(t, Options{})
	s.Close()
	s.Close() // idempotent
	if err := s.SetDown(false); err == nil {
		t.Error("SetDown after Close succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(), nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Error("request to a closed server succeeded")
	}
}
