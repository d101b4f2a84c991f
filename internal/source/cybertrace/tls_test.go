package cybertrace

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/testcert"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// tlsFixture is a throw-away PKI and the source's TLS configuration: its
// server certificate and, for mutual TLS, its CA as the client CA.
type tlsFixture struct {
	pki   *testcert.PKI
	files TLSConfig
}

func newTLSFixture(t *testing.T, mutual bool) *tlsFixture {
	t.Helper()
	p := testcert.NewT(t)
	f := &tlsFixture{pki: p, files: TLSConfig{CertFile: p.ServerCertFile, KeyFile: p.ServerKeyFile}}
	if mutual {
		f.files.ClientCAFile = p.CAFile
	}
	return f
}

func (f *tlsFixture) start(t *testing.T) *running {
	cfg := testConfig()
	tc := f.files
	cfg.TLS = &tc
	return startSource(t, cfg, nil)
}

// sendTLS connects with cfg, sends lines and closes. It reports the
// first error (handshake, write or the server closing on us).
func sendTLS(r *running, cfg *tls.Config, data string) error {
	d := &net.Dialer{Timeout: testTimeout}
	c, err := tls.DialWithDialer(d, "tcp", r.addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte(data)); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	// A server that rejected us (TLS 1.3 verifies the client certificate
	// after the client's handshake completes) reports it here; a server
	// that accepted us closes cleanly once it has read everything.
	if _, err = c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func TestTLS(t *testing.T) {
	f := newTLSFixture(t, false)

	t.Run("TLS client delivers", func(t *testing.T) {
		r := f.start(t)
		if err := sendTLS(r, &tls.Config{RootCAs: f.pki.Pool}, seed0+"\r\n"+seed1+"\n"+seed2); err != nil {
			t.Fatal(err)
		}
		r.waitServed(t, 1)
		if d := cmp.Diff([]string{seed0, seed1, seed2}, originals(t, r.rec().get())); d != "" {
			t.Errorf("documents (-want +got):\n%s", d)
		}
	})

	// The linger deadline expires while a TLS record is only partly read:
	// the timeout must not break the TLS stream.
	t.Run("records split across linger timeouts", func(t *testing.T) {
		r := f.start(t)
		d := &net.Dialer{Timeout: testTimeout}
		raw, err := d.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		slow := &slowConn{Conn: raw}
		c := tls.Client(slow, &tls.Config{RootCAs: f.pki.Pool, ServerName: "127.0.0.1"})
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		if _, err := c.Write([]byte(seed0 + "\n")); err != nil {
			t.Fatal(err)
		}
		slow.piece.Store(16) // from now on: 16-byte pieces, 10 ms apart
		if _, err := c.Write([]byte(seed1 + "\n" + alert)); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		c.Read(make([]byte, 1))
		r.waitServed(t, 1)
		if d := cmp.Diff([]string{seed0, seed1, alert}, originals(t, r.rec().get())); d != "" {
			t.Errorf("documents (-want +got):\n%s", d)
		}
		if n := r.rec().batches(); n < 2 {
			t.Errorf("%d batches; the linger deadline never expired mid-record", n)
		}
	})

	t.Run("client that does not trust the server", func(t *testing.T) {
		r := f.start(t)
		if err := sendTLS(r, &tls.Config{RootCAs: testcert.NewT(t).Pool}, seed0+"\n"); err == nil {
			t.Fatal("handshake succeeded with an untrusted server certificate")
		}
		r.waitServed(t, 1)
		if n := r.rec().len(); n != 0 {
			t.Errorf("%d documents", n)
		}
	})

	t.Run("plain TCP client", func(t *testing.T) {
		r := f.start(t)
		c := r.dial(t)
		c.Write([]byte(seed0 + "\n" + seed1 + "\n")) // the server may reset us
		if !closedByPeer(c, testTimeout) {
			t.Fatal("server kept a plain-TCP connection open")
		}
		r.waitServed(t, 1)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		if n := r.rec().len(); n != 0 {
			t.Errorf("%d documents from a plain-TCP client", n)
		}
		if got := metricsOf(r.m); got != (lineMetrics{}) {
			t.Errorf("metrics: %+v", got)
		}
		if dl := r.dl.get(); len(dl) != 0 {
			t.Errorf("dead letters: %q", dl)
		}
	})
}

func TestMutualTLS(t *testing.T) {
	f := newTLSFixture(t, true)
	other := testcert.NewT(t) // another CA: its client certificate is foreign
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		force bool // present the certificate even if the server does not name its CA
		ok    bool
	}{
		{"client certificate from the CA", []tls.Certificate{f.pki.Client}, false, true},
		{"no client certificate", nil, false, false},
		{"client certificate from another CA", []tls.Certificate{other.Client}, false, false},
		// Go's client only sends a certificate whose issuer the server
		// lists; force it, so the server has to verify and refuse it.
		{"client certificate from another CA, forced", []tls.Certificate{other.Client}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.start(t)
			cfg := &tls.Config{RootCAs: f.pki.Pool, Certificates: tc.certs}
			if tc.force {
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc.certs[0], nil }
			}
			err := sendTLS(r, cfg, seed0+"\n"+seed1+"\n")
			r.waitServed(t, 1)
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			var want []string
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				want = []string{seed0, seed1}
			} else {
				if err == nil {
					t.Error("the client was not told it was rejected")
				} else {
					t.Logf("rejected: %v", err)
				}
				if got := metricsOf(r.m); got != (lineMetrics{}) {
					t.Errorf("metrics: %+v", got)
				}
			}
			if d := cmp.Diff(want, originals(t, r.rec().get()), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("documents (-want +got):\n%s", d)
			}
		})
	}
}

// slowConn writes in pieces of piece bytes (all at once while 0), 10 ms
// apart.
type slowConn struct {
	net.Conn
	piece atomic.Int64
}

func (c *slowConn) Write(p []byte) (int, error) {
	size := int(c.piece.Load())
	if size == 0 {
		return c.Conn.Write(p)
	}
	n := 0
	for n < len(p) {
		m, err := c.Conn.Write(p[n:min(n+size, len(p))])
		n += m
		if err != nil {
			return n, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n, nil
}
