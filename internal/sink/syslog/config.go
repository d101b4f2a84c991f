package syslog

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// Values of Config.Network.
const (
	NetworkTCP = "tcp" // RFC 6587: plain TCP
	NetworkTLS = "tls" // RFC 5425: TLS over TCP, conventionally port 6514
	NetworkUDP = "udp" // RFC 5426: one message per datagram
)

// Values of Config.Framing (TCP and TLS only).
const (
	// FramingOctetCounting prefixes every message with its length in
	// bytes and a space (RFC 6587 §3.4.1, RFC 5425 §4.3): safe for any
	// byte in the message, including LF.
	FramingOctetCounting = "octet_counting"
	// FramingLF ends every message with LF ("non-transparent framing",
	// RFC 6587 §3.4.2). An LF inside a message would split it, so the
	// sink replaces LF and CR in messages by spaces in this mode.
	FramingLF = "lf"
)

// Values of Config.Format.
const (
	FormatRFC5424 = "rfc5424"
	FormatRFC3164 = "rfc3164"
)

// Values of Config.Body.
const (
	BodyCEF      = "cef"      // ArcSight CEF mapped from the document: see cef.go
	BodyJSON     = "json"     // the JSON document as is
	BodyOriginal = "original" // event.original when present, else the JSON document
)

// Defaults applied by SetDefaults or, for the ones that depend on Network,
// by New.
const (
	DefaultNetwork  = NetworkTCP
	DefaultFormat   = FormatRFC5424
	DefaultFacility = "local4"
	DefaultAppName  = "alertrelay"
	DefaultBody     = BodyCEF
	DefaultTimeout  = 10 * time.Second
	// DefaultSDID names the structured-data element that carries the
	// event's id, dataset and provider in RFC 5424 messages. 32473 is the
	// enterprise number reserved for documentation (RFC 5612): set sd_id
	// to one under your own enterprise number if your SIEM cares, or to
	// "" to send no structured data.
	DefaultSDID = "alertrelay@32473"

	// DefaultMaxMessageBytesUDP is max_message_bytes for UDP: RFC 5426
	// §3.2 says receivers SHOULD accept 2048 octets.
	DefaultMaxMessageBytesUDP = 2048
	// DefaultMaxMessageBytesStream is max_message_bytes for TCP and TLS:
	// RFC 5425 §4.3.1 says receivers SHOULD accept 8192 octets, and it is
	// rsyslog's default maxMessageSize.
	DefaultMaxMessageBytesStream = 8192
)

// Limits of Config.MaxMessageBytes.
const (
	// MinMaxMessageBytes is the size every receiver must accept (RFC 5424
	// §6.1).
	MinMaxMessageBytes = 480
	// MaxUDPMessageBytes is the largest UDP payload over IPv4.
	MaxUDPMessageBytes = 65507
	// MaxStreamMessageBytes bounds a message over TCP or TLS.
	MaxStreamMessageBytes = 16 << 20
)

// Config configures a syslog sink.
type Config struct {
	// Address is the receiver's host:port. Required. Syslog's registered
	// ports are 514 (UDP, and TCP by convention) and 6514 (TLS).
	Address string `yaml:"address"`

	// Network is NetworkTCP (default), NetworkTLS or NetworkUDP.
	Network string `yaml:"network"`

	// Framing is FramingOctetCounting or FramingLF, for tcp and tls;
	// empty means octet_counting. It must be empty with udp.
	Framing string `yaml:"framing"`

	// Format is the message layout: FormatRFC5424 (default) or
	// FormatRFC3164 (BSD syslog).
	Format string `yaml:"format"`

	// Facility is a facility name (kern, user, mail, daemon, auth, syslog,
	// lpr, news, uucp, cron, authpriv, ftp, ntp, security, console,
	// solaris-cron, local0 … local7) or its number 0-23. Default local4.
	Facility string `yaml:"facility"`

	// Severity, if set, is the severity of every message: a name
	// (emerg, alert, crit, err, warning, notice, info, debug, or the
	// long forms emergency, critical, error, warn, informational) or
	// 0-7. Empty (default) maps each event's severity: see severity.go.
	Severity string `yaml:"severity"`

	// Hostname is the HOSTNAME field. Default: os.Hostname().
	Hostname string `yaml:"hostname"`

	// AppName is the APP-NAME field (RFC 5424, at most 48 characters) or
	// the TAG (RFC 3164, at most 32). Default alertrelay.
	AppName string `yaml:"app_name"`

	// MsgID, if set, is the MSGID field of every RFC 5424 message (at
	// most 32 characters). Empty (default): the event's event.dataset.
	MsgID string `yaml:"msg_id"`

	// SDID is the SD-ID of the structured-data element carrying eventId,
	// dataset and provider in RFC 5424 messages, name@enterprise-number.
	// Default DefaultSDID; set it to "" to send NILVALUE instead.
	SDID string `yaml:"sd_id"`

	// Body is the MSG part: BodyCEF (default), BodyJSON or BodyOriginal.
	Body string `yaml:"body"`

	// MaxMessageBytes is the largest message, header included (framing
	// excluded); longer ones are truncated, at a UTF-8 character
	// boundary, and counted. 0 (default) means 2048 for udp and 8192 for
	// tcp and tls. Otherwise at least MinMaxMessageBytes.
	MaxMessageBytes int `yaml:"max_message_bytes"`

	// Timeout bounds dialling (TLS handshake included) and writing one
	// batch, acknowledgement wait included. Default 10s.
	Timeout time.Duration `yaml:"timeout"`

	// TLS configures network tls: see tlsclient.Config.
	TLS *tlsclient.Config `yaml:"tls"`
}

// SetDefaults sets the fields that have a fixed default. Framing,
// Hostname and MaxMessageBytes depend on other settings or the host and
// are resolved by New; Severity and MsgID mean "per event" when empty.
// SDID "" is meaningful (no structured data), so call SetDefaults on a
// zero Config before the YAML is decoded into it.
func (c *Config) SetDefaults() {
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.Format == "" {
		c.Format = DefaultFormat
	}
	if c.Facility == "" {
		c.Facility = DefaultFacility
	}
	if c.AppName == "" {
		c.AppName = DefaultAppName
	}
	if c.SDID == "" {
		c.SDID = DefaultSDID
	}
	if c.Body == "" {
		c.Body = DefaultBody
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate returns every problem in c as a *config.FieldError keyed by the
// YAML path of the setting. It does not read the TLS files (New does).
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf(field, format, args...))
	}

	if c.Address == "" {
		add("address", "is required")
	} else if host, port, err := net.SplitHostPort(c.Address); err != nil {
		add("address", "want host:port: %v", err)
	} else {
		if host == "" {
			add("address", "has no host")
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			add("address", "want a port number 1-65535, got %q", port)
		}
	}

	switch c.Network {
	case NetworkTCP, NetworkTLS:
		switch c.Framing {
		case "", FramingOctetCounting, FramingLF:
		default:
			add("framing", "want %s or %s, got %q", FramingOctetCounting, FramingLF, c.Framing)
		}
	case NetworkUDP:
		if c.Framing != "" {
			add("framing", "is not used with network udp (one message per datagram)")
		}
	default:
		add("network", "want tcp, tls or udp, got %q", c.Network)
	}

	if c.Format != FormatRFC5424 && c.Format != FormatRFC3164 {
		add("format", "want %s or %s, got %q", FormatRFC5424, FormatRFC3164, c.Format)
	}
	if _, ok := ParseFacility(c.Facility); !ok {
		add("facility", "want a facility name (local0-local7, user, daemon, auth...) or 0-23, got %q", c.Facility)
	}
	if c.Severity != "" {
		if _, ok := ParseSeverity(c.Severity); !ok {
			add("severity", "want empty (per event), a severity name (emerg, alert, crit, err, warning, notice, info, debug) or 0-7, got %q", c.Severity)
		}
	}
	if c.Hostname != "" {
		if msg := checkField(c.Hostname, 255); msg != "" {
			add("hostname", "%s", msg)
		}
	}
	appMax := 48
	if c.Format == FormatRFC3164 {
		appMax = 32
	}
	if c.AppName == "" {
		add("app_name", "is required")
	} else if msg := checkField(c.AppName, appMax); msg != "" {
		add("app_name", "%s", msg)
	} else if c.Format == FormatRFC3164 && strings.ContainsAny(c.AppName, ":[]") {
		add("app_name", "must not contain ':', '[' or ']' with rfc3164 (they end the TAG)")
	}
	if c.MsgID != "" {
		if msg := checkField(c.MsgID, 32); msg != "" {
			add("msg_id", "%s", msg)
		}
	}
	if c.SDID != "" {
		switch {
		case len(c.SDID) > 32:
			add("sd_id", "is longer than 32 characters")
		case strings.ContainsAny(c.SDID, "= ]\""):
			add("sd_id", "must not contain '=', space, ']' or '\"'")
		case checkField(c.SDID, 32) != "":
			add("sd_id", "must be printable ASCII")
		case !strings.Contains(c.SDID, "@") || strings.HasPrefix(c.SDID, "@") || strings.HasSuffix(c.SDID, "@"):
			add("sd_id", "want name@enterprise-number (names without @ are reserved to IANA), got %q", c.SDID)
		}
	}
	switch c.Body {
	case BodyCEF, BodyJSON, BodyOriginal:
	default:
		add("body", "want %s, %s or %s, got %q", BodyCEF, BodyJSON, BodyOriginal, c.Body)
	}
	if m := c.MaxMessageBytes; m != 0 {
		limit := MaxStreamMessageBytes
		if c.Network == NetworkUDP {
			limit = MaxUDPMessageBytes
		}
		if m < MinMaxMessageBytes || m > limit {
			add("max_message_bytes", "want 0 (default for the network) or %d-%d, got %d", MinMaxMessageBytes, limit, m)
		}
	}
	if c.Timeout <= 0 {
		add("timeout", "want more than 0, got %s", c.Timeout)
	}
	if t := c.TLS; t != nil {
		if c.Network != NetworkTLS {
			add("tls", "is only used with network tls")
		}
		errs = append(errs, t.Validate()...)
	}
	return errs
}

// checkField returns why s cannot be a header field of at most max
// characters (RFC 5424 PRINTUSASCII: bytes 33-126), or "".
func checkField(s string, max int) string {
	if len(s) > max {
		return "is longer than " + strconv.Itoa(max) + " characters"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return "must be printable ASCII without spaces"
		}
	}
	if s == "-" {
		return `must not be "-" (the NILVALUE)`
	}
	return ""
}

// facilities are the RFC 5424 §6.2.1 facility codes by their usual names.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// ParseFacility returns the code of a facility name or number.
func ParseFacility(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 23
	}
	n, ok := facilities[strings.ToLower(s)]
	return n, ok
}

// Severity codes (RFC 5424 §6.2.1).
const (
	SevEmergency = iota
	SevAlert
	SevCritical
	SevError
	SevWarning
	SevNotice
	SevInfo
	SevDebug
)

var severities = map[string]int{
	"emerg": SevEmergency, "emergency": SevEmergency, "panic": SevEmergency,
	"alert": SevAlert,
	"crit":  SevCritical, "critical": SevCritical,
	"err": SevError, "error": SevError,
	"warning": SevWarning, "warn": SevWarning,
	"notice": SevNotice,
	"info":   SevInfo, "informational": SevInfo,
	"debug": SevDebug,
}

// ParseSeverity returns the code of a severity name or number.
func ParseSeverity(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 7
	}
	n, ok := severities[strings.ToLower(s)]
	return n, ok
}
