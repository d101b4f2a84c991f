package cybertrace

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a leaf certificate and key, PEM-encoded. A server
// certificate is valid for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) clientCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, name, false)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsFixture writes a CA and a server certificate into a temporary
// directory and returns the source's TLS configuration.
type tlsFixture struct {
	ca    *testCA
	files TLSConfig
}

func newTLSFixture(t *testing.T, mutual bool) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, "alertrelay test CA")
	cert, key := ca.issue(t, "alertrelay", true)
	f := &tlsFixture{ca: ca, files: TLSConfig{
		CertFile: filepath.Join(dir, "server.crt"),
		KeyFile:  filepath.Join(dir, "server.key"),
	}}
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(f.files.CertFile, cert)
	write(f.files.KeyFile, key)
	if mutual {
		f.files.ClientCAFile = filepath.Join(dir, "ca.crt")
		write(f.files.ClientCAFile, ca.pem)
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
		if err := sendTLS(r, &tls.Config{RootCAs: f.ca.pool()}, seed0+"\r\n"+seed1+"\n"+seed2); err != nil {
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
		c := tls.Client(slow, &tls.Config{RootCAs: f.ca.pool(), ServerName: "127.0.0.1"})
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
		if err := sendTLS(r, &tls.Config{RootCAs: newCA(t, "other").pool()}, seed0+"\n"); err == nil {
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
	other := newCA(t, "other CA")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		force bool // present the certificate even if the server does not name its CA
		ok    bool
	}{
		{"client certificate from the CA", []tls.Certificate{f.ca.clientCert(t, "cybertrace")}, false, true},
		{"no client certificate", nil, false, false},
		{"client certificate from another CA", []tls.Certificate{other.clientCert(t, "intruder")}, false, false},
		// Go's client only sends a certificate whose issuer the server
		// lists; force it, so the server has to verify and refuse it.
		{"client certificate from another CA, forced", []tls.Certificate{other.clientCert(t, "intruder")}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.start(t)
			cfg := &tls.Config{RootCAs: f.ca.pool(), Certificates: tc.certs}
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
