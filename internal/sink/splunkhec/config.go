package splunkhec

import (
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Values of Config.Endpoint.
const (
	// EndpointEvent posts JSON envelopes to /services/collector/event.
	EndpointEvent = "event"
	// EndpointRaw posts lines to /services/collector/raw.
	EndpointRaw = "raw"
)

// Values of Config.Compression.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// Defaults applied by SetDefaults.
const (
	DefaultEndpoint    = EndpointEvent
	DefaultCompression = CompressionNone
	DefaultTimeout     = 30 * time.Second
	// DefaultMaxBodyBytes is 1 MB, conservative on purpose: it is what
	// older Splunk versions shipped as HEC's max_content_length
	// (limits.conf [http_input]; recent versions default to far more), and
	// at about 1 KB per event the per-request overhead is already
	// negligible. Raise it if your limits.conf allows more.
	DefaultMaxBodyBytes = 1_000_000
	// DefaultAckPollInterval is how often acknowledgements are polled.
	DefaultAckPollInterval = time.Second
	// DefaultAckTimeout is how long a batch waits for its
	// acknowledgements before the unacknowledged events are sent again. It
	// is the default (and minimum) acknowledgement timeout of AWS Kinesis
	// Firehose's Splunk destination: an indexer acknowledges within seconds
	// when healthy, but a blocked indexing pipeline can hold acks for
	// minutes, and resending too early only indexes duplicates.
	DefaultAckTimeout = 180 * time.Second
)

// MinMaxBodyBytes is the smallest non-zero MaxBodyBytes.
const MinMaxBodyBytes = 1024

// Config configures a Splunk HTTP Event Collector sink (`type: splunkhec`).
type Config struct {
	// URL is the HEC base address, scheme://host:port (e.g.
	// https://splunk.example.com:8088), optionally with a path prefix when
	// HEC sits behind a reverse proxy. The sink appends
	// /services/collector/event, /raw, /ack and /health. Required.
	URL string `yaml:"url"`

	// Token is the HEC token, sent as "Authorization: Splunk <token>".
	// Required. Never logged.
	Token config.Secret `yaml:"token"`

	// Endpoint is EndpointEvent (default) or EndpointRaw.
	Endpoint string `yaml:"endpoint"`

	// Channel is the X-Splunk-Request-Channel, a GUID. When empty, a
	// random one is generated once per sink if ack is enabled or the
	// endpoint is raw; otherwise no channel is sent.
	Channel string `yaml:"channel"`

	// Index, Source, Sourcetype and Host are the Splunk metadata of every
	// event. Empty Index and Host are left out (the token's default index,
	// HEC's default host). Source defaults to "alertrelay:<event.provider>"
	// and Sourcetype to "alertrelay:<event.dataset>" (e.g.
	// alertrelay:cybertrace.detection).
	Index      string `yaml:"index"`
	Source     string `yaml:"source"`
	Sourcetype string `yaml:"sourcetype"`
	Host       string `yaml:"host"`

	// Sources overrides Index, Sourcetype and Source for the events of one
	// alertrelay source, keyed by the source's name (event.provider).
	Sources map[string]SourceOverride `yaml:"sources"`

	// Fields are static indexed fields added to every event
	// ("fields":{...}); endpoint event only.
	Fields map[string]string `yaml:"fields"`

	// Compression is CompressionNone (default) or CompressionGzip
	// (Content-Encoding: gzip, level 1).
	Compression string `yaml:"compression"`

	// Timeout bounds one HTTP request (send, or one acknowledgement
	// poll). Default 30s.
	Timeout time.Duration `yaml:"timeout"`

	// MaxBodyBytes is the largest request body before compression: a
	// batch is split into several requests to stay under it. An event
	// larger than this is sent alone. 0 never splits. Otherwise at least
	// MinMaxBodyBytes. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`

	// TLS configures https:// connections.
	TLS *TLSConfig `yaml:"tls"`

	// Ack configures indexer acknowledgement.
	Ack AckConfig `yaml:"ack"`
}

// SourceOverride is the metadata of one alertrelay source's events; empty
// fields fall back to the sink's settings.
type SourceOverride struct {
	Index      string `yaml:"index"`
	Sourcetype string `yaml:"sourcetype"`
	Source     string `yaml:"source"`
}

// AckConfig configures HEC indexer acknowledgement. The token must have
// indexer acknowledgement enabled (Splunk Enterprise; Splunk Cloud only
// for Firehose).
type AckConfig struct {
	// Enabled makes Write wait until every request of the batch is
	// acknowledged as indexed.
	Enabled bool `yaml:"enabled"`
	// PollInterval is the pause between acknowledgement polls. Default
	// DefaultAckPollInterval.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout is how long Write waits for acknowledgements before it
	// reports the unacknowledged events for resending. Default
	// DefaultAckTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// TLSConfig configures the TLS client: see tlsclient.Config.
type TLSConfig = tlsclient.Config

// SetDefaults sets every zero setting that has a default. MaxBodyBytes 0
// (never split) is meaningful, so call SetDefaults on a zero Config before
// the YAML is decoded into it.
func (c *Config) SetDefaults() {
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Ack.PollInterval == 0 {
		c.Ack.PollInterval = DefaultAckPollInterval
	}
	if c.Ack.Timeout == 0 {
		c.Ack.Timeout = DefaultAckTimeout
	}
}

// reservedFields are Splunk's metadata fields, which "fields" cannot set.
var reservedFields = map[string]bool{"host": true, "source": true, "sourcetype": true, "index": true, "time": true}

// Validate returns every problem in c as a *config.FieldError keyed by the
// YAML path of the setting. It does not read the TLS files (New does).
// Messages never quote the URL or the token.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf(field, format, args...))
	}

	https := false
	if c.URL == "" {
		add("url", "is required")
	} else if u, err := url.Parse(c.URL); err != nil {
		add("url", "is not a valid URL")
	} else {
		switch u.Scheme {
		case "http":
		case "https":
			https = true
		default:
			add("url", "want an http:// or https:// URL, got scheme %q", u.Scheme)
		}
		if u.Host == "" && (u.Scheme == "http" || u.Scheme == "https") {
			add("url", "has no host")
		}
		if u.User != nil {
			add("url", "must not contain credentials (user:password@); use token")
		}
		if u.RawQuery != "" || u.Fragment != "" {
			add("url", "must not have a query or fragment")
		}
		if strings.Contains(u.Path, "/services/collector") {
			add("url", "give the HEC base address (e.g. https://splunk:8088) without /services/collector: the sink adds the endpoint")
		}
	}

	if !c.Token.IsSet() {
		add("token", "is required")
	} else if !httpclient.ValidHeaderValue(c.Token.Reveal()) {
		add("token", "contains a control character (CR, LF, NUL...)")
	}

	if c.Endpoint != EndpointEvent && c.Endpoint != EndpointRaw {
		add("endpoint", "want %s or %s, got %q", EndpointEvent, EndpointRaw, c.Endpoint)
	}
	if c.Channel != "" && !IsGUID(c.Channel) {
		add("channel", "must be a GUID (e.g. 0b1e7c52-8a44-4b8e-9d6a-2f0c1d3e4f5a)")
	}
	if c.Compression != CompressionNone && c.Compression != CompressionGzip {
		add("compression", "want %s or %s, got %q", CompressionNone, CompressionGzip, c.Compression)
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0, got %s", c.Timeout)
	}
	if c.MaxBodyBytes < 0 || (c.MaxBodyBytes != 0 && c.MaxBodyBytes < MinMaxBodyBytes) {
		add("max_body_bytes", "must be 0 (never split) or at least %d, got %d", MinMaxBodyBytes, c.MaxBodyBytes)
	}

	checkMeta := func(field, v string) {
		if !validMeta(v) {
			add(field, "contains a control character")
		}
	}
	checkMeta("index", c.Index)
	checkMeta("source", c.Source)
	checkMeta("sourcetype", c.Sourcetype)
	checkMeta("host", c.Host)
	for _, name := range sortedKeys(c.Sources) {
		o := c.Sources[name]
		field := "sources." + name
		if name == "" {
			add("sources", "has an empty source name")
		}
		checkMeta(field+".index", o.Index)
		checkMeta(field+".sourcetype", o.Sourcetype)
		checkMeta(field+".source", o.Source)
	}

	if len(c.Fields) > 0 && c.Endpoint == EndpointRaw {
		add("fields", "is only supported with endpoint: event (HEC ignores indexed fields on /raw)")
	}
	for _, k := range sortedKeys(c.Fields) {
		field := "fields." + k
		switch {
		case k == "":
			add("fields", "has an empty field name")
		case strings.HasPrefix(k, "_"):
			add(field, "names starting with _ are reserved by Splunk")
		case reservedFields[k]:
			add(field, "is Splunk metadata: use the %s setting", k)
		case !validMeta(k):
			add(field, "name contains a control character")
		}
		if !validMeta(c.Fields[k]) {
			add(field, "value contains a control character")
		}
	}

	if c.Ack.Enabled {
		if c.Ack.PollInterval <= 0 {
			add("ack.poll_interval", "want more than 0, got %s", c.Ack.PollInterval)
		}
		if c.Ack.Timeout <= 0 {
			add("ack.timeout", "want more than 0, got %s", c.Ack.Timeout)
		} else if c.Ack.PollInterval > c.Ack.Timeout {
			add("ack.poll_interval", "is longer than ack.timeout (%s)", c.Ack.Timeout)
		}
	}

	if t := c.TLS; t != nil {
		if c.URL != "" && !https {
			add("tls", "is only used with an https:// URL")
		}
		errs = append(errs, t.Validate()...)
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// IsGUID reports whether s has the form of a GUID,
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in hexadecimal: what HEC accepts as
// a channel.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// validMeta reports whether a metadata value has no control character.
func validMeta(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
