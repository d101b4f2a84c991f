package sentinel

import (
	"net/url"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Defaults applied by SetDefaults.
const (
	DefaultAuthority   = "https://login.microsoftonline.com"
	DefaultScope       = "https://monitor.azure.com//.default"
	DefaultAPIVersion  = "2023-01-01"
	DefaultCompression = CompressionGzip
	DefaultTimeout     = 30 * time.Second
	// DefaultMaxBodyBytes is the Logs Ingestion API's documented limit,
	// "1 MB per call, both compressed and uncompressed data"; the service
	// answers 413 ContentLengthLimitExceeded "Maximum allowed content
	// length: 1048576 bytes (1 MB)".
	DefaultMaxBodyBytes = 1 << 20
)

// Limits of Config.MaxBodyBytes.
const (
	MinMaxBodyBytes = 16 << 10
	MaxMaxBodyBytes = DefaultMaxBodyBytes
)

// Values of Config.Compression.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// Config configures a Microsoft Sentinel sink (Azure Monitor Logs
// Ingestion API with a Microsoft Entra ID app registration).
type Config struct {
	// Endpoint is the logs ingestion URL: the DCR's "logsIngestion"
	// endpoint or a data collection endpoint (DCE), e.g.
	// https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com. Required.
	// It must not carry a query, a fragment or credentials.
	Endpoint string `yaml:"endpoint"`

	// DCRImmutableID is the immutableId of the data collection rule
	// ("dcr-" followed by 32 hex digits). Required.
	DCRImmutableID string `yaml:"dcr_immutable_id"`

	// Stream is the DCR input stream, e.g. Custom-AlertRelay_CL. Required.
	Stream string `yaml:"stream"`

	// TenantID is the Microsoft Entra tenant (directory) of the app
	// registration: a GUID or a domain name. Required.
	TenantID string `yaml:"tenant_id"`

	// ClientID is the app registration's Application (client) ID.
	// Required.
	ClientID string `yaml:"client_id"`

	// ClientSecret is the app registration's client secret value. Required.
	// Never logged or put in an error.
	ClientSecret config.Secret `yaml:"client_secret"`

	// Authority is the Entra ID host tokens are asked from: the token URL
	// is <authority>/<tenant_id>/oauth2/v2.0/token. Default
	// https://login.microsoftonline.com; https://login.microsoftonline.us
	// (US Government), https://login.chinacloudapi.cn (China), or an
	// emulator.
	Authority string `yaml:"authority"`

	// Scope is the scope of the token. Default
	// https://monitor.azure.com//.default (the double slash is what
	// Microsoft documents); https://monitor.azure.us//.default or
	// https://monitor.azure.cn//.default in sovereign clouds.
	Scope string `yaml:"scope"`

	// APIVersion is the api-version query parameter. Default 2023-01-01.
	APIVersion string `yaml:"api_version"`

	// Compression is CompressionGzip (default; Content-Encoding: gzip) or
	// CompressionNone.
	Compression string `yaml:"compression"`

	// MaxBodyBytes is the largest request body, measured before
	// compression, so that it holds whichever size the service counts
	// (its documentation says "both compressed and uncompressed"). A
	// batch whose rows do not fit is sent in several requests, in order.
	// Between MinMaxBodyBytes and MaxMaxBodyBytes; default (and maximum)
	// 1 MiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`

	// Timeout bounds one HTTP request (token or ingestion), from dialling
	// to reading the response. Default 30s.
	Timeout time.Duration `yaml:"timeout"`

	// TLS configures https:// connections to the endpoint and the
	// authority. Setting it when neither is https is an error.
	TLS *tlsclient.Config `yaml:"tls"`
}

// SetDefaults sets every zero field that has a default. Call it on a zero
// Config before the YAML is decoded into it.
func (c *Config) SetDefaults() {
	if c.Authority == "" {
		c.Authority = DefaultAuthority
	}
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate returns every problem in c as a *config.FieldError keyed by the
// YAML path of the setting. It does not read the TLS files (New does).
// Messages never quote the client secret.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf(field, format, args...))
	}

	endpointHTTPS, endpointOK := validateBaseURL("endpoint", c.Endpoint, add)
	authorityHTTPS, authorityOK := validateBaseURL("authority", c.Authority, add)

	switch {
	case c.DCRImmutableID == "":
		add("dcr_immutable_id", "is required (the immutableId of the data collection rule, dcr-...)")
	case !strings.HasPrefix(c.DCRImmutableID, "dcr-") || !isToken(c.DCRImmutableID, "-"):
		add("dcr_immutable_id", "want the DCR's immutableId, \"dcr-\" followed by hex digits, got %q", c.DCRImmutableID)
	}
	switch {
	case c.Stream == "":
		add("stream", "is required (e.g. Custom-AlertRelay_CL)")
	case !(strings.HasPrefix(c.Stream, "Custom-") || strings.HasPrefix(c.Stream, "Microsoft-")) || !isToken(c.Stream, "-_"):
		add("stream", "want a DCR stream name such as Custom-AlertRelay_CL (Custom-/Microsoft- prefix, letters, digits, '_' and '-'), got %q", c.Stream)
	}
	switch {
	case c.TenantID == "":
		add("tenant_id", "is required (the Directory (tenant) ID of the app registration)")
	case !isToken(c.TenantID, "-."):
		add("tenant_id", "want a tenant GUID or domain name, got %q", c.TenantID)
	}
	switch {
	case c.ClientID == "":
		add("client_id", "is required (the Application (client) ID of the app registration)")
	case !isToken(c.ClientID, "-."):
		add("client_id", "want an application (client) ID, got %q", c.ClientID)
	}
	if !c.ClientSecret.IsSet() {
		add("client_secret", "is required (use ${env:...} or ${file:...})")
	}
	if c.Scope == "" || strings.ContainsAny(c.Scope, " \t\r\n") {
		add("scope", "want one scope such as %s", DefaultScope)
	}
	if c.APIVersion == "" || !isToken(c.APIVersion, "-.") {
		add("api_version", "want a version such as %s, got %q", DefaultAPIVersion, c.APIVersion)
	}
	if c.Compression != CompressionGzip && c.Compression != CompressionNone {
		add("compression", "want %s or %s, got %q", CompressionGzip, CompressionNone, c.Compression)
	}
	if c.MaxBodyBytes < MinMaxBodyBytes || c.MaxBodyBytes > MaxMaxBodyBytes {
		add("max_body_bytes", "want %d to %d (the service's 1 MB limit), got %d", MinMaxBodyBytes, MaxMaxBodyBytes, c.MaxBodyBytes)
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0, got %s", c.Timeout)
	}
	if t := c.TLS; t != nil {
		if endpointOK && authorityOK && !endpointHTTPS && !authorityHTTPS {
			add("tls", "is only used with an https:// endpoint or authority")
		}
		errs = append(errs, t.Validate()...)
	}
	return errs
}

// validateBaseURL checks an http(s) URL that paths are appended to. ok is
// false when it was reported as invalid.
func validateBaseURL(field, raw string, add func(string, string, ...any)) (https, ok bool) {
	if raw == "" {
		add(field, "is required")
		return false, false
	}
	u, err := url.Parse(raw)
	if err != nil {
		add(field, "is not a valid URL")
		return false, false
	}
	ok = true
	switch u.Scheme {
	case "https":
		https = true
	case "http":
	default:
		add(field, "want an https:// URL, got scheme %q", u.Scheme)
		ok = false
	}
	if u.Host == "" {
		add(field, "has no host")
		ok = false
	}
	if u.User != nil {
		add(field, "must not contain credentials (user:password@)")
		ok = false
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		add(field, "must not have a query or fragment")
		ok = false
	}
	return https, ok
}

// isToken reports whether s is non-empty and made of ASCII letters, digits
// and the bytes of extra only: safe in a URL path and a log line.
func isToken(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}
