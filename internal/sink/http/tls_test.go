package http

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
)

func TestTLSWithCAFile(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, httpsink.New(httpsink.Options{}), p.ServerTLS(false))

	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.CAFile}
	s, _ := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("tls", 3, 100)...)); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	if err := s.Check(sinktest.Context(t)); err != nil {
		t.Fatalf("Check with ca_file: %v", err)
	}

	without, _ := newSink(t, defaults(srv.URL()))
	err := without.Write(sinktest.Context(t), sinktest.Batch(docs("tls", 3, 100)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("without ca_file: %v, want a retryable x509 error", err)
	}
	if srv.Count() != 3 {
		t.Errorf("received %d documents, want 3", srv.Count())
	}
}

func TestTLSServerNameMismatch(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, httpsink.New(httpsink.Options{}), p.ServerTLS(false))
	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.CAFile, ServerName: "siem.example.com"}
	s, _ := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("sn", 1, 100)...)); err == nil || !strings.Contains(err.Error(), "siem.example.com") {
		t.Fatalf("err %v, want a certificate name mismatch", err)
	}
}

func TestMutualTLS(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, httpsink.New(httpsink.Options{}), p.ServerTLS(true))

	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.CAFile}
	noCert, _ := newSink(t, cfg)
	if err := noCert.Write(sinktest.Context(t), sinktest.Batch(docs("m", 2, 100)...)); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("without a client certificate: %v, want a retryable error", err)
	}

	cfg.TLS = &TLSConfig{CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}
	s, _ := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("m", 2, 100)...)); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if srv.Count() != 2 {
		t.Errorf("received %d documents, want 2", srv.Count())
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, httpsink.New(httpsink.Options{}), p.ServerTLS(false))
	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{InsecureSkipVerify: true}
	s, logs := newSink(t, cfg)
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "insecure_skip_verify") {
		t.Errorf("want one WARN naming insecure_skip_verify, got:\n%s", out)
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("i", 2, 100)...)); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 2 {
		t.Errorf("received %d documents, want 2", srv.Count())
	}

	_, quiet := newSink(t, defaults(srv.URL()))
	if strings.Contains(quiet.String(), "level=WARN") {
		t.Errorf("WARN without insecure_skip_verify:\n%s", quiet)
	}
}

func TestTLSFileErrors(t *testing.T) {
	p := testcert.NewT(t)
	for name, tc := range map[string]*TLSConfig{
		"missing ca":   {CAFile: filepath.Join(t.TempDir(), "nope.pem")},
		"ca not pem":   {CAFile: p.ClientKeyFile},
		"missing cert": {CertFile: "/nonexistent/c.pem", KeyFile: p.ClientKeyFile},
		"key mismatch": {CertFile: p.CAFile, KeyFile: p.ClientKeyFile},
	} {
		cfg := defaults("https://127.0.0.1:1")
		cfg.TLS = tc
		if s, err := New(cfg, pipeline.Deps{}); err == nil || s != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, s, err)
		}
	}
}
