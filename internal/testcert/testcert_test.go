package testcert

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"go/build"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

// exchange runs a TLS handshake between srv and cli over loopback TCP and
// then a one-byte echo, and returns each side's first error.
func exchange(t *testing.T, srv, cli *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			raw, err := ln.Accept()
			if err != nil {
				return err
			}
			c := tls.Server(raw, srv)
			defer c.Close()
			c.SetDeadline(deadline)
			if err := c.Handshake(); err != nil {
				return err
			}
			b := make([]byte, 1)
			if _, err := c.Read(b); err != nil {
				return err
			}
			_, err = c.Write(b)
			return err
		}()
	}()
	clientErr = func() error {
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		cfg := cli.Clone()
		cfg.ServerName = "127.0.0.1"
		c := tls.Client(raw, cfg)
		defer c.Close()
		c.SetDeadline(deadline)
		if err := c.Handshake(); err != nil {
			return err
		}
		// A TLS 1.3 server verifies the client's certificate after the
		// client's handshake has completed; its verdict arrives here.
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 1))
		return err
	}()
	return <-done, clientErr
}

func TestHandshake(t *testing.T) {
	p, other := NewT(t), NewT(t)
	for _, tc := range []struct {
		name     string
		srv, cli *tls.Config
		ok       bool
	}{
		{"mutual TLS", p.ServerTLS(true), p.ClientTLS(true), true},
		{"server-only TLS", p.ServerTLS(false), p.ClientTLS(false), true},
		{"no client certificate for a server that requires one", p.ServerTLS(true), p.ClientTLS(false), false},
		{"client trusts another PKI", p.ServerTLS(true), other.ClientTLS(true), false},
		{"client certificate from another PKI", p.ServerTLS(true), func() *tls.Config {
			c := p.ClientTLS(false)
			c.Certificates = []tls.Certificate{other.Client}
			// Offer it even though the server does not list its CA.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &other.Client, nil }
			return c
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverErr, clientErr := exchange(t, tc.srv, tc.cli)
			if tc.ok {
				if serverErr != nil || clientErr != nil {
					t.Fatalf("server: %v; client: %v", serverErr, clientErr)
				}
				return
			}
			if serverErr == nil || clientErr == nil {
				t.Fatalf("want both sides to fail; server: %v; client: %v", serverErr, clientErr)
			}
			t.Logf("server: %v; client: %v", serverErr, clientErr)
		})
	}
}

// Two PKIs' CAs have different names, so a Go client does not offer one's
// client certificate to a server that asks for the other's.
func TestDistinctCAs(t *testing.T) {
	p, other := NewT(t), NewT(t)
	if bytes.Equal(p.CA.RawSubject, other.CA.RawSubject) {
		t.Errorf("both CAs are named %q", p.CA.Subject)
	}
	if p.CA.SerialNumber.Cmp(other.CA.SerialNumber) == 0 {
		t.Errorf("both CAs have serial number %v", p.CA.SerialNumber)
	}
	cri := &tls.CertificateRequestInfo{
		AcceptableCAs:    [][]byte{p.CA.RawSubject},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		Version:          tls.VersionTLS13,
	}
	if err := cri.SupportsCertificate(&other.Client); err == nil {
		t.Error("another PKI's client certificate matches this CA's name")
	}
	if err := cri.SupportsCertificate(&p.Client); err != nil {
		t.Errorf("own client certificate: %v", err)
	}
}

func TestCertificates(t *testing.T) {
	p := NewT(t)
	if !p.CA.IsCA {
		t.Error("CA is not a CA")
	}
	block, _ := pem.Decode(p.CAPEM)
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, p.CA.Raw) {
		t.Error("CAPEM is not the CA certificate")
	}
	server, err := x509.ParseCertificate(p.Server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := server.Verify(x509.VerifyOptions{DNSName: host, Roots: p.Pool}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	client, err := x509.ParseCertificate(p.Client.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: p.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
}

func TestFiles(t *testing.T) {
	p := NewT(t)
	ca, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, p.CAPEM) {
		t.Error("CAFile differs from CAPEM")
	}
	for _, pair := range [][2]string{{p.ServerCertFile, p.ServerKeyFile}, {p.ClientCertFile, p.ClientKeyFile}} {
		if _, err := tls.LoadX509KeyPair(pair[0], pair[1]); err != nil {
			t.Errorf("%s, %s: %v", pair[0], pair[1], err)
		}
	}

	// With no directory nothing is written.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if m.CAFile != "" || m.ServerCertFile != "" || m.ServerKeyFile != "" || m.ClientCertFile != "" || m.ClientKeyFile != "" {
		t.Errorf("in-memory PKI names files: %+v", m)
	}
	if m.CAPEM == nil || m.Server.PrivateKey == nil || m.Client.PrivateKey == nil {
		t.Error("in-memory PKI is incomplete")
	}
	after, err := os.ReadDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("New(\"\") wrote into the working directory: %d entries, was %d", len(after), len(before))
	}
}

// Non-test code (the Cynet emulator) imports testcert: it must not link
// the testing package, whose init registers the -test.* flags.
func TestNoTestingImport(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pkg.Imports, "testing") {
		t.Error(`testcert imports "testing" outside its tests`)
	}
}
