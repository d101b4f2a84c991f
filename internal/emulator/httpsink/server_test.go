package httpsink

import (
	"bytes"
	"compress/gzip"
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

// post sends body and returns the status and the Retry-After header.
func post(t *testing.T, url string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	code, ra, err := tryPost(url, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return code, ra
}

func tryPost(url string, body []byte, header map[string]string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

func TestNDJSONRecordsDocsAndIDs(t *testing.T) {
	s := start(t, Options{})
	body := "{\"event\":{\"id\":\"a\"}}\n{\"event\":{\"id\":\"b\"},\"x\":1}\r\n\n{\"no\":\"id\"}\n"
	if code, _ := post(t, s.URL()+"/any/path", []byte(body), nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	if code, _ := post(t, s.URL(), []byte(`{"event":{"id":"a"}}`), nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	if code, _ := post(t, s.URL(), []byte(`{"event":{"id":42}}`), nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	want := []string{`{"event":{"id":"a"}}`, `{"event":{"id":"b"},"x":1}`, `{"no":"id"}`, `{"event":{"id":"a"}}`, `{"event":{"id":42}}`}
	if diff := cmp.Diff(want, strs(s.Docs())); diff != "" {
		t.Errorf("docs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"a": 2, "b": 1, "42": 1}, s.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	if s.Count() != 5 || s.Requests() != 3 {
		t.Errorf("Count %d Requests %d, want 5 and 3", s.Count(), s.Requests())
	}
	if got, want := s.BytesOnWire(), int64(len(body)+len(`{"event":{"id":"a"}}`)+len(`{"event":{"id":42}}`)); got != want {
		t.Errorf("BytesOnWire %d, want %d", got, want)
	}
}

func TestGzipJSONArray(t *testing.T) {
	s := start(t, Options{})
	plain := `[{"event":{"id":"x"}}, {"a":[1,2]} ,{"event":{"id":"y"}}]`
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(plain))
	zw.Close()
	code, _ := post(t, s.URL(), zb.Bytes(), map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json"})
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	want := []string{`{"event":{"id":"x"}}`, `{"a":[1,2]}`, `{"event":{"id":"y"}}`}
	if diff := cmp.Diff(want, strs(s.Docs())); diff != "" {
		t.Errorf("docs (-want +got):\n%s", diff)
	}
	if got := s.BytesOnWire(); got != int64(zb.Len()) {
		t.Errorf("BytesOnWire %d, want %d (compressed)", got, zb.Len())
	}
	if diff := cmp.Diff(map[string]int{"x": 1, "y": 1}, s.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestFailNext(t *testing.T) {
	s := start(t, Options{})
	s.FailNext(2, http.StatusTooManyRequests, "7")
	doc := []byte(`{"event":{"id":"a"}}`)
	for i := 0; i < 2; i++ {
		code, ra := post(t, s.URL(), doc, nil)
		if code != 429 || ra != "7" {
			t.Fatalf("request %d: status %d Retry-After %q, want 429 and 7", i, code, ra)
		}
		if s.Count() != 0 {
			t.Fatalf("a failed request recorded documents")
		}
	}
	if code, ra := post(t, s.URL(), doc, nil); code != 200 || ra != "" {
		t.Fatalf("third request: status %d Retry-After %q", code, ra)
	}
	if s.Count() != 1 || s.Requests() != 3 {
		t.Errorf("Count %d Requests %d, want 1 and 3", s.Count(), s.Requests())
	}
}

func TestAllOrNothing(t *testing.T) {
	s := start(t, Options{})
	if code, _ := post(t, s.URL(), []byte("{\"ok\":1}\n{broken\n"), nil); code != 400 {
		t.Fatalf("status %d, want 400", code)
	}
	s.RejectMatching("POISON", http.StatusUnprocessableEntity)
	if code, _ := post(t, s.URL(), []byte("{\"ok\":1}\n{\"m\":\"POISON\"}\n"), nil); code != 422 {
		t.Fatalf("status %d, want 422", code)
	}
	if code, _ := post(t, s.URL(), nil, nil); code != 400 {
		t.Fatalf("empty body: status %d, want 400", code)
	}
	if s.Count() != 0 {
		t.Fatalf("rejected requests recorded %d documents", s.Count())
	}
	s.RejectMatching("", 0)
	if code, _ := post(t, s.URL(), []byte("{\"m\":\"POISON\"}\n"), nil); code != 200 {
		t.Fatalf("after removing the rule: status %d", code)
	}
}

func TestAuth(t *testing.T) {
	s := start(t, Options{BearerToken: "tok", BasicUser: "u", BasicPassword: "p"})
	doc := []byte(`{"a":1}`)
	for _, tc := range []struct {
		name string
		h    map[string]string
		want int
	}{
		{"none", nil, 401},
		{"wrong bearer", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"bearer", map[string]string{"Authorization": "Bearer tok"}, 200},
		{"basic", map[string]string{"Authorization": "Basic dTpw"}, 200}, // u:p
		{"wrong basic", map[string]string{"Authorization": "Basic dTpx"}, 401},
	} {
		if code, _ := post(t, s.URL(), doc, tc.h); code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.want)
		}
	}
	if s.Count() != 2 {
		t.Errorf("Count %d, want 2", s.Count())
	}
	req, _ := http.NewRequest(http.MethodOptions, s.URL(), nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("OPTIONS: status %d, want 204", resp.StatusCode)
	}
}

func TestSetDownAndUpOnSameAddress(t *testing.T) {
	s := start(t, Options{})
	addr := s.Addr()
	doc := []byte(`{"a":1}`)
	post(t, s.URL(), doc, nil)
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	// A pooled connection may not have noticed the close yet: dial anew.
	client.CloseIdleConnections()
	if _, _, err := tryPost(s.URL(), doc, nil); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("post while down: err %v, want connection refused", err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("address changed from %s to %s", addr, s.Addr())
	}
	if code, _ := post(t, s.URL(), doc, nil); code != 200 {
		t.Fatalf("after up: status %d", code)
	}
	if s.Count() != 2 {
		t.Errorf("Count %d, want 2", s.Count())
	}
}

func TestLatencyAndReset(t *testing.T) {
	s := start(t, Options{DiscardDocs: true})
	s.SetLatency(50 * time.Millisecond)
	begin := time.Now()
	post(t, s.URL(), []byte("{\"a\":1}\n{\"a\":2}\n"), nil)
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Errorf("response after %s, want at least 50ms", d)
	}
	if s.Count() != 2 || len(s.Docs()) != 0 || len(s.IDs()) != 0 {
		t.Errorf("DiscardDocs: Count %d Docs %d IDs %d, want 2, 0, 0", s.Count(), len(s.Docs()), len(s.IDs()))
	}
	s.Reset()
	if s.Count() != 0 || s.Requests() != 0 || s.BytesOnWire() != 0 {
		t.Errorf("after Reset: %d %d %d", s.Count(), s.Requests(), s.BytesOnWire())
	}
}

func strs(docs [][]byte) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = string(d)
	}
	return out
}
