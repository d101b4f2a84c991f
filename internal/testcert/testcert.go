// Package testcert makes throw-away certificates for tests and emulators:
// a CA, a server certificate for 127.0.0.1, ::1 and localhost, and a client
// certificate, all ECDSA P-256, in memory and as PEM files.
package testcert

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
	"testing"
	"time"
)

// PKI is a CA with one server and one client certificate.
type PKI struct {
	CA     *x509.Certificate
	Pool   *x509.CertPool // holds CA only
	Server tls.Certificate
	Client tls.Certificate

	// PEM files, written by New into its directory.
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string

	caKey *ecdsa.PrivateKey
}

// New makes a PKI valid from an hour ago for a day and writes its PEM files
// into dir.
func New(dir string) (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "alertrelay test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca, Pool: x509.NewCertPool(), caKey: caKey}
	p.Pool.AddCert(ca)
	if p.CAFile, err = writePEM(dir, "ca.pem", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	if p.Server, p.ServerCertFile, p.ServerKeyFile, err = p.leaf(dir, "server", 2, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.Client, p.ClientCertFile, p.ClientKeyFile, err = p.leaf(dir, "client", 3, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}

// NewT is New into t.TempDir(), failing the test on error.
func NewT(t testing.TB) *PKI {
	t.Helper()
	p, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *PKI) leaf(dir, name string, serial int64, usage x509.ExtKeyUsage) (tls.Certificate, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "alertrelay test " + name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	certFile, err := writePEM(dir, name+".pem", "CERTIFICATE", der)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	keyFile, err := writePEM(dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile, nil
}

// ServerTLS is a server config presenting the server certificate. With
// requireClient it demands a client certificate signed by the CA (mTLS).
func (p *PKI) ServerTLS(requireClient bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
	if requireClient {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.Pool
	}
	return c
}

// ClientTLS is a client config trusting the CA; withCert adds the client
// certificate.
func (p *PKI) ClientTLS(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{p.Client}
	}
	return c
}

func writePEM(dir, name, typ string, der []byte) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
