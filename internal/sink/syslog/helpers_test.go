package syslog

import (
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

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

func newSink(t testing.TB, cfg Config) (*Sink, *sinktest.LogBuffer) {
	t.Helper()
	return sinktest.NewSink(t, func() time.Time { return fixedNow }, func(d pipeline.Deps) (*Sink, error) { return New(cfg, d) })
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

func pipelineDepsFixed() pipeline.Deps {
	return pipeline.Deps{Now: func() time.Time { return fixedNow }}
}
