package elasticsearch

import (
	"strings"
	"testing"

	es "github.com/alertrelay/alertrelay/internal/emulator/elasticsearch"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
)

func TestTLSWithCAFile(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, es.New(es.Options{}), p.ServerTLS(false))

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
	err := without.Write(sinktest.Context(t), sinktest.Batch(docs("tls2", 3, 100)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("without ca_file: %v, want a retryable x509 error", err)
	}
	if err := without.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("Check without ca_file: %v", err)
	}
	if srv.Count() != 3 {
		t.Errorf("stored %d, want 3", srv.Count())
	}
}

func TestMutualTLS(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, es.New(es.Options{}), p.ServerTLS(true))

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
		t.Errorf("stored %d, want 2", srv.Count())
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	p := testcert.NewT(t)
	srv := sinktest.StartTLS(t, es.New(es.Options{}), p.ServerTLS(false))
	cfg := defaults(srv.URL())
	cfg.TLS = &TLSConfig{InsecureSkipVerify: true}
	s, logs := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("i", 1, 100)...)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "TLS CERTIFICATE VERIFICATION IS DISABLED") {
		t.Errorf("no warning in %q", logs.String())
	}
}

func TestBadTLSFiles(t *testing.T) {
	cfg := defaults("https://127.0.0.1:9200")
	cfg.TLS = &TLSConfig{CAFile: "/nonexistent/ca.pem"}
	s, err := New(cfg, pipeline.Deps{})
	if err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Fatalf("err %v, want a tls.ca_file error", err)
	}
	if err := s.Close(sinktest.Context(t)); err != nil {
		t.Errorf("Close on the nil sink New returned: %v", err)
	}
}
