package cynet

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Config is the `type: cynet` source block: one Cynet 360 tenant.
type Config struct {
	// BaseURL is the tenant's API host, e.g. https://acme.api.cynet.com.
	BaseURL string `yaml:"base_url"`
	// Username and Password: a console user, or an API user's access key
	// and secret key (spec A2).
	Username config.Secret `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// ClientID is the numeric site/client ID sent in the client_id header.
	ClientID string `yaml:"client_id"`

	PollInterval    time.Duration `yaml:"poll_interval"`    // between cycles; default 60s
	PageSize        int           `yaml:"page_size"`        // Limit; default 100
	InitialLookback time.Duration `yaml:"initial_lookback"` // first run only; default 24h
	Overlap         time.Duration `yaml:"overlap"`          // re-read window behind the cursor; default 2m
	// Endpoint and TokenPath vary by deployment (spec A1, A3: INFERRED
	// details are configurable).
	Endpoint  string `yaml:"endpoint"`   // default /api/alerts/bulk
	TokenPath string `yaml:"token_path"` // default /api/account/token
	// TokenTTL is the token lifetime when the server sends no expires_in
	// (default 60m); tokens are refreshed RefreshBefore ahead (default 5m).
	TokenTTL      time.Duration `yaml:"token_ttl"`
	RefreshBefore time.Duration `yaml:"refresh_before"`
	// LastSeenFormat is the Go layout of the LastSeen parameter (UTC);
	// default "2006-01-02 15:04:05", the format every client found uses.
	LastSeenFormat string `yaml:"last_seen_format"`
	// Timeout bounds one HTTP request.
	Timeout time.Duration `yaml:"timeout"`
	TLS     TLSConfig     `yaml:"tls"`
	// MaxRequestsPerSecond throttles this tenant's requests (default 2).
	MaxRequestsPerSecond float64 `yaml:"max_requests_per_second"`
	// DedupTTL is how long an alert version (ClientDbId + LastSeen) is
	// remembered; it must exceed Overlap (default 24h).
	DedupTTL time.Duration `yaml:"dedup_ttl"`
	// Retry shapes the back-off after 429, 5xx and network errors.
	Retry RetryConfig `yaml:"retry"`
	// IncludeOriginal adds the raw alert as event.original.
	IncludeOriginal bool `yaml:"include_original"`
}

// TLSConfig for the API connection (custom CA, client certificate).
// Verification is on unless turned off.
type TLSConfig = tlsclient.Config

// RetryConfig is the back-off after transient failures.
type RetryConfig struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollInterval, time.Minute)
	def(&c.InitialLookback, 24*time.Hour)
	def(&c.Overlap, 2*time.Minute)
	def(&c.TokenTTL, time.Hour)
	def(&c.RefreshBefore, 5*time.Minute)
	def(&c.Timeout, 30*time.Second)
	def(&c.DedupTTL, 24*time.Hour)
	def(&c.Retry.Initial, time.Second)
	def(&c.Retry.Max, 5*time.Minute)
	if c.PageSize == 0 {
		c.PageSize = 100
	}
	if c.Endpoint == "" {
		c.Endpoint = "/api/alerts/bulk"
	}
	if c.TokenPath == "" {
		c.TokenPath = "/api/account/token"
	}
	if c.LastSeenFormat == "" {
		c.LastSeenFormat = "2006-01-02 15:04:05"
	}
	if c.MaxRequestsPerSecond == 0 {
		c.MaxRequestsPerSecond = 2
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() []error {
	var errs []error
	add := func(f, format string, args ...any) { errs = append(errs, config.Errorf(f, format, args...)) }
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("base_url", "want https://<tenant>.api.cynet.com, got %q", c.BaseURL)
	} else if u.User != nil {
		add("base_url", "must not contain credentials; use username and password")
	}
	errs = append(errs, c.TLS.Validate()...)
	if !c.Username.IsSet() {
		add("username", "required")
	}
	if !c.Password.IsSet() {
		add("password", "required")
	}
	if n, err := strconv.ParseUint(c.ClientID, 10, 64); err != nil || c.ClientID == "" {
		add("client_id", "want the numeric site/client ID, got %q", c.ClientID)
	} else {
		_ = n
	}
	if c.PollInterval < time.Second {
		add("poll_interval", "want at least 1s, got %s", c.PollInterval)
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		add("page_size", "want 1 to 10000, got %d", c.PageSize)
	}
	if c.InitialLookback < 0 {
		add("initial_lookback", "must not be negative")
	}
	if c.Overlap < 0 {
		add("overlap", "must not be negative")
	}
	if c.DedupTTL <= c.Overlap {
		add("dedup_ttl", "must be longer than overlap (%s), got %s", c.Overlap, c.DedupTTL)
	}
	for f, p := range map[string]string{"endpoint": c.Endpoint, "token_path": c.TokenPath} {
		if !strings.HasPrefix(p, "/") {
			add(f, "want a path starting with /, got %q", p)
		}
	}
	if c.TokenTTL < time.Minute {
		add("token_ttl", "want at least 1m, got %s", c.TokenTTL)
	}
	if c.RefreshBefore < 0 || c.RefreshBefore >= c.TokenTTL {
		add("refresh_before", "want 0 to less than token_ttl, got %s", c.RefreshBefore)
	}
	if _, err := time.Parse(c.LastSeenFormat, time.Now().UTC().Format(c.LastSeenFormat)); err != nil {
		add("last_seen_format", "not a usable Go time layout: %v", err)
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0")
	}
	if c.MaxRequestsPerSecond <= 0 {
		add("max_requests_per_second", "want more than 0")
	}
	if c.Retry.Initial <= 0 || c.Retry.Max < c.Retry.Initial {
		add("retry", "want 0 < initial <= max, got %s / %s", c.Retry.Initial, c.Retry.Max)
	}
	return errs
}
