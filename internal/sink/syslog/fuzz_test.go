package syslog

import (
	"testing"

	syslogemu "github.com/alertrelay/alertrelay/internal/emulator/syslog"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/format/cef"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// FuzzMessage encodes arbitrary documents and checks that every message
// parses back as RFC 5424 with the document's event.id, and that its CEF
// body parses with the project's CEF parser.
func FuzzMessage(f *testing.F) {
	for _, d := range sinktest.Golden[[]byte](f) {
		f.Add(d)
	}
	f.Add([]byte(`{"event":{"id":"a\"]\\","dataset":"x y\u0000"},"message":"|\\=\n"}`))
	enc := testEncoder(Config{})
	enc.max = 1 << 20
	f.Fuzz(func(t *testing.T, doc []byte) {
		msg, _, err := enc.appendMessage(nil, doc)
		if err != nil {
			return
		}
		m, err := syslogemu.Parse(msg)
		if err != nil {
			t.Fatalf("%v\n%q", err, msg)
		}
		meta, _ := event.ReadMeta(doc)
		want := string(event.Unquote(nil, meta.ID))
		if got, _ := m.Param(DefaultSDID, "eventId"); meta.ID != nil && got != want {
			t.Fatalf("eventId %q, want %q", got, want)
		}
		var ev event.Event
		if err := cef.Parse(m.Msg, &ev); err != nil {
			t.Fatalf("CEF body: %v\n%q", err, m.Msg)
		}
	})
}
