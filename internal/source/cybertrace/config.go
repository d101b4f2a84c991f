package cybertrace

import (
	"net/netip"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/format/kv"
)

// Config is the `type: cybertrace` source block.
type Config struct {
	// Listen is the TCP address CyberTrace's OutputSettings/ConnectionString
	// (and AlertConnectionString) point at.
	Listen string `yaml:"listen"`
	// Format: auto (CEF or key=value, per line), kv, cef or template.
	Format string `yaml:"format"`
	// Template holds the operator's CyberTrace formats for format: template.
	Template TemplateConfig `yaml:"template"`
	// TemplateKeys are the detection template's keys for kv/auto parsing
	// (default kv.DefaultTemplateKeys). Set it when the operator changed the
	// EventFormat's keys but kept the key=value layout.
	TemplateKeys []string `yaml:"template_keys"`
	// MaxLineBytes bounds one line; longer lines are dropped and counted.
	MaxLineBytes int `yaml:"max_line_bytes"`
	// MaxConnections bounds concurrent connections; more are refused.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// TLS makes the listener require TLS; with client_ca_file, mTLS.
	TLS *TLSConfig `yaml:"tls"`
	// AllowCIDRs, when set, refuses peers outside these networks.
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// IncludeOriginal adds the raw line to every document as event.original.
	IncludeOriginal bool `yaml:"include_original"`
	// TimeZone of dates without a zone (the %Date% slot, feed dates).
	TimeZone string `yaml:"time_zone"`
	// TimeLayouts for the %Date% slot (Go layouts); default
	// normalize.DefaultTimeLayouts.
	TimeLayouts []string `yaml:"time_layouts"`
	// Batch says how lines are grouped before they are handed to the queues.
	Batch BatchConfig `yaml:"batch"`
}

// TemplateConfig mirrors CyberTrace's OutputSettings.
type TemplateConfig struct {
	EventFormat              string `yaml:"event_format"`
	RecordFieldContextFormat string `yaml:"record_field_context_format"`
}

// TLSConfig is the listener's certificate and optional client CA.
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"` // set: clients must present a certificate it signed
}

// BatchConfig bounds the time and size of a batch.
type BatchConfig struct {
	MaxEvents int           `yaml:"max_events"`
	Linger    time.Duration `yaml:"linger"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9998"
	}
	if c.Format == "" {
		c.Format = "auto"
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = 1 << 20
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 256
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if c.Batch.MaxEvents == 0 {
		c.Batch.MaxEvents = 512
	}
	if c.Batch.Linger == 0 {
		c.Batch.Linger = 5 * time.Millisecond
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, config.Errorf(field, format, args...)) }
	if _, err := netip.ParseAddrPort(c.Listen); err != nil {
		if _, _, err := splitHostPort(c.Listen); err != nil {
			add("listen", "want host:port, got %q", c.Listen)
		}
	}
	switch c.Format {
	case "auto", "kv", "cef":
	case "template":
		if c.Template.EventFormat == "" {
			add("template.event_format", "required with format: template")
		} else if _, err := kv.NewTemplate(c.Template.EventFormat, c.Template.RecordFieldContextFormat); err != nil {
			add("template", "%v", err)
		}
	default:
		add("format", "want auto, kv, cef or template, got %q", c.Format)
	}
	if len(c.TemplateKeys) > 0 {
		if _, err := kv.NewParser(c.TemplateKeys); err != nil {
			add("template_keys", "%v", err)
		}
	}
	if c.MaxLineBytes < 256 || c.MaxLineBytes > 64<<20 {
		add("max_line_bytes", "want 256 to 67108864, got %d", c.MaxLineBytes)
	}
	if c.MaxConnections < 1 {
		add("max_connections", "want at least 1, got %d", c.MaxConnections)
	}
	if c.IdleTimeout < time.Second {
		add("idle_timeout", "want at least 1s, got %s", c.IdleTimeout)
	}
	if c.TLS != nil {
		if c.TLS.CertFile == "" {
			add("tls.cert_file", "required with tls")
		}
		if c.TLS.KeyFile == "" {
			add("tls.key_file", "required with tls")
		}
	}
	for i, s := range c.AllowCIDRs {
		if _, err := parseCIDR(s); err != nil {
			add("allow_cidrs", "entry %d: %v", i, err)
		}
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		add("time_zone", "%v", err)
	}
	if c.Batch.MaxEvents < 1 || c.Batch.MaxEvents > 100000 {
		add("batch.max_events", "want 1 to 100000, got %d", c.Batch.MaxEvents)
	}
	if c.Batch.Linger <= 0 || c.Batch.Linger > 10*time.Second {
		add("batch.linger", "want more than 0 and at most 10s, got %s", c.Batch.Linger)
	}
	return errs
}

// parseCIDR accepts a prefix (10.0.0.0/8) or a single address.
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
