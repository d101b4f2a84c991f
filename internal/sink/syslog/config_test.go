package syslog

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   []string // field paths in error
	}{
		{"defaults", func(c *Config) {}, nil},
		{"udp", func(c *Config) { c.Network = NetworkUDP; c.MaxMessageBytes = 1400 }, nil},
		{"tls", func(c *Config) { c.Network = NetworkTLS; c.TLS = &tlsclient.Config{CAFile: "ca.pem"} }, nil},
		{"everything set", func(c *Config) {
			c.Framing, c.Format, c.Facility, c.Severity = FramingLF, FormatRFC3164, "daemon", "warning"
			c.Hostname, c.AppName, c.MsgID, c.SDID, c.Body = "h.example", "relay", "ALERT", "", BodyOriginal
		}, nil},
		{"numeric facility and severity", func(c *Config) { c.Facility, c.Severity = "23", "0" }, nil},
		{"no address", func(c *Config) { c.Address = "" }, []string{"address"}},
		{"address without port", func(c *Config) { c.Address = "siem.example" }, []string{"address"}},
		{"address bad port", func(c *Config) { c.Address = "siem.example:99999" }, []string{"address"}},
		{"address no host", func(c *Config) { c.Address = ":514" }, []string{"address"}},
		{"bad network", func(c *Config) { c.Network = "relp" }, []string{"network"}},
		{"bad framing", func(c *Config) { c.Framing = "nul" }, []string{"framing"}},
		{"framing with udp", func(c *Config) { c.Network, c.Framing = NetworkUDP, FramingLF }, []string{"framing"}},
		{"bad format", func(c *Config) { c.Format = "rfc5425" }, []string{"format"}},
		{"bad facility", func(c *Config) { c.Facility = "local8" }, []string{"facility"}},
		{"facility out of range", func(c *Config) { c.Facility = "24" }, []string{"facility"}},
		{"bad severity", func(c *Config) { c.Severity = "8" }, []string{"severity"}},
		{"hostname with space", func(c *Config) { c.Hostname = "a b" }, []string{"hostname"}},
		{"app_name too long for 5424", func(c *Config) { c.AppName = string(make([]byte, 49)) }, []string{"app_name"}},
		{"app_name too long for 3164", func(c *Config) {
			c.Format, c.AppName = FormatRFC3164, "abcdefghijklmnopqrstuvwxyz0123456789"
		}, []string{"app_name"}},
		{"app_name with colon for 3164", func(c *Config) { c.Format, c.AppName = FormatRFC3164, "a:b" }, []string{"app_name"}},
		{"msg_id too long", func(c *Config) { c.MsgID = "abcdefghijklmnopqrstuvwxyz0123456789" }, []string{"msg_id"}},
		{"msg_id nil", func(c *Config) { c.MsgID = "-" }, []string{"msg_id"}},
		{"sd_id without @", func(c *Config) { c.SDID = "alertrelay" }, []string{"sd_id"}},
		{"sd_id with space", func(c *Config) { c.SDID = "a b@1" }, []string{"sd_id"}},
		{"bad body", func(c *Config) { c.Body = "leef" }, []string{"body"}},
		{"max_message_bytes too small", func(c *Config) { c.MaxMessageBytes = 100 }, []string{"max_message_bytes"}},
		{"max_message_bytes too big for udp", func(c *Config) { c.Network, c.MaxMessageBytes = NetworkUDP, 70000 }, []string{"max_message_bytes"}},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"timeout"}},
		{"tls with tcp", func(c *Config) { c.TLS = &tlsclient.Config{} }, []string{"tls"}},
		{"tls half a key pair", func(c *Config) {
			c.Network, c.TLS = NetworkTLS, &tlsclient.Config{CertFile: "c.pem"}
		}, []string{"tls.key_file"}},
		{"several", func(c *Config) { c.Address, c.Body, c.Timeout = "", "x", 0 }, []string{"address", "body", "timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			c.Address = "siem.example:514"
			tc.modify(&c)
			var got []string
			for _, err := range c.Validate() {
				var fe *config.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("not a FieldError: %v", err)
				}
				got = append(got, fe.Field)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s\nerrors: %v", diff, c.Validate())
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{Network: "tcp", Format: "rfc5424", Facility: "local4", AppName: "alertrelay",
		SDID: "alertrelay@32473", Body: "cef", Timeout: 10 * time.Second}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestResolvedDefaults(t *testing.T) {
	for _, tc := range []struct {
		network string
		max     int
		octet   bool
	}{{NetworkTCP, 8192, true}, {NetworkTLS, 8192, true}, {NetworkUDP, 2048, false}} {
		var c Config
		c.SetDefaults()
		c.Network, c.Address = tc.network, "127.0.0.1:514"
		s, err := New(c, pipelineDepsFixed())
		if err != nil {
			t.Fatal(err)
		}
		if s.enc.max != tc.max || s.octet != tc.octet || s.enc.hostname == "" || s.enc.severity != -1 {
			t.Errorf("%s: max %d octet %v hostname %q severity %d", tc.network, s.enc.max, s.octet, s.enc.hostname, s.enc.severity)
		}
	}
}
