package syslog

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// logBuf collects the sink's log output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixedNow is the clock of every test sink.
var fixedNow = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// testConfig returns a Config for addr with defaults, a fixed hostname and
// a short timeout.
func testConfig(network, addr string) Config {
	var c Config
	c.SetDefaults()
	c.Network = network
	c.Address = addr
	c.Hostname = "relay01"
	c.Timeout = 5 * time.Second
	return c
}

func newSink(t testing.TB, cfg Config) (*Sink, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	deps := pipeline.Deps{
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return fixedNow },
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, logs
}

// goldenDocs returns the documents of the normaliser's golden files:
// CyberTrace detections, service alerts and lookup-finished events, then
// Cynet alerts.
func goldenDocs(t testing.TB) [][]byte {
	t.Helper()
	var docs [][]byte
	for _, name := range []string{"cybertrace_kv.golden.ndjson", "cynet_alerts.golden.ndjson"} {
		f, err := os.Open(filepath.Join("..", "..", "normalize", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				docs = append(docs, bytes.Clone(line))
			}
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(docs) < 20 {
		t.Fatalf("only %d golden documents", len(docs))
	}
	return docs
}

func batchOf(docs ...[]byte) *event.Batch {
	b := event.NewBatch(len(docs), 1024)
	for _, d := range docs {
		b.Append(d)
	}
	return b
}

// docID returns a document's event.id.
func docID(t testing.TB, doc []byte) string {
	t.Helper()
	m, ok := event.ReadMeta(doc)
	if !ok || m.ID == nil {
		t.Fatalf("document without event.id: %s", doc)
	}
	return string(event.Unquote(nil, m.ID))
}

// syntheticDoc is a small CyberTrace-like detection with event.id id.
func syntheticDoc(id string) []byte {
	return []byte(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"` + id +
		`","kind":"alert","dataset":"cybertrace.detection","provider":"ct"},"observer":{"vendor":"Kaspersky","product":"CyberTrace"},` +
		`"threat":{"feed":{"name":"KL_Malicious_URL"},"indicator":{"name":"fakess123.nu/*","confidence":"High"}},` +
		`"url":{"full":"http://fakess123.nu/a?b=c"},"source":{"ip":"10.0.0.5"},"cybertrace":{"category":"KL_Malicious_URL","confidence":"100"}}`)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pipelineDepsFixed() pipeline.Deps {
	return pipeline.Deps{Now: func() time.Time { return fixedNow }}
}
