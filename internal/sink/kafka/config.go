package kafka

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Defaults applied by SetDefaults.
const (
	DefaultTopic       = "alertrelay"
	DefaultClientID    = "alertrelay"
	DefaultCompression = CompressionLZ4
	DefaultAcks        = AcksAll
	DefaultTimeout     = 30 * time.Second
	// DefaultMaxMessageBytes is Kafka's own default record batch limit
	// (max.message.bytes / message.max.bytes = 1,048,588 bytes, minus
	// room for the batch header), which franz-go also defaults to.
	DefaultMaxMessageBytes = 1000012
)

// Limits of Config.MaxMessageBytes.
const (
	MinMaxMessageBytes = 1024
	MaxMaxMessageBytes = 100 << 20 // Kafka's socket.request.max.bytes default
)

// Values of Config.Compression.
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZstd   = "zstd"
)

// Values of Config.Acks.
const (
	// AcksAll waits for every in-sync replica (acks=-1). Required by the
	// idempotent producer.
	AcksAll = "all"
	// AcksLeader waits for the partition leader only (acks=1). It turns the
	// idempotent producer off: see Config.Acks.
	AcksLeader = "leader"
)

// Values of SASLConfig.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Placeholders that Config.Topic may contain.
const (
	PlaceholderSource  = "{source}"
	PlaceholderDataset = "{dataset}"
)

// HeaderDataset is the record header that carries event.dataset.
const HeaderDataset = "dataset"

// maxTopicLen is Kafka's limit on a topic name.
const maxTopicLen = 249

// Config configures a Kafka sink.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required. The client
	// discovers the rest of the cluster from them.
	Brokers []string `yaml:"brokers"`

	// Topic is the topic every record goes to; default "alertrelay". It may
	// contain {source} and {dataset}, replaced per event by event.provider
	// (the name of the source in the config) and event.dataset
	// (cybertrace.detection, cynet.alert...). Characters that Kafka does not
	// allow in topic names are replaced by '_'; a missing field gives
	// "unknown".
	Topic string `yaml:"topic"`

	// ClientID identifies the producer in broker logs, quotas and ACLs;
	// default "alertrelay".
	ClientID string `yaml:"client_id"`

	// Compression is the record batch codec: none, gzip, snappy, lz4
	// (default) or zstd (needs Kafka 2.1 or later).
	Compression string `yaml:"compression"`

	// Acks is "all" (default: every in-sync replica has the record before
	// it is acknowledged; the idempotent producer is on) or "leader" (the
	// leader alone; the idempotent producer is off, so a retry inside the
	// client after a lost response can duplicate a record, and a leader
	// failover can lose acknowledged records).
	Acks string `yaml:"acks"`

	// MaxMessageBytes bounds one record batch sent to a partition, as
	// Kafka's max.message.bytes; default 1,000,012. It must not exceed the
	// topic's max.message.bytes. A document too large for it is
	// dead-lettered.
	MaxMessageBytes int `yaml:"max_message_bytes"`

	// Timeout bounds one Write, from handing the records to the client to
	// the last acknowledgement; default 30s.
	Timeout time.Duration `yaml:"timeout"`

	// AutoCreateTopics lets the producer ask the brokers to create a
	// missing topic (they do so only if auto.create.topics.enable is on).
	// Default false: a missing topic is an error that keeps the events
	// queued.
	AutoCreateTopics bool `yaml:"auto_create_topics"`

	// SASL, if set, authenticates every connection.
	SASL *SASLConfig `yaml:"sasl"`

	// TLS, if present (even empty: `tls: {}`), turns TLS on for every
	// connection; see tlsclient.Config.
	TLS *TLSConfig `yaml:"tls"`

	// Headers are static record headers added to every record, after the
	// "dataset" header.
	Headers map[string]string `yaml:"headers"`
}

// TLSConfig configures the TLS client: see tlsclient.Config.
type TLSConfig = tlsclient.Config

// SASLConfig is the `sasl:` block.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (case-insensitive).
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password is never logged or put in an error.
	Password config.Secret `yaml:"password"`
}

// SetDefaults sets every zero field except Brokers, SASL, TLS and Headers,
// which have no default, to its default.
func (c *Config) SetDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Acks == "" {
		c.Acks = DefaultAcks
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate returns every problem in c as a *config.FieldError keyed by the
// YAML path of the setting. It does not read the TLS files (New does).
// Messages never quote the password or header values.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf(field, format, args...))
	}

	if len(c.Brokers) == 0 {
		add("brokers", "at least one broker (host:port) is required")
	}
	for i, b := range c.Brokers {
		field := "brokers[" + strconv.Itoa(i) + "]"
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			add(field, "want host:port, got %q", b)
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			add(field, "port must be 1-65535, got %q", port)
		}
	}

	if msg := checkTopicTemplate(c.Topic); msg != "" {
		add("topic", "%s", msg)
	}
	if c.ClientID == "" {
		add("client_id", "is required")
	} else if !printable(c.ClientID) {
		add("client_id", "contains a control character")
	}
	switch c.Compression {
	case CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd:
	default:
		add("compression", "want none, gzip, snappy, lz4 or zstd, got %q", c.Compression)
	}
	switch c.Acks {
	case AcksAll, AcksLeader:
	default:
		add("acks", "want all or leader, got %q", c.Acks)
	}
	if c.MaxMessageBytes < MinMaxMessageBytes || c.MaxMessageBytes > MaxMaxMessageBytes {
		add("max_message_bytes", "want %d to %d, got %d", MinMaxMessageBytes, MaxMaxMessageBytes, c.MaxMessageBytes)
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0, got %s", c.Timeout)
	}

	if s := c.SASL; s != nil {
		switch strings.ToUpper(s.Mechanism) {
		case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		case "":
			add("sasl.mechanism", "is required (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		default:
			add("sasl.mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s.Mechanism)
		}
		if s.Username == "" {
			add("sasl.username", "is required")
		}
		if !s.Password.IsSet() {
			add("sasl.password", "is required")
		}
	}

	errs = append(errs, c.TLS.Validate()...)

	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		field := "headers." + k
		switch {
		case k == "":
			add("headers", "a header name must not be empty")
		case k == HeaderDataset:
			add(field, "is set by the sink from event.dataset and cannot be configured")
		case !printable(k):
			add(field, "name contains a control character")
		}
	}
	return errs
}

// checkTopicTemplate returns why t cannot be a topic template, or "".
func checkTopicTemplate(t string) string {
	if t == "" {
		return "is required"
	}
	// Remove the placeholders; what remains must be valid topic characters.
	rest := strings.ReplaceAll(strings.ReplaceAll(t, PlaceholderSource, ""), PlaceholderDataset, "")
	for i := 0; i < len(rest); i++ {
		if !topicChar(rest[i]) {
			if rest[i] == '{' || rest[i] == '}' {
				return "unknown placeholder: only {source} and {dataset} are replaced"
			}
			return "may contain only ASCII letters, digits, '.', '_', '-' and the placeholders {source} and {dataset}"
		}
	}
	if rest == t {
		if t == "." || t == ".." {
			return "must not be \".\" or \"..\""
		}
		if len(t) > maxTopicLen {
			return "is longer than 249 characters"
		}
	}
	return ""
}

// topicChar reports whether Kafka allows c in a topic name.
func topicChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// hasPlaceholder reports whether the topic is a template.
func hasPlaceholder(t string) bool {
	return strings.Contains(t, PlaceholderSource) || strings.Contains(t, PlaceholderDataset)
}

// printable reports whether s has no ASCII control character.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
