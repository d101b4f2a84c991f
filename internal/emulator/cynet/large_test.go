package cynet

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fillBacklog adds n alerts spread over a day before t0, 1,000 per second
// of LastSeen, so that (LastSeen, ClientDbId) order is ClientDbId order.
func fillBacklog(s *Server, n int) {
	for i := 0; i < n; i += 1000 {
		s.AddAlertsAt(min(1000, n-i), t0.Add(-24*time.Hour+time.Duration(i/1000)*time.Second))
	}
}

// scanIDs appends the ClientDbId of every top-level entity in a page body:
// each entity starts with {"ClientDbId": after '[' or ',' (the File object's
// own ClientDbId follows ':').
func scanIDs(body []byte, out []int64) []int64 {
	marker := []byte(`{"ClientDbId":`)
	for i := 0; ; {
		j := bytes.Index(body[i:], marker)
		if j < 0 {
			return out
		}
		j += i
		i = j + len(marker)
		if j == 0 || (body[j-1] != '[' && body[j-1] != ',') {
			continue
		}
		k := i
		for k < len(body) && body[k] >= '0' && body[k] <= '9' {
			k++
		}
		id, _ := strconv.ParseInt(string(body[i:k]), 10, 64)
		out = append(out, id)
	}
}

// TestLargeStore builds a 1,000,000-alert backlog (100,000 with -short,
// 20,000 under -race), measures generation and memory, then pages through
// all of it over HTTP with Limit 1000 and checks every alert comes exactly
// once, in order. Only generous bounds are asserted; numbers are logged.
func TestLargeStore(t *testing.T) {
	n := 1_000_000
	switch {
	case raceEnabled:
		n = 20_000
	case testing.Short():
		n = 100_000
	}
	s := start(t, Options{})
	before := heapInUse()
	begin := time.Now()
	fillBacklog(s, n)
	gen := time.Since(begin)
	perAlert := float64(heapInUse()-before) / float64(n)
	t.Logf("generated %d alerts in %v (%.0f alerts/s), %.0f bytes/alert of heap", n, gen, float64(n)/gen.Seconds(), perAlert)
	if perAlert > 200 {
		t.Errorf("%.0f bytes per stored alert", perAlert)
	}

	tok := login(t, hc, s, TokenPath)
	since := t0.Add(-25 * time.Hour).Format(plain)
	var buf bytes.Buffer
	got := make([]int64, 0, n)
	var wire int64
	pages := 0
	begin = time.Now()
	for off := 0; ; pages++ {
		req, _ := http.NewRequest(http.MethodGet, listURL(s, BulkPath, "LastSeen", since, "Limit", "1000", "Offset", strconv.Itoa(off)), nil)
		req.Header["access_token"] = []string{tok}
		req.Header["client_id"] = []string{"1042"}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("page at %d: %d %v", off, resp.StatusCode, err)
		}
		wire += int64(buf.Len())
		k := len(got)
		got = scanIDs(buf.Bytes(), got)
		off += len(got) - k
		if len(got)-k < 1000 {
			break
		}
	}
	took := time.Since(begin)
	t.Logf("paged %d alerts in %d requests in %v (%.0f alerts/s, %.1f ms/page, %.0f MB, %.0f bytes/alert on the wire)",
		len(got), pages+1, took, float64(len(got))/took.Seconds(), took.Seconds()*1000/float64(pages+1), float64(wire)/1e6, float64(wire)/float64(n))
	if len(got) != n {
		t.Fatalf("paged %d alerts, want %d", len(got), n)
	}
	for i, id := range got {
		if id != FirstAlertID+int64(i) {
			t.Fatalf("row %d is alert %d", i, id)
		}
	}
	if gen+took > 60*time.Second {
		t.Errorf("generation %v + paging %v exceeds 60 s", gen, took)
	}

	// Updates on a large store shift part of the index: time a few.
	p := newPRNG(1, 1)
	begin = time.Now()
	const updates = 200
	for i := 0; i < updates; i++ {
		s.UpdateAlert(FirstAlertID + int64(p.intn(n)))
	}
	t.Logf("UpdateAlert on %d alerts: %v each", n, time.Since(begin)/updates)
}

var (
	benchOnce sync.Once
	benchSrv  *Server
	benchMem  float64
)

// benchStore returns a shared 1,000,000-alert server (not listening).
func benchStore() *Server {
	benchOnce.Do(func() {
		before := heapInUse()
		benchSrv = New(Options{})
		fillBacklog(benchSrv, 1_000_000)
		benchMem = float64(heapInUse()-before) / 1e6
	})
	return benchSrv
}

// BenchmarkAddAlerts measures generation (storing) speed.
func BenchmarkAddAlerts(b *testing.B) {
	s := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		s.AddAlerts(1000)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkRender measures rendering one alert to JSON.
func BenchmarkRender(b *testing.B) {
	s := New(Options{})
	s.AddAlerts(10_000)
	rd := &renderer{c: s.cat}
	var out []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := FirstAlertID + int64(i%10_000)
		out = rd.appendAlert(out[:0], id, s.st.recs[id-FirstAlertID])
		i++
	}
	b.SetBytes(int64(len(out)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkPage fetches one 1,000-alert page at a random offset of a
// 1,000,000-alert store over loopback HTTP, client read included.
func BenchmarkPage(b *testing.B) {
	s := benchStore()
	hs := httptest.NewServer(s)
	defer hs.Close()
	tok := newToken("bench", time.Now(), time.Hour)
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(time.Hour)
	s.mu.Unlock()
	since := url.QueryEscape(t0.Add(-25 * time.Hour).Format(plain))
	p := newPRNG(3, 3)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		off := p.intn(999) * 1000
		req, _ := http.NewRequest(http.MethodGet, hs.URL+BulkPath+"?LastSeen="+since+"&Limit=1000&Offset="+strconv.Itoa(off), nil)
		req.Header["access_token"] = []string{tok}
		req.Header["client_id"] = []string{"1042"}
		resp, err := hs.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, _ = io.Copy(&buf, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "alerts/s")
	b.ReportMetric(benchMem, "MB-store/1M")
}
