package splunkhec

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

const (
	token   = "11111111-2222-3333-4444-555555555555"
	channel = "0b1e7c52-8a44-4b8e-9d6a-2f0c1d3e4f5a"
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

var client = &http.Client{Timeout: 10 * time.Second}

type resp struct {
	Status int
	Body   string
	Header http.Header
}

// do sends a request with the given headers ("Authorization" defaults to
// the test token; set it to "" to send none).
func do(t *testing.T, method, url string, hdr map[string]string, body []byte) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Splunk "+token)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, string(b), r.Header}
}

func TestEventEndpointRecordsEnvelopes(t *testing.T) {
	s := start(t, Options{Token: token})
	body := `{"time":1740816065.123,"host":"h1","source":"alertrelay:ct","sourcetype":"alertrelay:cybertrace.detection","index":"sec","fields":{"env":"prod"},"event":{"event":{"id":"a\"1"},"x":1}}
{"event":"plain string","time":"1740816066"}`
	r := do(t, "POST", s.URL()+"/services/collector/event", nil, []byte(body))
	if r.Status != 200 || r.Body != `{"text":"Success","code":0}` {
		t.Fatalf("reply %d %s", r.Status, r.Body)
	}
	want := []Event{
		{Endpoint: "event", Time: "1740816065.123", Host: "h1", Source: "alertrelay:ct", Sourcetype: "alertrelay:cybertrace.detection",
			Index: "sec", Fields: `{"env":"prod"}`, Event: `{"event":{"id":"a\"1"},"x":1}`, ID: `a"1`},
		{Endpoint: "event", Time: "1740816066", Event: `"plain string"`},
	}
	if diff := cmp.Diff(want, s.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{`a"1`: 1}, s.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	if s.Count() != 2 || s.Requests() != 1 || s.BytesOnWire() != int64(len(body)) {
		t.Errorf("count %d requests %d wire %d", s.Count(), s.Requests(), s.BytesOnWire())
	}
	// The collector's other spellings are the same endpoint.
	for _, p := range []string{"/services/collector", "/services/collector/event/1.0"} {
		if r := do(t, "POST", s.URL()+p, nil, []byte(`{"event":"x"}`)); r.Status != 200 {
			t.Errorf("%s: %d %s", p, r.Status, r.Body)
		}
	}
}

func TestAuthentication(t *testing.T) {
	s := start(t, Options{Token: token})
	for _, tc := range []struct {
		name, auth string
		disabled   bool
		status     int
		body       string
	}{
		{"no header", "", false, 401, `{"text":"Token is required","code":2}`},
		{"other scheme", "Bearer " + token, false, 401, `{"text":"Invalid authorization","code":3}`},
		{"wrong token", "Splunk nope", false, 403, `{"text":"Invalid token","code":4}`},
		{"disabled", "Splunk " + token, true, 403, `{"text":"Token disabled","code":1}`},
		{"good", "Splunk " + token, false, 200, `{"text":"Success","code":0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.SetTokenDisabled(tc.disabled)
			r := do(t, "POST", s.URL()+"/services/collector/event", map[string]string{"Authorization": tc.auth}, []byte(`{"event":{"event":{"id":"x"}}}`))
			if r.Status != tc.status || r.Body != tc.body {
				t.Errorf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.body)
			}
		})
	}
	if s.Count() != 1 {
		t.Errorf("recorded %d events, want only the authenticated one", s.Count())
	}
}

func TestEventRejections(t *testing.T) {
	good := `{"event":{"event":{"id":"g"}}}`
	for _, tc := range []struct {
		name, body string
		status     int
		reply      string
	}{
		{"empty", "  \n", 400, `{"text":"No data","code":5}`},
		{"not json", "hello", 400, `{"text":"Invalid data format","code":6,"invalid-event-number":0}`},
		{"broken second", good + `{"event":`, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":1}`},
		{"array", `[` + good + `]`, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":0}`},
		{"bad literal (strict)", `{"event":tru}`, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":0}`},
		{"no event", good + `{"time":1}`, 400, `{"text":"Event field is required","code":12,"invalid-event-number":1}`},
		{"blank event", good + good + `{"event":""}`, 400, `{"text":"Event field cannot be blank","code":13,"invalid-event-number":2}`},
		{"time not numeric", `{"time":"yesterday","event":1}`, 400, `{"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}`},
		{"time exponent", `{"time":1.7e9,"event":1}`, 400, `{"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}`},
		{"fields number", `{"fields":{"a":1},"event":1}`, 400, `{"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}`},
		{"index not allowed", good + `{"index":"secret","event":1}`, 400, `{"text":"Incorrect index","code":7,"invalid-event-number":1}`},
		{"index not a string", `{"index":5,"event":1}`, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":0}`},
		{"allowed index", `{"index":"main","event":1}` + "\r\n" + good, 200, `{"text":"Success","code":0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{Token: token, Indexes: []string{"main"}})
			r := do(t, "POST", s.URL()+"/services/collector/event", nil, []byte(tc.body))
			if r.Status != tc.status || r.Body != tc.reply {
				t.Errorf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.reply)
			}
			if want := map[bool]int{true: 2, false: 0}[tc.status == 200]; s.Count() != want {
				t.Errorf("recorded %d events, want %d (a request is all or nothing)", s.Count(), want)
			}
		})
	}
}

func TestIndexBeforeInvalid(t *testing.T) {
	s := start(t, Options{IndexBeforeInvalid: true})
	body := `{"event":{"event":{"id":"a"}}}{"event":{"event":{"id":"b"}}}{"nothing":1}{"event":{"event":{"id":"c"}}}`
	r := do(t, "POST", s.URL()+"/services/collector/event", nil, []byte(body))
	if r.Status != 400 || !strings.Contains(r.Body, `"invalid-event-number":2`) {
		t.Fatalf("reply %d %s", r.Status, r.Body)
	}
	if diff := cmp.Diff(map[string]int{"a": 1, "b": 1}, s.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestRawEndpoint(t *testing.T) {
	s := start(t, Options{Token: token, Indexes: []string{"sec"}})
	body := "category=KL_IP matched=1.2.3.4\r\n\n" + `{"event":{"id":"r1"}}` + "\n"
	r := do(t, "POST", s.URL()+"/services/collector/raw?index=sec&sourcetype=st&source=src&host=h", nil, []byte(body))
	if r.Status != 200 || r.Body != `{"text":"Success","code":0}` {
		t.Fatalf("reply %d %s", r.Status, r.Body)
	}
	want := []Event{
		{Endpoint: "raw", Index: "sec", Sourcetype: "st", Source: "src", Host: "h", Event: "category=KL_IP matched=1.2.3.4"},
		{Endpoint: "raw", Index: "sec", Sourcetype: "st", Source: "src", Host: "h", Event: `{"event":{"id":"r1"}}`, ID: "r1"},
	}
	if diff := cmp.Diff(want, s.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if r := do(t, "POST", s.URL()+"/services/collector/raw?index=other", nil, []byte("x\n")); r.Status != 400 || r.Body != `{"text":"Incorrect index","code":7}` {
		t.Errorf("index not allowed: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", s.URL()+"/services/collector/raw", nil, nil); r.Status != 400 || r.Body != `{"text":"No data","code":5}` {
		t.Errorf("empty: %d %s", r.Status, r.Body)
	}
}

func TestAcknowledgement(t *testing.T) {
	s := start(t, Options{Token: token, Ack: true, AckDelay: time.Hour})
	ev := []byte(`{"event":{"event":{"id":"k"}}}`)
	url := s.URL() + "/services/collector/event"
	ackURL := s.URL() + "/services/collector/ack?channel=" + channel
	if r := do(t, "POST", url, nil, ev); r.Status != 400 || r.Body != `{"text":"Data channel is missing","code":10}` {
		t.Errorf("no channel: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", url, map[string]string{"X-Splunk-Request-Channel": "not-a-guid"}, ev); r.Status != 400 || r.Body != `{"text":"Invalid data channel","code":11}` {
		t.Errorf("bad channel: %d %s", r.Status, r.Body)
	}
	hdr := map[string]string{"X-Splunk-Request-Channel": channel}
	if r := do(t, "POST", url, hdr, ev); r.Status != 200 || r.Body != `{"text":"Success","code":0,"ackId":0}` {
		t.Errorf("first: %d %s", r.Status, r.Body)
	}
	s.SetAckDelay(0)
	if r := do(t, "POST", url+"?channel="+channel, nil, ev); r.Status != 200 || r.Body != `{"text":"Success","code":0,"ackId":1}` {
		t.Errorf("second (channel in the query): %d %s", r.Status, r.Body)
	}
	s.NeverAckNext(1)
	if r := do(t, "POST", url, hdr, ev); r.Body != `{"text":"Success","code":0,"ackId":2}` {
		t.Errorf("third: %d %s", r.Status, r.Body)
	}
	query := []byte(`{"acks":[0,1,2,7]}`)
	if r := do(t, "POST", ackURL, nil, query); r.Status != 200 || r.Body != `{"acks":{"0":false,"1":true,"2":false,"7":false}}` {
		t.Errorf("ack query: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", ackURL, nil, query); r.Body != `{"acks":{"0":false,"1":false,"2":false,"7":false}}` {
		t.Errorf("an ack reported true is forgotten: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", s.URL()+"/services/collector/ack", nil, query); r.Body != `{"text":"Data channel is missing","code":10}` {
		t.Errorf("ack without channel: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", ackURL, nil, []byte(`{"acks":"x"}`)); r.Status != 400 || r.Body != `{"text":"Invalid data format","code":6}` {
		t.Errorf("bad ack query: %d %s", r.Status, r.Body)
	}
	if s.AckPolls() != 4 {
		t.Errorf("AckPolls %d, want 4", s.AckPolls())
	}

	noAck := start(t, Options{Token: token})
	if r := do(t, "POST", noAck.URL()+"/services/collector/ack?channel="+channel, nil, query); r.Status != 400 || r.Body != `{"text":"ACK is disabled","code":14}` {
		t.Errorf("ack on a token without it: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", noAck.URL()+"/services/collector/event", hdr, ev); r.Body != `{"text":"Success","code":0}` {
		t.Errorf("channel on a token without ack is ignored: %d %s", r.Status, r.Body)
	}
}

func TestGzip(t *testing.T) {
	s := start(t, Options{Token: token})
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	plain := strings.Repeat(`{"event":{"event":{"id":"z"}}}`, 50)
	_, _ = zw.Write([]byte(plain))
	_ = zw.Close()
	r := do(t, "POST", s.URL()+"/services/collector/event", map[string]string{"Content-Encoding": "gzip"}, zb.Bytes())
	if r.Status != 200 {
		t.Fatalf("reply %d %s", r.Status, r.Body)
	}
	if s.Gzipped() != 1 || s.Count() != 50 || s.BytesOnWire() != int64(zb.Len()) {
		t.Errorf("gzipped %d count %d wire %d (compressed %d)", s.Gzipped(), s.Count(), s.BytesOnWire(), zb.Len())
	}
	r = do(t, "POST", s.URL()+"/services/collector/event", map[string]string{"Content-Encoding": "gzip"}, []byte(plain))
	if r.Status != 400 || r.Body != `{"text":"Invalid data format","code":6}` {
		t.Errorf("bad gzip: %d %s", r.Status, r.Body)
	}
}

func TestFailNextAndHealth(t *testing.T) {
	s := start(t, Options{Token: token})
	s.FailNext(1, 503, CodeServerBusy, "7")
	ev := []byte(`{"event":1}`)
	r := do(t, "POST", s.URL()+"/services/collector/event", nil, ev)
	if r.Status != 503 || r.Body != `{"text":"Server is busy","code":9}` || r.Header.Get("Retry-After") != "7" {
		t.Errorf("busy: %d %s %v", r.Status, r.Body, r.Header)
	}
	s.FailNext(1, 502, -1, "")
	if r := do(t, "POST", s.URL()+"/services/collector/event", nil, ev); r.Status != 502 || !strings.Contains(r.Body, "injected failure") {
		t.Errorf("plain failure: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", s.URL()+"/services/collector/event", nil, ev); r.Status != 200 {
		t.Errorf("after the failures: %d %s", r.Status, r.Body)
	}
	if s.Count() != 1 {
		t.Errorf("count %d, want 1", s.Count())
	}

	if r := do(t, "GET", s.URL()+"/services/collector/health", map[string]string{"Authorization": ""}, nil); r.Status != 200 || r.Body != `{"text":"HEC is healthy","code":17}` {
		t.Errorf("health: %d %s", r.Status, r.Body)
	}
	s.SetUnhealthy(true)
	if r := do(t, "GET", s.URL()+"/services/collector/health", nil, nil); r.Status != 503 || r.Body != `{"text":"HEC is unhealthy, queues are full","code":18}` {
		t.Errorf("unhealthy: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", s.URL()+"/services/collector/event", nil, nil); r.Status != 405 {
		t.Errorf("GET event: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", s.URL()+"/services/nothing", nil, ev); r.Status != 404 || !strings.Contains(r.Body, `"code":404`) {
		t.Errorf("unknown path: %d %s", r.Status, r.Body)
	}
}

func TestMaxBody(t *testing.T) {
	s := start(t, Options{MaxBodyBytes: 100})
	if r := do(t, "POST", s.URL()+"/services/collector/event", nil, bytes.Repeat([]byte(`{"event":1}`), 20)); r.Status != 413 {
		t.Errorf("too large: %d %s", r.Status, r.Body)
	}
	if s.Count() != 0 {
		t.Errorf("count %d", s.Count())
	}
}

func TestSetDownAndUp(t *testing.T) {
	s := start(t, Options{})
	url := s.URL()
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Post(url+"/services/collector/event", "application/json", strings.NewReader(`{"event":1}`)); err == nil {
		t.Fatal("request succeeded while down")
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if s.URL() != url {
		t.Errorf("URL changed from %s to %s", url, s.URL())
	}
	if r := do(t, "POST", url+"/services/collector/event", nil, []byte(`{"event":1}`)); r.Status != 200 {
		t.Errorf("after restart: %d %s", r.Status, r.Body)
	}
}

func TestIDsOnlyAndDiscard(t *testing.T) {
	body := []byte(`{"event":{"event":{"id":"a"}}}{"event":{"event":{"id":"b"}}}{"event":{"event":{"id":"a"}}}`)
	for _, tc := range []struct {
		name string
		opt  Options
		ids  map[string]int
	}{
		{"ids only", Options{IDsOnly: true}, map[string]int{"a": 2, "b": 1}},
		{"discard", Options{DiscardDocs: true}, map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.opt)
			if r := do(t, "POST", s.URL()+"/services/collector/event", nil, body); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if diff := cmp.Diff(tc.ids, s.IDs()); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
			if s.Count() != 3 || len(s.Events()) != 0 || s.Distinct() != len(tc.ids) {
				t.Errorf("count %d, events %d, distinct %d", s.Count(), len(s.Events()), s.Distinct())
			}
			s.Reset()
			if s.Count() != 0 || s.Requests() != 0 {
				t.Errorf("after Reset: count %d requests %d", s.Count(), s.Requests())
			}
		})
	}
}

// FuzzScanEvents checks that the scanner never panics, and that what it
// accepts in strict mode is a sequence of valid JSON objects with an event
// member, which the fast mode accepts too.
func FuzzScanEvents(f *testing.F) {
	for _, seed := range []string{
		`{"event":1}`, `{"time":1.5,"event":{"a":[1,2,{"b":"\"}"}]}}{"event":"x"}`, `{"event":""}`,
		`{"fields":{"a":["x"]},"event":1}`, `[`, `{"event":`, `{"a":1,}`, "{\"event\":\"\\u00e9\"}\n\n",
		`{"event":{"event":{"id":"x"}}} {"index":"i","event":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		strict, serr := scanEvents(nil, body, true)
		fast, ferr := scanEvents(nil, body, false)
		if serr != nil {
			if serr.event < 0 || serr.event > len(strict) {
				t.Fatalf("error position %d with %d envelopes before it", serr.event, len(strict))
			}
			return
		}
		if ferr != nil || len(fast) != len(strict) {
			t.Fatalf("strict accepted %d envelopes, fast %d (%v)", len(strict), len(fast), ferr)
		}
		for _, e := range strict {
			if e.event == nil || !json.Valid(e.event) {
				t.Fatalf("accepted envelope with event %q", e.event)
			}
		}
		if len(strict) == 0 && len(bytes.TrimSpace(body)) > 0 {
			t.Fatalf("non-blank body %q gave no envelope and no error", body)
		}
	})
}

// FuzzSkipString checks the quote-to-quote skipString against the plain
// byte loop.
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"x`, `"a\\"b"`, `"a\\\"b"c"`, `"\`, `"`, `"\\\\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			b = append([]byte{'"'}, b...)
		}
		want, wok := 0, false
		for i := 1; i < len(b); i++ {
			if b[i] == '\\' {
				i++
				continue
			}
			if b[i] == '"' {
				want, wok = i+1, true
				break
			}
		}
		got, ok := skipString(b, 0)
		if ok != wok || got != want {
			t.Fatalf("skipString(%q) = %d, %v; want %d, %v", b, got, ok, want, wok)
		}
	})
}
