package elasticsearch

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Values of Config.Mode.
const (
	// ModeDataStream appends every event to one data stream with the
	// bulk "create" action (the only one data streams accept).
	ModeDataStream = "data_stream"
	// ModeIndex writes every event to an index named from the event's own
	// @timestamp with the bulk "index" action.
	ModeIndex = "index"
)

// Values of Config.Compression.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// Defaults applied by SetDefaults.
const (
	DefaultMode         = ModeDataStream
	DefaultDataStream   = "logs-alertrelay-default"
	DefaultCompression  = CompressionGzip
	DefaultTimeout      = 60 * time.Second
	DefaultMaxBodyBytes = 10 << 20 // 10 MiB
)

// MinMaxBodyBytes is the smallest non-zero MaxBodyBytes.
const MinMaxBodyBytes = 1024

// maxIndexName is Elasticsearch's limit on index and data stream names.
const maxIndexName = 255

// Config configures an Elasticsearch / OpenSearch sink (`type:
// elasticsearch`).
type Config struct {
	// URL is the base URL of the cluster (a node, a load balancer, or an
	// Elastic Cloud endpoint), http:// or https://, optionally with a path
	// prefix for a reverse proxy ("https://proxy/es"). Requests go to
	// URL + "/_bulk" and URL + "/". Set URL or URLs, not both. It must not
	// carry credentials: use Auth.
	URL string `yaml:"url"`

	// URLs are several base URLs of the same cluster. The sink uses one at
	// a time and moves to the next one after a connection error (refused,
	// reset, timeout, TLS failure); the delivery loop's retry then goes to
	// that node. No health checks, no sniffing.
	URLs []string `yaml:"urls"`

	// Mode is ModeDataStream (default) or ModeIndex.
	Mode string `yaml:"mode"`

	// DataStream is the data stream written in ModeDataStream. Default
	// DefaultDataStream. It must match an index template with data_stream
	// enabled (Elasticsearch's built-in logs-*-* does; see the docs for
	// ours).
	DataStream string `yaml:"data_stream"`

	// Index is the index name in ModeIndex (required there), lower case,
	// with optional date fields taken from the event's @timestamp (UTC):
	// {yyyy}, {MM}, {dd}, {HH}, combinable in one pair of braces with the
	// separators . - _ ("alertrelay-{yyyy.MM.dd}"). A re-sent event thus
	// always lands in the same index, where its _id de-duplicates it.
	Index string `yaml:"index"`

	// Pipeline is the ingest pipeline to run on every document (the bulk
	// request's pipeline parameter). Optional.
	Pipeline string `yaml:"pipeline"`

	// Auth, if set, authenticates every request with an API key or a user
	// name and password.
	Auth *AuthConfig `yaml:"auth"`

	// Compression is CompressionGzip (default: Elasticsearch and
	// OpenSearch always accept gzip request bodies) or CompressionNone.
	Compression string `yaml:"compression"`

	// Timeout bounds one HTTP request, from dialling to reading the
	// response. Default 60s.
	Timeout time.Duration `yaml:"timeout"`

	// MaxBodyBytes is the largest bulk body before compression: a batch
	// whose body (action lines included) would be larger is sent in
	// several requests, in order. A document larger than this is sent
	// alone. 0 never splits. Otherwise at least MinMaxBodyBytes. Default
	// 10 MiB (Elasticsearch's http.max_content_length is 100 MB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`

	// TLS configures https:// connections. Setting it with http:// URLs is
	// an error.
	TLS *TLSConfig `yaml:"tls"`

	// Headers are added to every request. Values may hold credentials and
	// are never logged or put in an error. Framing headers
	// (Content-Length, Content-Encoding, Content-Type, Host...) are
	// refused, and so is Authorization when Auth is set.
	Headers map[string]string `yaml:"headers"`
}

// AuthConfig authenticates requests with an API key or basic credentials,
// exactly one of them.
type AuthConfig struct {
	// APIKey is sent as "Authorization: ApiKey <value>". Give the
	// "encoded" value Elasticsearch returns (base64 of id:api_key), or
	// "id:api_key", which the sink encodes.
	APIKey config.Secret `yaml:"api_key"`
	// Username and Password are sent as HTTP basic authentication.
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
}

// SetDefaults sets Mode, DataStream, Compression, Timeout and MaxBodyBytes
// when zero. MaxBodyBytes 0 (never split) is meaningful, so call it on a
// zero Config before the YAML is decoded into it.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.DataStream == "" {
		c.DataStream = DefaultDataStream
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
}

// Validate returns every problem in c as a *config.FieldError keyed by the
// YAML path of the setting. It reads no file (New loads the TLS files).
// Messages never quote URLs, header values or credentials.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf(field, format, args...))
	}

	bases := c.bases()
	switch {
	case c.URL != "" && len(c.URLs) > 0:
		add("url", "set url or urls, not both")
	case len(bases) == 0:
		add("url", "is required (or urls)")
	}
	https, plain := false, false
	for i, u := range bases {
		field := "url"
		if c.URL == "" {
			field = fmt.Sprintf("urls[%d]", i)
		}
		switch scheme, err := checkURL(u); {
		case err != "":
			add(field, "%s", err)
		case scheme == "https":
			https = true
		default:
			plain = true
		}
	}

	switch c.Mode {
	case ModeDataStream:
		if msg := checkName(c.DataStream); msg != "" {
			add("data_stream", "%s", msg)
		}
		if c.Index != "" {
			add("index", "is only used with mode %s", ModeIndex)
		}
	case ModeIndex:
		if c.Index == "" {
			add("index", "is required with mode %s (e.g. alertrelay-{yyyy.MM.dd})", ModeIndex)
		} else if _, err := parseIndexPattern(c.Index); err != nil {
			add("index", "%v", err)
		}
	default:
		add("mode", "want %s or %s, got %q", ModeDataStream, ModeIndex, c.Mode)
	}
	if !httpclient.ValidHeaderValue(c.Pipeline) || strings.ContainsAny(c.Pipeline, " ") {
		add("pipeline", "contains a space or a control character")
	}
	if c.Compression != CompressionNone && c.Compression != CompressionGzip {
		add("compression", "want %s or %s, got %q", CompressionGzip, CompressionNone, c.Compression)
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0, got %s", c.Timeout)
	}
	if c.MaxBodyBytes != 0 && c.MaxBodyBytes < MinMaxBodyBytes {
		add("max_body_bytes", "must be 0 (never split) or at least %d, got %d", MinMaxBodyBytes, c.MaxBodyBytes)
	}

	errs = append(errs, httpclient.ValidateHeaders(c.Headers, c.Auth != nil, "Content-Type")...)

	if a := c.Auth; a != nil {
		basic := a.Username != "" || a.Password.IsSet()
		switch {
		case a.APIKey.IsSet() && basic:
			add("auth", "set api_key or username/password, not both")
		case !a.APIKey.IsSet() && !basic:
			add("auth", "set api_key or username and password")
		case a.APIKey.IsSet():
			if !httpclient.ValidHeaderValue(a.APIKey.Reveal()) || strings.ContainsAny(a.APIKey.Reveal(), " ") {
				add("auth.api_key", "contains a space or a control character")
			}
		default:
			switch {
			case a.Username == "":
				add("auth.username", "is required with auth.password")
			case strings.Contains(a.Username, ":"):
				add("auth.username", "must not contain ':'")
			case !httpclient.ValidHeaderValue(a.Username):
				add("auth.username", "contains a control character")
			}
			if !a.Password.IsSet() {
				add("auth.password", "is required with auth.username")
			}
		}
	}

	if t := c.TLS; t != nil {
		if plain && !https {
			add("tls", "is only used with https:// URLs")
		}
		errs = append(errs, t.Validate()...)
	}
	if https && plain {
		add("urls", "mix http:// and https://; use one scheme for every node")
	}
	return errs
}

// bases returns the configured base URLs.
func (c *Config) bases() []string {
	if c.URL != "" {
		return []string{c.URL}
	}
	return c.URLs
}

// checkURL returns the scheme of a valid base URL, or a message that does
// not quote the URL.
func checkURL(raw string) (string, string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", "is empty"
	case err != nil:
		return "", "is not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Sprintf("want an http:// or https:// URL, got scheme %q", u.Scheme)
	case u.Host == "":
		return "", "has no host"
	case u.User != nil:
		return "", "must not contain credentials (user:password@); use auth"
	case u.RawQuery != "" || u.Fragment != "":
		return "", "must not have a query or fragment: give the base URL of the cluster"
	case strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/_bulk"):
		return "", "must be the base URL of the cluster, without /_bulk"
	}
	return u.Scheme, ""
}

// checkName returns why name cannot be an index or data stream name, or
// "". The rules are Elasticsearch's: lower case; none of \ / * ? " < > |
// space , # :; not starting with - _ + or .; not . or ..; at most 255
// bytes.
func checkName(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) > maxIndexName:
		return fmt.Sprintf("is longer than %d bytes", maxIndexName)
	case strings.ContainsAny(name[:1], "-_+."):
		return "must not start with - _ + or ."
	}
	if msg := checkNameChars(name); msg != "" {
		return msg
	}
	return ""
}

func checkNameChars(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			return "must be lower case"
		case c < 0x21 || c == 0x7f || strings.IndexByte(`\/*?"<>|,#:`, c) >= 0:
			if c == '<' || c == '>' {
				return `must not contain < or >: server-side date math (<name-{now/d}>) is not supported, use {yyyy.MM.dd}, which takes the event's own @timestamp`
			}
			return fmt.Sprintf("must not contain %q, spaces or control characters", c)
		}
	}
	return ""
}

// TLSConfig configures the TLS client: see tlsclient.Config.
type TLSConfig = tlsclient.Config
