package kafka

import (
	"errors"
	"os"
	"path/filepath"
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
		c := Config{Brokers: []string{"kafka-1.example.com:9093", "[::1]:9092"}}
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
			c.Topic, c.ClientID, c.Compression, c.Acks = "siem.{source}.{dataset}", "relay-1", CompressionZstd, AcksLeader
			c.MaxMessageBytes, c.Timeout, c.AutoCreateTopics = 4<<20, time.Minute, true
			c.SASL = &SASLConfig{Mechanism: "scram-sha-512", Username: "u", Password: config.NewSecret("p")}
			c.TLS = &TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}
			c.Headers = map[string]string{"origin": "relay"}
		}), nil},
		{"no brokers", valid(func(c *Config) { c.Brokers = nil }), []string{"brokers"}},
		{"bad brokers", valid(func(c *Config) { c.Brokers = []string{"kafka", ":9092", "h:0", "h:http"} }),
			[]string{"brokers[0]", "brokers[1]", "brokers[2]", "brokers[3]"}},
		{"topic characters", valid(func(c *Config) { c.Topic = "alerts/prod" }), []string{"topic"}},
		{"unknown placeholder", valid(func(c *Config) { c.Topic = "a.{host}" }), []string{"topic"}},
		{"topic dot", valid(func(c *Config) { c.Topic = ".." }), []string{"topic"}},
		{"topic too long", valid(func(c *Config) { c.Topic = strings.Repeat("t", 250) }), []string{"topic"}},
		{"everything wrong at once", Config{
			Topic: "", ClientID: "a\nb", Compression: "brotli", Acks: "none", MaxMessageBytes: 10, Timeout: -time.Second,
			SASL:    &SASLConfig{Mechanism: "GSSAPI"},
			TLS:     &TLSConfig{KeyFile: "k.pem"},
			Headers: map[string]string{"dataset": "x", "": "y", "a\x00": "z"},
		}, []string{
			"acks", "brokers", "client_id", "compression", "headers", "headers.a\x00", "headers.dataset",
			"max_message_bytes", "sasl.mechanism", "sasl.password", "sasl.username", "timeout", "tls.cert_file", "topic",
		}},
		{"sasl without mechanism", valid(func(c *Config) {
			c.SASL = &SASLConfig{Username: "u", Password: config.NewSecret("p")}
		}), []string{"sasl.mechanism"}},
		{"max message bytes too large", valid(func(c *Config) { c.MaxMessageBytes = 200 << 20 }), []string{"max_message_bytes"}},
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

func TestValidateNeverQuotesThePassword(t *testing.T) {
	c := Config{SASL: &SASLConfig{Mechanism: "bogus-hunter2", Password: config.NewSecret("hunter2")}}
	for _, err := range c.Validate() {
		if strings.Contains(strings.ReplaceAll(err.Error(), "bogus-hunter2", ""), "hunter2") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}

func TestDecodeYAML(t *testing.T) {
	const src = `
type: kafka
brokers: [kafka-1:9093, kafka-2:9093]
topic: siem.{source}
client_id: relay-dc1
compression: zstd
acks: all
max_message_bytes: 2097152
timeout: 10s
auto_create_topics: true
sasl:
  mechanism: SCRAM-SHA-256
  username: relay
  password: hunter22
tls:
  ca_file: /etc/alertrelay/kafka-ca.pem
headers:
  origin: alertrelay
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var c Config
	c.SetDefaults()
	var errs config.Errors
	config.Decode(n.Content[0], "sinks.kafka", &errs, &c, &struct {
		Type string `yaml:"type"`
	}{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if v := c.Validate(); len(v) > 0 {
		t.Fatal(v)
	}
	want := Config{
		Brokers: []string{"kafka-1:9093", "kafka-2:9093"}, Topic: "siem.{source}", ClientID: "relay-dc1",
		Compression: CompressionZstd, Acks: AcksAll, MaxMessageBytes: 2 << 20, Timeout: 10 * time.Second,
		AutoCreateTopics: true,
		SASL:             &SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "relay", Password: config.NewSecret("hunter22")},
		TLS:              &TLSConfig{CAFile: "/etc/alertrelay/kafka-ca.pem"},
		Headers:          map[string]string{"origin": "alertrelay"},
	}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b config.Secret) bool { return a.Reveal() == b.Reveal() })); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

// TestExampleConfig decodes examples/kafka.yaml's sink block with the keys
// of Config (and the common sink keys) and validates it.
func TestExampleConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "kafka.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		t.Fatal(err)
	}
	var file struct {
		Sinks map[string]yaml.Node `yaml:"sinks"`
	}
	if err := root.Decode(&file); err != nil {
		t.Fatal(err)
	}
	n, ok := file.Sinks["kafka"]
	if !ok {
		t.Fatal("no sinks.kafka in the example")
	}
	var c Config
	c.SetDefaults()
	var errs config.Errors
	config.Decode(&n, "sinks.kafka", &errs, &c, &struct {
		Type   string    `yaml:"type"`
		Buffer yaml.Node `yaml:"buffer"`
		Batch  yaml.Node `yaml:"batch"`
		Retry  yaml.Node `yaml:"retry"`
	}{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if v := c.Validate(); len(v) > 0 {
		t.Fatal(v)
	}
	if c.Topic != "siem.{source}.{dataset}" || c.SASL == nil || c.TLS == nil {
		t.Errorf("decoded %+v", c)
	}
}
