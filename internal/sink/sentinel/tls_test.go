package sentinel

import (
	"path/filepath"
	"strings"
	"testing"

	emu "github.com/alertrelay/alertrelay/internal/emulator/sentinel"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

func TestTLSWithCAFile(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, emu.New(emu.Options{}), p.ServerTLS(false))

	cfg := cfgFor(srv)
	cfg.TLS = &tlsclient.Config{CAFile: p.CAFile}
	s, _ := newSink(t, cfg)
	if err := s.Check(sinktest.Context(t)); err != nil {
		t.Fatalf("Check with ca_file: %v", err)
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("tls", 3, 100)...)); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}

	// Without the CA the token request fails verification: retryable.
	without, _ := newSink(t, cfgFor(srv))
	err := without.Write(sinktest.Context(t), sinktest.Batch(docs("tls", 3, 100)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("without ca_file: %v, want a retryable x509 error", err)
	}
	if srv.Count() != 3 || srv.TokenRequests() != 1 {
		t.Errorf("received %d rows and %d token requests, want 3 and 1", srv.Count(), srv.TokenRequests())
	}
}

func TestMutualTLS(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, emu.New(emu.Options{}), p.ServerTLS(true))

	cfg := cfgFor(srv)
	cfg.TLS = &tlsclient.Config{CAFile: p.CAFile}
	noCert, _ := newSink(t, cfg)
	if err := noCert.Write(sinktest.Context(t), sinktest.Batch(docs("m", 2, 100)...)); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("without a client certificate: %v, want a retryable error", err)
	}

	cfg.TLS = &tlsclient.Config{CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}
	s, _ := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("m", 2, 100)...)); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if srv.Count() != 2 {
		t.Errorf("received %d rows, want 2", srv.Count())
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, emu.New(emu.Options{}), p.ServerTLS(false))
	cfg := cfgFor(srv)
	cfg.TLS = &tlsclient.Config{InsecureSkipVerify: true}
	s, logs := newSink(t, cfg)
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "insecure_skip_verify") {
		t.Errorf("want one WARN naming insecure_skip_verify, got:\n%s", out)
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("i", 2, 100)...)); err != nil {
		t.Fatal(err)
	}
	_, quiet := newSink(t, cfgFor(srv))
	if strings.Contains(quiet.String(), "level=WARN") {
		t.Errorf("WARN without insecure_skip_verify:\n%s", quiet)
	}
}

func TestTLSFileErrors(t *testing.T) {
	p := testcert.NewT(t)
	for name, tc := range map[string]*tlsclient.Config{
		"missing ca":   {CAFile: filepath.Join(t.TempDir(), "nope.pem")},
		"ca not pem":   {CAFile: p.ClientKeyFile},
		"missing cert": {CertFile: "/nonexistent/c.pem", KeyFile: p.ClientKeyFile},
		"key mismatch": {CertFile: p.CAFile, KeyFile: p.ClientKeyFile},
	} {
		cfg := validConfig()
		cfg.TLS = tc
		if s, err := New(cfg, pipeline.Deps{}); err == nil || s != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, s, err)
		}
	}
}
