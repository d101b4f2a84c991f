package emuhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/alertrelay/alertrelay/internal/testcert"
)

// hello answers "hello" and counts the requests it served.
type hello struct{ n atomic.Int64 }

func (h *hello) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.n.Add(1)
	_, _ = io.WriteString(w, "hello "+r.Proto)
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newClient(cfg *tls.Config) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: cfg != nil},
	}
}

func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("%s: error %v, want %q", what, err, want)
	}
}

func TestStartSetDownRestartOnSameAddress(t *testing.T) {
	h := &hello{}
	s := New("emu", h)
	if s.Addr() != "" {
		t.Errorf("Addr before Start: %q, want empty", s.Addr())
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr, url := s.Addr(), s.URL()
	if url != "http://"+addr || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr %q URL %q", addr, url)
	}
	c := newClient(nil)
	if body, err := get(c, url); err != nil || body != "hello HTTP/1.1" {
		t.Fatalf("GET: %q, %v", body, err)
	}

	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDown(true); err != nil {
		t.Fatalf("SetDown(true) twice: %v", err)
	}
	c.CloseIdleConnections() // the pooled one is closed already; be sure to dial
	if _, err := get(c, url); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("GET while down: %v, want connection refused", err)
	}
	if s.Addr() != addr || s.URL() != url {
		t.Fatalf("while down: Addr %q URL %q, want %q %q", s.Addr(), s.URL(), addr, url)
	}

	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatalf("SetDown(false) twice: %v", err)
	}
	if s.Addr() != addr || s.URL() != url {
		t.Fatalf("after up: Addr %q URL %q, want %q %q", s.Addr(), s.URL(), addr, url)
	}
	if body, err := get(c, url); err != nil || body != "hello HTTP/1.1" {
		t.Fatalf("GET after up: %q, %v", body, err)
	}
	if n := h.n.Load(); n != 2 {
		t.Errorf("handler served %d requests, want 2", n)
	}
}

// SetDown(true) must also cut connections that are open: a request in
// flight fails and an idle keep-alive connection is closed.
func TestSetDownClosesConnections(t *testing.T) {
	entered := make(chan struct{})
	s := New("emu", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := idle.Read(buf); err != nil { // the response; the connection stays open
		t.Fatal(err)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := get(newClient(nil), s.URL()+"/block")
		errc <- err
	}()
	<-entered
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("request in flight succeeded across SetDown(true)")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request in flight still running 5s after SetDown(true)")
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(buf); err == nil {
		t.Errorf("idle connection still open after SetDown(true): read %q", buf[:n])
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle connection still open after SetDown(true): %v", err)
	}
}

func TestStartTLS(t *testing.T) {
	pki := testcert.NewT(t)
	cfg := pki.ServerTLS(false)
	s := New("emu", &hello{})
	if err := s.StartTLS("127.0.0.1:0", cfg); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The server works on a clone: changing cfg afterwards has no effect.
	cfg.Certificates = nil

	if want := "https://" + s.Addr(); s.URL() != want {
		t.Fatalf("URL %q, want %q", s.URL(), want)
	}
	c := newClient(pki.ClientTLS(false))
	if body, err := get(c, s.URL()); err != nil || body != "hello HTTP/2.0" {
		t.Fatalf("GET over TLS: %q, %v; want HTTP/2", body, err)
	}
	h1 := newClient(pki.ClientTLS(false))
	h1.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	if body, err := get(h1, s.URL()); err != nil || body != "hello HTTP/1.1" {
		t.Fatalf("GET over TLS, HTTP/1.1 only: %q, %v", body, err)
	}
	if body, err := get(newClient(nil), "http://"+s.Addr()); err == nil && strings.HasPrefix(body, "hello") {
		t.Error("plain HTTP to the TLS server reached the handler")
	}

	// TLS survives a restart.
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	if body, err := get(c, s.URL()); err != nil || body != "hello HTTP/2.0" {
		t.Fatalf("GET over TLS after restart: %q, %v", body, err)
	}
}

func TestMutualTLS(t *testing.T) {
	pki := testcert.NewT(t)
	s := New("emu", &hello{})
	if err := s.StartTLS("127.0.0.1:0", pki.ServerTLS(true)); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := get(newClient(pki.ClientTLS(false)), s.URL()); err == nil {
		t.Error("GET without a client certificate succeeded")
	}
	if _, err := get(newClient(pki.ClientTLS(true)), s.URL()); err != nil {
		t.Errorf("GET with a client certificate: %v", err)
	}
}

func TestErrors(t *testing.T) {
	s := New("emu", &hello{})
	wantErr(t, "StartTLS(nil)", s.StartTLS("127.0.0.1:0", nil), "emu: StartTLS needs a tls.Config")
	wantErr(t, "SetDown before Start", s.SetDown(true), "emu: not started")
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Start twice", s.Start("127.0.0.1:0"), "emu: already started")
	wantErr(t, "StartTLS after Start", s.StartTLS("127.0.0.1:0", &tls.Config{}), "emu: already started")

	// Listening on a taken address fails, with the net error wrapped.
	other := New("other", &hello{})
	err := other.Start(s.Addr())
	var opErr *net.OpError
	if err == nil || !strings.HasPrefix(err.Error(), "other: listen tcp ") || !errors.As(err, &opErr) {
		t.Errorf("Start on a taken address: %v, want a wrapped *net.OpError", err)
	}
	other.Close()

	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent, also after SetDown(true)
	wantErr(t, "SetDown(false) after Close", s.SetDown(false), "emu: closed")
	wantErr(t, "SetDown(true) after Close", s.SetDown(true), "emu: closed")
	if _, err := get(newClient(nil), s.URL()); err == nil {
		t.Error("GET after Close succeeded")
	}

	// Closed before Start: Start refuses (Close is for good).
	never := New("emu", &hello{})
	never.Close()
	wantErr(t, "Start after Close", never.Start("127.0.0.1:0"), "emu: closed")
	never.Close()
}

// The address of the first Start is taken back by SetDown(false); if
// someone else took it meanwhile, SetDown fails and the server stays down.
func TestSetDownUpAddressTaken(t *testing.T) {
	s := New("emu", &hello{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Skipf("cannot take the address back: %v", err)
	}
	err = s.SetDown(false)
	if err == nil || !strings.HasPrefix(err.Error(), "emu: ") {
		t.Errorf("SetDown(false) on a taken address: %v", err)
	}
	ln.Close()
	if err := s.SetDown(false); err != nil {
		t.Fatalf("SetDown(false) once free: %v", err)
	}
	if _, err := get(newClient(nil), s.URL()); err != nil {
		t.Errorf("GET after up: %v", err)
	}
}

func TestServerSettings(t *testing.T) {
	s := New("emu", &hello{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv.ReadHeaderTimeout != ReadHeaderTimeout {
		t.Errorf("ReadHeaderTimeout %v, want %v", srv.ReadHeaderTimeout, ReadHeaderTimeout)
	}
	if srv.ErrorLog == nil || srv.ErrorLog.Writer() != io.Discard {
		t.Error("ErrorLog does not discard: failed handshakes would reach the test output")
	}
}

func TestDelay(t *testing.T) {
	if !Delay(context.Background(), 0) {
		t.Error("Delay(0): false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !Delay(ctx, -time.Second) {
		t.Error("Delay(<0) on a done context: false, want true (no delay)")
	}
	begin := time.Now()
	if Delay(ctx, time.Hour) {
		t.Error("Delay on a done context: true")
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Delay on a done context took %v", d)
	}
	begin = time.Now()
	if !Delay(context.Background(), 20*time.Millisecond) {
		t.Error("Delay(20ms): false")
	}
	if d := time.Since(begin); d < 20*time.Millisecond {
		t.Errorf("Delay(20ms) returned after %v", d)
	}
}

func TestReadAll(t *testing.T) {
	for _, tc := range []struct {
		in          string
		size, limit int64
		want        string
	}{
		{"hello", 5, 10, "hello"},
		{"hello", -1, 10, "hello"},
		{"hello", 5, 3, "hel"},
		{"hello", 1 << 40, 6, "hello"}, // a lying ContentLength does not allocate it
		{"", 0, 10, ""},
	} {
		got, err := ReadAll(strings.NewReader(tc.in), tc.size, tc.limit)
		if err != nil || string(got) != tc.want {
			t.Errorf("ReadAll(%q, %d, %d) = %q, %v; want %q", tc.in, tc.size, tc.limit, got, err, tc.want)
		}
	}
	boom := errors.New("boom")
	if _, err := ReadAll(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), -1, 10); !errors.Is(err, boom) {
		t.Errorf("ReadAll of a failing reader: %v, want %v", err, boom)
	}
}

func TestBufferPool(t *testing.T) {
	var bp BufferPool
	for _, in := range []string{"first body", strings.Repeat("x", 100000), "", "short again"} {
		data, release, err := bp.Read(strings.NewReader(in), int64(len(in)), 1<<20)
		if err != nil || string(data) != in {
			t.Fatalf("Read(%d bytes) = %d bytes, %v", len(in), len(data), err)
		}
		release()
	}
	data, release, _ := bp.Read(strings.NewReader("0123456789"), -1, 4)
	defer release()
	if string(data) != "0123" {
		t.Errorf("limit 4: %q", data)
	}
}
