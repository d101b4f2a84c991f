package http

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// testPKI is a throw-away CA with a server certificate for 127.0.0.1 and a
// client certificate, all ECDSA P-256, written as PEM files.
type testPKI struct {
	pool                  *x509.CertPool
	server                tls.Certificate
	caFile                string
	clientCert, clientKey string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "alertrelay test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	sDER, sKey := leaf(2, "receiver", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := leaf(3, "alertrelay", x509.ExtKeyUsageClientAuth, nil)
	p.clientCert = writePEM(t, dir, "client.pem", "CERTIFICATE", cDER)
	keyDER, err := x509.MarshalECPrivateKey(cKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientKey = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startTLS(t *testing.T, cfg *tls.Config) *httpsink.Server {
	t.Helper()
	s := httpsink.New(httpsink.Options{})
	if err := s.StartTLS("127.0.0.1:0", cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestTLSWithCAFile(t *testing.T) {
	p := newPKI(t)
	srv := startTLS(t, &tls.Config{Certificates: []tls.Certificate{p.server}})

	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.caFile}
	s, _ := newSink(t, cfg)
	if err := s.Write(ctx(t), batchOf(docs("tls", 3, 100))); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	if err := s.Check(ctx(t)); err != nil {
		t.Fatalf("Check with ca_file: %v", err)
	}

	without, _ := newSink(t, defaults(srv.URL()))
	err := without.Write(ctx(t), batchOf(docs("tls", 3, 100)))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("without ca_file: %v, want a retryable x509 error", err)
	}
	if srv.Count() != 3 {
		t.Errorf("received %d documents, want 3", srv.Count())
	}
}

func TestTLSServerNameMismatch(t *testing.T) {
	p := newPKI(t)
	srv := startTLS(t, &tls.Config{Certificates: []tls.Certificate{p.server}})
	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.caFile, ServerName: "siem.example.com"}
	s, _ := newSink(t, cfg)
	if err := s.Write(ctx(t), batchOf(docs("sn", 1, 100))); err == nil || !strings.Contains(err.Error(), "siem.example.com") {
		t.Fatalf("err %v, want a certificate name mismatch", err)
	}
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	srv := startTLS(t, &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
	})

	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.caFile}
	noCert, _ := newSink(t, cfg)
	if err := noCert.Write(ctx(t), batchOf(docs("m", 2, 100))); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("without a client certificate: %v, want a retryable error", err)
	}

	cfg.TLS = &TLSConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}
	s, _ := newSink(t, cfg)
	if err := s.Write(ctx(t), batchOf(docs("m", 2, 100))); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if srv.Count() != 2 {
		t.Errorf("received %d documents, want 2", srv.Count())
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	p := newPKI(t)
	srv := startTLS(t, &tls.Config{Certificates: []tls.Certificate{p.server}})
	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{InsecureSkipVerify: true}
	s, logs := newSink(t, cfg)
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "insecure_skip_verify") {
		t.Errorf("want one WARN naming insecure_skip_verify, got:\n%s", out)
	}
	if err := s.Write(ctx(t), batchOf(docs("i", 2, 100))); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 2 {
		t.Errorf("received %d documents, want 2", srv.Count())
	}

	_, quiet := newSink(t, defaults(srv.URL()))
	if strings.Contains(quiet.String(), "level=WARN") {
		t.Errorf("WARN without insecure_skip_verify:\n%s", quiet)
	}
}

func TestTLSFileErrors(t *testing.T) {
	p := newPKI(t)
	for name, tc := range map[string]*TLSConfig{
		"missing ca":   {CAFile: filepath.Join(t.TempDir(), "nope.pem")},
		"ca not pem":   {CAFile: p.clientKey},
		"missing cert": {CertFile: "/nonexistent/c.pem", KeyFile: p.clientKey},
		"key mismatch": {CertFile: p.caFile, KeyFile: p.clientKey},
	} {
		cfg := defaults("https://127.0.0.1:1")
		cfg.TLS = tc
		if s, err := New(cfg, pipeline.Deps{}); err == nil || s != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, s, err)
		}
	}
}
