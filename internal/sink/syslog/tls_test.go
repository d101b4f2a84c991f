package syslog

import (
	"strings"
	"testing"
	"time"

	syslogemu "github.com/alertrelay/alertrelay/internal/emulator/syslog"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

func TestTLS(t *testing.T) {
	pki := testcert.NewT(t)
	for _, tc := range []struct {
		name          string
		requireClient bool
		tls           *tlsclient.Config
		wantErr       string // "" : delivered
	}{
		{"test CA", false, &tlsclient.Config{CAFile: pki.CAFile}, ""},
		{"system roots only", false, nil, "certificate"},
		{"insecure", false, &tlsclient.Config{InsecureSkipVerify: true}, ""},
		{"wrong server name", false, &tlsclient.Config{CAFile: pki.CAFile, ServerName: "other.example"}, "certificate"},
		{"mTLS", true, &tlsclient.Config{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, ""},
		{"mTLS without client certificate", true, &tlsclient.Config{CAFile: pki.CAFile}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := sinktest.StartTLS(t, syslogemu.New(syslogemu.Options{}), pki.ServerTLS(tc.requireClient))
			cfg := testConfig(NetworkTLS, emu.Addr())
			cfg.TLS = tc.tls
			s, logs := newSink(t, cfg)
			ctx := sinktest.Context(t)
			checkErr := s.Check(ctx)
			writeErr := s.Write(ctx, sinktest.Batch(syntheticDoc("t1")))
			if tc.wantErr == "" {
				if checkErr != nil || writeErr != nil {
					t.Fatalf("Check: %v; Write: %v", checkErr, writeErr)
				}
				if !emu.WaitCount(1, 5*time.Second) {
					t.Fatal("nothing received")
				}
				m := emu.Messages()[0]
				if m.Transport != "tls" || m.Framing != syslogemu.FramingOctetCounting || m.EventID != "t1" {
					t.Errorf("received %+v", m)
				}
			} else {
				for what, err := range map[string]error{"Check": checkErr, "Write": writeErr} {
					if err == nil {
						t.Fatalf("%s succeeded, want an error about %q", what, tc.wantErr)
					}
					if pipeline.IsPermanent(err) {
						t.Errorf("%s: permanent, want retryable: %v", what, err)
					}
					if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "TLS") && !strings.Contains(err.Error(), "tls") {
						t.Errorf("%s: %v, want it to mention TLS and %q", what, err, tc.wantErr)
					}
				}
				if emu.Count() != 0 {
					t.Errorf("the receiver recorded %d messages", emu.Count())
				}
			}
			warned := strings.Contains(logs.String(), "VERIFICATION IS DISABLED")
			if warned != (tc.tls != nil && tc.tls.InsecureSkipVerify) {
				t.Errorf("insecure warning logged: %v", warned)
			}
		})
	}
}

func TestTLSBadFiles(t *testing.T) {
	cfg := testConfig(NetworkTLS, "127.0.0.1:6514")
	cfg.TLS = &tlsclient.Config{CAFile: "/nonexistent/ca.pem"}
	if _, err := New(cfg, pipeline.Deps{}); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Errorf("got %v, want an error naming tls.ca_file", err)
	}
}
