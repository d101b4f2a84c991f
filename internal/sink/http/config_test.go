package http

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/alertrelay/alertrelay/internal/config"
)

func TestValidate(t *testing.T) {
	valid := func(mod func(c *Config)) Config {
		c := Config{URL: "https://siem.example.com/ingest"}
		c.SetDefaults()
		if mod != nil {
			mod(&c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // fields in error, sorted
	}{
		{"defaults", valid(nil), nil},
		{"full", valid(func(c *Config) {
			c.Method, c.Format, c.Compression, c.MaxBodyBytes = "put", FormatJSONArray, CompressionGzip, 0
			c.Headers = map[string]string{"X-Api-Key": "k", "content-type": "text/plain"}
			c.Auth = &AuthConfig{Basic: &BasicAuth{Username: "u", Password: config.NewSecret("p")}}
			c.TLS = &TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "x", InsecureSkipVerify: true}
		}), nil},
		{"missing url", valid(func(c *Config) { c.URL = "" }), []string{"url"}},
		{"everything wrong at once", Config{
			URL: "ftp://u:p@host/x", Method: "GET", Format: "xml", Compression: "br",
			Timeout: -time.Second, MaxBodyBytes: 10,
			Headers: map[string]string{"Content-Length": "1", "Bad Name": "x", "X-Ok": "a\nb", "authorization": "Bearer x"},
			Auth:    &AuthConfig{},
			TLS:     &TLSConfig{CertFile: "c.pem"},
		}, []string{
			"auth", "compression", "format", "headers.Bad Name", "headers.Content-Length", "headers.X-Ok",
			"headers.authorization", "max_body_bytes", "method", "timeout", "tls", "tls.key_file", "url", "url",
		}},
		{"both auth", valid(func(c *Config) {
			c.Auth = &AuthConfig{BearerToken: config.NewSecret("t"), Basic: &BasicAuth{Username: "u", Password: config.NewSecret("p")}}
		}), []string{"auth"}},
		{"basic incomplete", valid(func(c *Config) {
			c.Auth = &AuthConfig{Basic: &BasicAuth{}}
		}), []string{"auth.basic.password", "auth.basic.username"}},
		{"url without host", valid(func(c *Config) { c.URL = "http:///path" }), []string{"url"}},
		{"url unparsable", valid(func(c *Config) { c.URL = "http://a b\x7f" }), []string{"url"}},
		{"tls with http", valid(func(c *Config) { c.URL = "http://h"; c.TLS = &TLSConfig{KeyFile: "k"} }), []string{"tls", "tls.cert_file"}},
		{"reserved headers", valid(func(c *Config) {
			c.Headers = map[string]string{"host": "h", "Transfer-Encoding": "chunked", "X-Fine": "1"}
		}), []string{"headers.Transfer-Encoding", "headers.host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fields []string
			for _, err := range tc.cfg.Validate() {
				var fe *config.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *config.FieldError", err)
				}
				fields = append(fields, fe.Field)
			}
			sort.Strings(fields)
			if diff := cmp.Diff(tc.want, fields); diff != "" {
				t.Errorf("fields in error (-want +got):\n%s\nerrors: %v", diff, tc.cfg.Validate())
			}
		})
	}
}

func TestDecodeYAML(t *testing.T) {
	const src = `
type: http
url: https://siem.example.com/api/events
method: PUT
format: json_array
headers:
  X-Api-Key: abc-123
auth:
  basic:
    username: relay
    password: hunter22
compression: gzip
timeout: 5s
tls:
  ca_file: /etc/alertrelay/ca.pem
  server_name: siem.internal
max_body_bytes: 1048576
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var c Config
	c.SetDefaults()
	var errs config.Errors
	config.Decode(n.Content[0], "sinks.siem", &errs, &c, &struct {
		Type string `yaml:"type"`
	}{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if v := c.Validate(); len(v) > 0 {
		t.Fatal(v)
	}
	if c.Method != "PUT" || c.Format != FormatJSONArray || c.Compression != CompressionGzip || c.Timeout != 5*time.Second ||
		c.MaxBodyBytes != 1<<20 || c.Headers["X-Api-Key"] != "abc-123" || c.TLS.ServerName != "siem.internal" ||
		c.Auth.Basic.Username != "relay" || c.Auth.Basic.Password.Reveal() != "hunter22" {
		t.Errorf("decoded %+v", c)
	}
}
