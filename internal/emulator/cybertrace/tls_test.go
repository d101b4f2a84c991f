package cybertrace

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/alertrelay/alertrelay/internal/testcert"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting
// it. (The certificate now comes from a throw-away testcert CA; the name is
// kept for its callers.)
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	p := testcert.NewT(t)
	return p.Server, p.Pool
}

func tlsListen(cert tls.Certificate) (net.Listener, error) {
	return tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func clientTLS(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
