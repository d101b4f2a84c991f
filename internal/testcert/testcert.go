// Package testcert makes throw-away certificates for tests and emulators:
// a CA, a server certificate for 127.0.0.1, ::1 and localhost, and a client
// certificate, all ECDSA P-256, in memory and as PEM files.
//
// It does not import "testing" (NewT takes a small interface instead), so
// non-test code such as the emulators can use it without linking the test
// framework and its flags into a binary.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a CA with one server and one client certificate.
type PKI struct {
	CA     *x509.Certificate
	Pool   *x509.CertPool // holds CA only
	Server tls.Certificate
	Client tls.Certificate

	// CAPEM is the CA certificate, PEM-encoded.
	CAPEM []byte

	// PEM files, written by New into its directory (empty if it had none).
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string

	caKey *ecdsa.PrivateKey
}

// New makes a PKI valid from an hour ago for a day and writes its PEM files
// into dir; with dir "" it writes nothing and the file names stay empty.
//
// Every PKI's CA has its own subject name ("alertrelay test CA" and a random
// suffix) and every certificate a random serial number, so that two PKIs
// are told apart by name too: a Go client only offers a certificate whose
// issuer's name the server lists as acceptable.
func New(dir string) (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	caSerial, err := randSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: "alertrelay test CA " + hex.EncodeToString(id[:])},
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
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if p.CAFile, err = writePEM(dir, "ca.pem", p.CAPEM); err != nil {
		return nil, err
	}
	if p.Server, p.ServerCertFile, p.ServerKeyFile, err = p.leaf(dir, "server", x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.Client, p.ClientCertFile, p.ClientKeyFile, err = p.leaf(dir, "client", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}

// TB is the part of testing.TB that NewT uses; *testing.T, *testing.B and
// *testing.F satisfy it.
type TB interface {
	Helper()
	TempDir() string
	Fatal(args ...any)
}

// NewT is New into t.TempDir(), failing the test on error.
func NewT(t TB) *PKI {
	t.Helper()
	p, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *PKI) leaf(dir, name string, usage x509.ExtKeyUsage) (tls.Certificate, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	serial, err := randSerial()
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
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
	certFile, err := writePEM(dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	keyFile, err := writePEM(dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
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

// randSerial is a random serial number in [1, 2^63].
func randSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writePEM writes b to dir/name and returns the path; with dir "" it writes
// nothing and returns "".
func writePEM(dir, name string, b []byte) (string, error) {
	if dir == "" {
		return "", nil
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, b, 0o600)
}
