package syslog

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/testcert"
)

func start(t testing.TB, network string, opt Options) *Server {
	t.Helper()
	s := New(opt)
	var err error
	if network == "udp" {
		err = s.StartUDP("127.0.0.1:0")
	} else {
		err = s.Start("127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func send(t testing.TB, network, addr, data string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
}

const (
	m1 = `<165>1 2025-03-01T08:01:05.123Z h app - ID [x@1 eventId="e1"] CEF:0|a|b|c|d|e|5|externalId=ignored`
	m2 = `<164>Mar  1 08:01:05 h app: CEF:0|a|b|c|d|e|5|rt=1 externalId=e2`
	m3 = `<13>1 - h app - - - {"event":{"id":"e3"}}`
)

func TestServerTCP(t *testing.T) {
	s := start(t, "tcp", Options{})
	stream := fmt.Sprintf("%d %s%s\n%d %s", len(m1), m1, m2, len(m3), m3) + "garbage\n"
	send(t, "tcp", s.Addr(), stream)
	if !s.WaitCount(3, 5*time.Second) {
		t.Fatalf("count %d", s.Count())
	}
	waitFor(t, func() bool { return s.Malformed() == 1 })
	type rec struct{ Raw, Framing, Transport, EventID, Format string }
	var got []rec
	for _, m := range s.Messages() {
		got = append(got, rec{string(m.Raw), m.Framing, m.Transport, m.EventID, m.Format})
	}
	want := []rec{
		{m1, FramingOctetCounting, "tcp", "e1", FormatRFC5424},
		{m2, FramingLF, "tcp", "e2", FormatRFC3164},
		{m3, FramingOctetCounting, "tcp", "e3", FormatRFC5424},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"e1": 1, "e2": 1, "e3": 1}, s.IDs()); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if s.BytesOnWire() != int64(len(stream)) || s.Connections() != 1 || s.Distinct() != 3 {
		t.Errorf("bytes %d (want %d), connections %d, distinct %d", s.BytesOnWire(), len(stream), s.Connections(), s.Distinct())
	}
	if !strings.Contains(s.LastError(), "no PRI") {
		t.Errorf("LastError %q", s.LastError())
	}
	s.Reset()
	if s.Count() != 0 || len(s.IDs()) != 0 || s.Malformed() != 0 || s.BytesOnWire() != 0 {
		t.Error("Reset left counters")
	}
}

func TestServerOversizedFrameClosesConnection(t *testing.T) {
	s := start(t, "tcp", Options{MaxFrameBytes: 100})
	send(t, "tcp", s.Addr(), "500 "+strings.Repeat("x", 500))
	waitFor(t, func() bool { return s.Malformed() == 1 })
	if s.Count() != 0 {
		t.Errorf("count %d", s.Count())
	}
}

func TestServerUDP(t *testing.T) {
	s := start(t, "udp", Options{IDsOnly: true})
	for _, m := range []string{m1, m2 + "\n", m3} {
		send(t, "udp", s.Addr(), m)
	}
	if !s.WaitCount(3, 5*time.Second) {
		t.Fatalf("count %d", s.Count())
	}
	if len(s.Messages()) != 0 {
		t.Error("IDsOnly kept messages")
	}
	if diff := cmp.Diff(map[string]int{"e1": 1, "e2": 1, "e3": 1}, s.IDs()); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestServerDiscardDocs(t *testing.T) {
	s := start(t, "tcp", Options{DiscardDocs: true})
	send(t, "tcp", s.Addr(), m1+"\n"+m3+"\n")
	if !s.WaitCount(2, 5*time.Second) {
		t.Fatalf("count %d", s.Count())
	}
	if len(s.Messages()) != 0 || s.Distinct() != 0 {
		t.Error("DiscardDocs kept messages or IDs")
	}
}

func TestServerTLS(t *testing.T) {
	pki := testcert.NewT(t)
	for _, tc := range []struct {
		name          string
		requireClient bool
		client        *tls.Config
		ok            bool
	}{
		{"tls", false, pki.ClientTLS(false), true},
		{"mtls", true, pki.ClientTLS(true), true},
		{"mtls without certificate", true, pki.ClientTLS(false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			if err := s.StartTLS("127.0.0.1:0", pki.ServerTLS(tc.requireClient)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			c, err := tls.Dial("tcp", s.Addr(), tc.client)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte(m3 + "\n"))
			_ = c.Close()
			if tc.ok {
				if !s.WaitCount(1, 5*time.Second) || s.Messages()[0].Transport != "tls" {
					t.Fatalf("count %d", s.Count())
				}
				return
			}
			waitFor(t, func() bool { return s.HandshakeErrors() == 1 })
			if s.Count() != 0 {
				t.Errorf("recorded %d messages from a rejected client", s.Count())
			}
		})
	}
}

func TestServerSetDown(t *testing.T) {
	s := start(t, "tcp", Options{})
	addr := s.Addr()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write([]byte(m1 + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	// What was sent before SetDown is read before the connection closes.
	if s.Count() != 1 {
		t.Errorf("count %d after SetDown, want 1", s.Count())
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("dial succeeded while down")
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("address changed: %s -> %s", addr, s.Addr())
	}
	send(t, "tcp", addr, m3+"\n")
	if !s.WaitCount(2, 5*time.Second) {
		t.Fatalf("count %d", s.Count())
	}
	s.Close()
	if err := s.SetDown(false); err == nil {
		t.Error("SetDown after Close succeeded")
	}
	if err := New(Options{}).SetDown(true); err == nil {
		t.Error("SetDown before Start succeeded")
	}
}

func TestServerDropConnections(t *testing.T) {
	s := start(t, "tcp", Options{})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write([]byte(m1 + "\n")); err != nil {
		t.Fatal(err)
	}
	s.WaitCount(1, 5*time.Second)
	s.DropConnections()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after DropConnections")
	}
	send(t, "tcp", s.Addr(), m3+"\n") // still listening
	if !s.WaitCount(2, 5*time.Second) {
		t.Fatalf("count %d", s.Count())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkServer measures how many messages per second the emulator
// takes from one TCP connection (octet counting, IDsOnly).
func BenchmarkServer(b *testing.B) {
	s := start(b, "tcp", Options{IDsOnly: true})
	var stream []byte
	const per = 1000
	for i := 0; i < per; i++ {
		m := fmt.Sprintf(`<165>1 2025-03-01T08:01:05.123Z relay01 alertrelay - cybertrace.detection [alertrelay@32473 eventId="id-%06d" dataset="cybertrace.detection" provider="ct"] CEF:0|Kaspersky|CyberTrace||KL_Malicious_URL|KL_Malicious_URL|8|rt=1740816065123 externalId=id-%06d cat=cybertrace.detection src=10.0.0.5 request=http://fakess123.nu cs1Label=MatchedIndicator cs1=fakess123.nu/*`, i, i)
		stream = fmt.Appendf(stream, "%d %s", len(m), m)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	b.SetBytes(int64(len(stream)))
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(stream); err != nil {
			b.Fatal(err)
		}
	}
	if !s.WaitCount(b.N*per, 30*time.Second) {
		b.Fatalf("count %d of %d", s.Count(), b.N*per)
	}
	b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "msgs/s")
}
