package tlsclient

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertrelay/alertrelay/internal/testcert"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *Config
		want []string
	}{
		{"nil", nil, nil},
		{"empty", &Config{}, nil},
		{"pair", &Config{CertFile: "c", KeyFile: "k"}, nil},
		{"cert without key", &Config{CertFile: "c"}, []string{"tls.key_file"}},
		{"key without cert", &Config{KeyFile: "k"}, []string{"tls.cert_file"}},
	} {
		var got []string
		for _, e := range tc.c.Validate() {
			got = append(got, strings.SplitN(e.Error(), ":", 2)[0])
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestBuildHandshakes builds client configs and uses them against a real
// TLS server: the CA file is trusted, the client certificate is presented,
// and without the CA the handshake fails.
func TestBuildHandshakes(t *testing.T) {
	p := testcert.NewT(t)
	for _, tc := range []struct {
		name     string
		c        *Config
		mtls, ok bool
	}{
		{"system roots only", nil, false, false},
		{"ca_file", &Config{CAFile: p.CAFile}, false, true},
		{"insecure", &Config{InsecureSkipVerify: true}, false, true},
		{"wrong server name", &Config{CAFile: p.CAFile, ServerName: "siem.example.com"}, false, false},
		{"mTLS with a client certificate", &Config{CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}, true, true},
		{"mTLS without one", &Config{CAFile: p.CAFile}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc2, err := tc.c.Build()
			if err != nil {
				t.Fatal(err)
			}
			if tc2.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion %x", tc2.MinVersion)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS(tc.mtls))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					c.(*tls.Conn).Handshake()
					c.Write([]byte("x"))
					c.Close()
				}
			}()
			if tc2.ServerName == "" {
				tc2.ServerName = "127.0.0.1"
			}
			conn, err := tls.Dial("tcp", ln.Addr().String(), tc2)
			if err == nil {
				// A refused client certificate shows at the first read (TLS 1.3).
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("handshake error %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestBuildFileErrors(t *testing.T) {
	p := testcert.NewT(t)
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for name, c := range map[string]*Config{
		"missing ca":   {CAFile: filepath.Join(t.TempDir(), "nope.pem")},
		"ca not pem":   {CAFile: notPEM},
		"missing cert": {CertFile: "/nonexistent/c.pem", KeyFile: p.ClientKeyFile},
		"key mismatch": {CertFile: p.CAFile, KeyFile: p.ClientKeyFile},
	} {
		if _, err := c.Build(); err == nil || !strings.HasPrefix(err.Error(), "tls.") {
			t.Errorf("%s: %v, want an error naming the tls setting", name, err)
		}
	}
}

func TestWarnInsecure(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	(&Config{}).WarnInsecure(log)
	(*Config)(nil).WarnInsecure(log)
	if buf.Len() != 0 {
		t.Fatalf("warned without insecure_skip_verify: %s", buf.String())
	}
	(&Config{InsecureSkipVerify: true}).WarnInsecure(log)
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "insecure_skip_verify") {
		t.Errorf("want one WARN naming insecure_skip_verify, got %q", buf.String())
	}
}
