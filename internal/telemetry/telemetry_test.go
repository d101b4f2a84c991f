package telemetry

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	l := NewLogLimiter(10 * time.Second)
	l.now = func() time.Time { return now }
	steps := []struct {
		advance    time.Duration
		key        string
		ok         bool
		suppressed int
	}{
		{0, "a", true, 0},
		{time.Second, "a", false, 0},
		{time.Second, "a", false, 0},
		{0, "b", true, 0}, // keys are independent
		{8 * time.Second, "a", true, 2},
		{10 * time.Second, "a", true, 0},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		n, ok := l.Allow(s.key)
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s): Allow = %d, %v; want %d, %v", i, s.key, n, ok, s.suppressed, s.ok)
		}
	}
}

func TestHealthReport(t *testing.T) {
	h := NewHealth()
	if ok, body := h.Report(); !ok || !strings.Contains(string(body), `"status":"ok"`) {
		t.Fatalf("empty: %v %s", ok, body)
	}
	h.Set("source cynet-acme", false, "authentication failed")
	h.Set("sink siem", true, "")
	ok, body := h.Report()
	var rep struct {
		Status     string
		Components []struct {
			Component, Message string
			OK                 bool
		}
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if ok || rep.Status != "degraded" || len(rep.Components) != 2 ||
		rep.Components[0].Component != "sink siem" || !rep.Components[0].OK ||
		rep.Components[1].Message != "authentication failed" || rep.Components[1].OK {
		t.Errorf("report %v %+v", ok, rep)
	}
	h.Set("source cynet-acme", true, "")
	if ok, _ := h.Report(); !ok {
		t.Error("still degraded after recovery")
	}
	var nilHealth *Health
	nilHealth.Set("x", false, "ignored") // no panic
}

func TestAdminEndpoints(t *testing.T) {
	m := NewMetrics()
	h := NewHealth()
	a := NewAdmin(m, h, slog.New(slog.DiscardHandler), false)
	m.Sink("siem").Sent.Add(3)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "starting\n" {
		t.Errorf("/readyz before ready: %d %q", code, body)
	}
	a.SetReady(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d", code)
	}
	h.Set("sink siem", false, "check failed")
	if code, body := get("/healthz"); code != http.StatusOK || !strings.Contains(body, `"degraded"`) {
		t.Errorf("/healthz degraded: %d %s (must stay 200: liveness)", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `alertrelay_sink_sent_events_total{sink="siem"} 3`) {
		t.Errorf("/metrics: %d, sent counter missing", code)
	}
	if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof served without being enabled: %d", code)
	}
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	log, err := NewLogger(&b, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"msg":"shown"`) {
		t.Errorf("log output %q", b.String())
	}
	if _, err := NewLogger(&b, "loud", "text"); err == nil {
		t.Error("unknown level accepted")
	}
}
