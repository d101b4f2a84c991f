package cybertrace

import (
	"bytes"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/format/cef"
	"github.com/alertrelay/alertrelay/internal/format/kv"
)

// parseFunc fills an event from one line; see kv.Parser.Parse.
type parseFunc func(line []byte, ev *event.Event) error

// cefMarkerWindow is how far into a line auto mode looks for "CEF:" (a
// syslog header may stand before it).
const cefMarkerWindow = 128

// autoParser parses CEF lines as CEF and everything else as key=value.
func autoParser(p *kv.Parser) parseFunc {
	marker := []byte("CEF:")
	return func(line []byte, ev *event.Event) error {
		if bytes.Contains(line[:min(len(line), cefMarkerWindow)], marker) {
			return parseCEF(line, ev)
		}
		return p.Parse(line, ev)
	}
}

// parseCEF parses a CyberTrace ArcSight line and classifies it: the alert
// channel puts the alert name in reason (spec B9).
func parseCEF(line []byte, ev *event.Event) error {
	if err := cef.Parse(line, ev); err != nil {
		return err
	}
	ev.Kind = event.KindDetection
	if reason, ok := ev.Get(event.GroupExtension, "reason"); ok {
		switch {
		case bytes.HasPrefix(reason, []byte("KL_ALERT_")):
			ev.Kind = event.KindServiceAlert
		case string(reason) == "LookupFinished":
			ev.Kind = event.KindLookupFinished
		}
	}
	return nil
}
