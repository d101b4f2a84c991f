package splunkhec

import (
	"strings"
	"testing"

	hec "github.com/alertrelay/alertrelay/internal/emulator/splunkhec"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
)

func TestTLSWithCAFile(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, hec.New(hec.Options{Token: token}), p.ServerTLS(false))

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
	if err := without.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("Check without ca_file: %v", err)
	}
	if srv.Count() != 3 {
		t.Errorf("received %d events, want 3", srv.Count())
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, hec.New(hec.Options{Token: token}), p.ServerTLS(false))
	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{InsecureSkipVerify: true}
	s, logs := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("insecure", 1, 100)...)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "TLS CERTIFICATE VERIFICATION IS DISABLED") {
		t.Errorf("no warning in the logs:\n%s", logs.String())
	}
}

func TestMutualTLS(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, hec.New(hec.Options{Token: token}), p.ServerTLS(true))

	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}
	s, _ := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("mtls", 2, 100)...)); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}

	noCert := defaults(srv.URL())
	noCert.TLS = &TLSConfig{CAFile: p.CAFile}
	s2, _ := newSink(t, noCert)
	if err := s2.Write(sinktest.Context(t), sinktest.Batch(docs("mtls", 2, 100)...)); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("without a client certificate: %v, want a retryable error", err)
	}
	if srv.Count() != 2 {
		t.Errorf("received %d events, want 2", srv.Count())
	}

	bad := defaults(srv.URL())
	bad.TLS = &TLSConfig{CAFile: p.CAFile + ".missing"}
	if _, err := New(bad, pipeline.Deps{}); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}
