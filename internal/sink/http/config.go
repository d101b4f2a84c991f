package http

import (
	"net/url"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Defaults applied by SetDefaults.
const (
	DefaultMethod       = "POST"
	DefaultFormat       = FormatNDJSON
	DefaultCompression  = CompressionNone
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBodyBytes = 10 << 20 // 10 MiB
)

// Values of Config.Format.
const (
	// FormatNDJSON sends the batch as is: every document followed by '\n',
	// Content-Type application/x-ndjson.
	FormatNDJSON = "ndjson"
	// FormatJSONArray sends [doc,doc,...], Content-Type application/json.
	FormatJSONArray = "json_array"
)

// Values of Config.Compression.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// MinMaxBodyBytes is the smallest non-zero MaxBodyBytes.
const MinMaxBodyBytes = 1024

// Config configures an HTTP sink.
type Config struct {
	// URL is the endpoint every request goes to, http:// or https://.
	// Required. It must not carry credentials (user:pass@): use Auth.
	URL string `yaml:"url"`

	// Method is POST (default) or PUT, case-insensitive.
	Method string `yaml:"method"`

	// Format is the body layout: FormatNDJSON (default) or FormatJSONArray.
	Format string `yaml:"format"`

	// Headers are added to every request. Values may hold credentials
	// (through ${env:...} or ${file:...}) and are never logged or put in
	// an error. A Content-Type given here replaces the format's. Hop-by-hop
	// and framing headers (Content-Length, Content-Encoding,
	// Transfer-Encoding, Connection, Host...) are refused, and so is
	// Authorization when Auth is set.
	Headers map[string]string `yaml:"headers"`

	// Auth, if set, authenticates every request.
	Auth *AuthConfig `yaml:"auth"`

	// Compression is CompressionNone (default) or CompressionGzip
	// (Content-Encoding: gzip).
	Compression string `yaml:"compression"`

	// Timeout bounds one HTTP request, from dialling to reading the
	// response. Default 30s.
	Timeout time.Duration `yaml:"timeout"`

	// TLS configures https:// connections. Setting it with an http:// URL is
	// an error.
	TLS *TLSConfig `yaml:"tls"`

	// MaxBodyBytes is the largest request body, before compression: a batch
	// whose body would be larger is sent in several requests, in order. A
	// single document larger than this is sent alone. 0 never splits.
	// Otherwise at least MinMaxBodyBytes. Default 10 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// AuthConfig authenticates requests with exactly one scheme.
type AuthConfig struct {
	// BearerToken sends "Authorization: Bearer <token>".
	BearerToken config.Secret `yaml:"bearer_token"`
	// Basic sends HTTP basic authentication.
	Basic *BasicAuth `yaml:"basic"`
}

// BasicAuth is a user name and password for HTTP basic authentication.
type BasicAuth struct {
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
}

// TLSConfig configures the TLS client: see tlsclient.Config.
type TLSConfig = tlsclient.Config

// SetDefaults sets every zero field except URL, Headers, Auth and TLS,
// which have no default, to its default. MaxBodyBytes 0 (never split) is
// meaningful, so call SetDefaults on a zero Config before the YAML is
// decoded into it.
func (c *Config) SetDefaults() {
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	if c.Format == "" {
		c.Format = DefaultFormat
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
// YAML path of the setting. It does not read the TLS files (New does).
// Messages never quote the URL, header values or credentials, which may be
// secret.
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
			add("url", "must not contain credentials (user:password@); use auth.basic")
		}
	}

	switch strings.ToUpper(c.Method) {
	case "POST", "PUT":
	default:
		add("method", "want POST or PUT, got %q", c.Method)
	}
	if c.Format != FormatNDJSON && c.Format != FormatJSONArray {
		add("format", "want %s or %s, got %q", FormatNDJSON, FormatJSONArray, c.Format)
	}
	if c.Compression != CompressionNone && c.Compression != CompressionGzip {
		add("compression", "want %s or %s, got %q", CompressionNone, CompressionGzip, c.Compression)
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0, got %s", c.Timeout)
	}
	if c.MaxBodyBytes != 0 && c.MaxBodyBytes < MinMaxBodyBytes {
		add("max_body_bytes", "must be 0 (never split) or at least %d, got %d", MinMaxBodyBytes, c.MaxBodyBytes)
	}

	errs = append(errs, httpclient.ValidateHeaders(c.Headers, c.Auth != nil)...)

	if a := c.Auth; a != nil {
		switch {
		case a.BearerToken.IsSet() && a.Basic != nil:
			add("auth", "set exactly one of bearer_token or basic, not both")
		case !a.BearerToken.IsSet() && a.Basic == nil:
			add("auth", "set exactly one of bearer_token or basic")
		}
		if a.BearerToken.IsSet() && !httpclient.ValidHeaderValue(a.BearerToken.Reveal()) {
			add("auth.bearer_token", "contains a control character (CR, LF, NUL...)")
		}
		if b := a.Basic; b != nil {
			switch {
			case b.Username == "":
				add("auth.basic.username", "is required")
			case strings.Contains(b.Username, ":"):
				add("auth.basic.username", "must not contain ':'")
			case !httpclient.ValidHeaderValue(b.Username):
				add("auth.basic.username", "contains a control character")
			}
			if !b.Password.IsSet() {
				add("auth.basic.password", "is required")
			}
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
