package splunkhec

import (
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/alertrelay/alertrelay/internal/config"
)

func TestValidate(t *testing.T) {
	valid := func(mod func(c *Config)) Config {
		c := Config{URL: "https://splunk.example.com:8088", Token: config.NewSecret("t0k3n")}
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
			c.URL = "https://proxy.example.com/splunk/"
			c.Endpoint, c.Compression, c.MaxBodyBytes = EndpointEvent, CompressionGzip, 0
			c.Channel = "0B1E7C52-8A44-4B8E-9D6A-2F0C1D3E4F5A"
			c.Index, c.Source, c.Sourcetype, c.Host = "sec", "s", "st", "h"
			c.Sources = map[string]SourceOverride{"ct": {Index: "ct", Sourcetype: "kaspersky:cybertrace"}}
			c.Fields = map[string]string{"env": "prod"}
			c.Ack = AckConfig{Enabled: true, PollInterval: time.Second, Timeout: time.Minute}
			c.TLS = &TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}
		}), nil},
		{"raw", valid(func(c *Config) { c.Endpoint = EndpointRaw }), nil},
		{"missing url and token", valid(func(c *Config) { c.URL, c.Token = "", config.Secret{} }), []string{"token", "url"}},
		{"url with the endpoint", valid(func(c *Config) { c.URL = "https://h:8088/services/collector/event" }), []string{"url"}},
		{"url with query", valid(func(c *Config) { c.URL = "https://h:8088/?token=x" }), []string{"url"}},
		{"url unparsable", valid(func(c *Config) { c.URL = "http://a b\x7f" }), []string{"url"}},
		{"everything wrong at once", Config{
			URL: "ftp://u:p@/x", Token: config.NewSecret("a\nb"), Endpoint: "metrics", Channel: "chan",
			Compression: "br", Timeout: -time.Second, MaxBodyBytes: 10,
			Index: "a\tb", Sources: map[string]SourceOverride{"": {}, "ct": {Sourcetype: "x\n"}},
			Fields: map[string]string{"_time": "1", "index": "x", "": "e", "ok": "v\x00"},
			Ack:    AckConfig{Enabled: true, PollInterval: 0, Timeout: -1},
			TLS:    &TLSConfig{CertFile: "c.pem"},
		}, []string{
			"ack.poll_interval", "ack.timeout", "channel", "compression", "endpoint", "fields", "fields._time",
			"fields.index", "fields.ok", "index", "max_body_bytes", "sources", "sources.ct.sourcetype", "timeout",
			"tls", "tls.key_file", "token", "url", "url",
		}},
		{"fields with raw", valid(func(c *Config) { c.Endpoint, c.Fields = EndpointRaw, map[string]string{"a": "b"} }), []string{"fields"}},
		{"poll longer than timeout", valid(func(c *Config) {
			c.Ack = AckConfig{Enabled: true, PollInterval: time.Minute, Timeout: time.Second}
		}), []string{"ack.poll_interval"}},
		{"ack settings ignored when disabled", valid(func(c *Config) { c.Ack = AckConfig{PollInterval: -1} }), nil},
		{"tls with http", valid(func(c *Config) { c.URL = "http://h:8088"; c.TLS = &TLSConfig{} }), []string{"tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fields []string
			errs := tc.cfg.Validate()
			for _, err := range errs {
				var fe *config.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *config.FieldError", err)
				}
				fields = append(fields, fe.Field)
				if tc.cfg.Token.IsSet() && strings.Contains(err.Error(), tc.cfg.Token.Reveal()) {
					t.Errorf("%v quotes the token", err)
				}
			}
			sort.Strings(fields)
			if diff := cmp.Diff(tc.want, fields); diff != "" {
				t.Errorf("fields in error (-want +got):\n%s\nerrors: %v", diff, errs)
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{Endpoint: EndpointEvent, Compression: CompressionNone, Timeout: 30 * time.Second, MaxBodyBytes: 1_000_000,
		Ack: AckConfig{PollInterval: time.Second, Timeout: 180 * time.Second}}
	if diff := cmp.Diff(want, c, cmp.AllowUnexported(config.Secret{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// decodeSink decodes a sink block as the daemon does: defaults first, then
// the YAML, with the common sink keys in a second struct.
func decodeSink(t *testing.T, src string) Config {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var c Config
	c.SetDefaults()
	var errs config.Errors
	config.Decode(n.Content[0], "sinks.splunk", &errs, &c, &struct {
		Type   string         `yaml:"type"`
		Inputs []string       `yaml:"inputs"`
		Buffer map[string]any `yaml:"buffer"`
		Batch  map[string]any `yaml:"batch"`
		Retry  map[string]any `yaml:"retry"`
	}{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if v := c.Validate(); len(v) > 0 {
		t.Fatal(v)
	}
	return c
}

func TestDecodeYAML(t *testing.T) {
	c := decodeSink(t, `
type: splunkhec
url: https://splunk.example.com:8088
token: 11111111-2222-3333-4444-555555555555
endpoint: raw
index: security
sources:
  ct: {index: threat, sourcetype: "kaspersky:cybertrace"}
compression: gzip
timeout: 5s
max_body_bytes: 4194304
tls: {ca_file: /etc/ca.pem}
ack: {enabled: true, timeout: 60s}
`)
	if c.Endpoint != EndpointRaw || c.Token.Reveal() != "11111111-2222-3333-4444-555555555555" || c.Index != "security" ||
		c.Sources["ct"].Sourcetype != "kaspersky:cybertrace" || c.Compression != CompressionGzip || c.Timeout != 5*time.Second ||
		c.MaxBodyBytes != 4<<20 || c.TLS.CAFile != "/etc/ca.pem" || !c.Ack.Enabled || c.Ack.Timeout != time.Minute ||
		c.Ack.PollInterval != DefaultAckPollInterval {
		t.Errorf("decoded %+v", c)
	}
}

// TestExample checks that the sink block of examples/splunkhec.yaml
// decodes and validates (with ${env:...} left as the literal token).
func TestExample(t *testing.T) {
	raw, err := os.ReadFile("../../../examples/splunkhec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sinks map[string]yaml.Node `yaml:"sinks"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	n, ok := doc.Sinks["splunk"]
	if !ok {
		t.Fatal("examples/splunkhec.yaml has no sinks.splunk")
	}
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	c := decodeSink(t, string(out))
	if c.Token.Reveal() != "${env:SPLUNK_HEC_TOKEN}" {
		t.Errorf("token %q: want it from the environment", c.Token.Reveal())
	}
}
