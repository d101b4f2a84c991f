// Package tlsclient holds the TLS client settings that every outbound
// connection of alertrelay shares (sinks, the Cynet API): the system roots
// plus an optional CA file, an optional client certificate for mutual TLS,
// a server-name override, and an explicit, loudly logged switch that turns
// verification off.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/alertrelay/alertrelay/internal/config"
)

// Config is the `tls:` block of an outbound connection.
type Config struct {
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server certificate is checked
	// against (and sent as SNI); default: the host dialled.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables verification of the server certificate.
	// For tests only: WarnInsecure logs it.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate reports problems that need no file access, keyed by the setting's
// path below the block ("tls.key_file"). A nil *Config is valid.
func (c *Config) Validate() []error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.CertFile != "" && c.KeyFile == "" {
		errs = append(errs, config.Errorf("tls.key_file", "is required with cert_file"))
	}
	if c.KeyFile != "" && c.CertFile == "" {
		errs = append(errs, config.Errorf("tls.cert_file", "is required with key_file"))
	}
	return errs
}

// Build returns the *tls.Config for c (TLS 1.2 or later). A nil *Config
// gives the defaults: system roots, full verification. Errors name the
// setting that failed (tls.ca_file, tls.cert_file/key_file).
func (c *Config) Build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c == nil {
		return tc, nil
	}
	tc.ServerName = c.ServerName
	tc.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		// Always present the certificate, as curl does, even when the
		// server's list of acceptable CAs does not name its issuer.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	return tc, nil
}

// Insecure reports whether c turns verification off.
func (c *Config) Insecure() bool { return c != nil && c.InsecureSkipVerify }

// WarnInsecure logs, at warning level, that verification is off when c says
// so. Every component that builds a TLS client from a Config calls it once.
func (c *Config) WarnInsecure(log *slog.Logger) {
	if c.Insecure() {
		log.Warn("TLS CERTIFICATE VERIFICATION IS DISABLED (tls.insecure_skip_verify): " +
			"anyone on the network path can impersonate the receiver and read the events; use it for tests only")
	}
}
