// Package event defines the in-flight representation of one vendor event and
// the batch of encoded documents that travels from sources to sinks.
//
// A parser fills an Event whose fields are sub-slices of the raw line (or of
// the event's scratch buffer when a value had to be unescaped), so parsing
// allocates nothing once an Event is warm. The normaliser then encodes the
// Event once into canonical JSON and appends it to a Batch; from there on only
// bytes move.
package event

import (
	"time"
)

// Kind says what an event is. Its String form is the event.dataset value.
type Kind uint8

// The kinds alertrelay knows.
const (
	KindUnknown Kind = iota
	KindCynetAlert
	KindDetection
	KindServiceAlert
	KindLookupFinished
)

var kindNames = [...]string{
	KindUnknown:        "unknown",
	KindCynetAlert:     "cynet.alert",
	KindDetection:      "cybertrace.detection",
	KindServiceAlert:   "cybertrace.service_alert",
	KindLookupFinished: "cybertrace.lookup_finished",
}

// String returns the dataset name, e.g. "cybertrace.detection".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Group says which part of a vendor line a field came from.
type Group uint8

// Field groups.
const (
	// GroupTemplate: a field of the detection template (category=,
	// matchedIndicator=, url=, ...) or of a service alert (alert=).
	GroupTemplate Group = iota
	// GroupContext: a field of the matched feed record (%RecordContext%).
	GroupContext
	// GroupHeader: a CEF header field (version, deviceVendor, ...).
	GroupHeader
	// GroupExtension: a CEF extension pair, unescaped.
	GroupExtension
)

// Field is one key/value pair in the order the vendor sent it. Key and Value
// alias the event's Raw line or its scratch buffer; they are valid until the
// event is reset.
type Field struct {
	Key   []byte
	Value []byte
	Group Group
}

// Event is one parsed vendor event. The zero value is ready to use; Reset
// makes it reusable without giving back its memory.
type Event struct {
	Source   string    // name of the configured source that received it
	Kind     Kind      // detection, service alert, ...
	Format   Format    // wire format the line was parsed as
	Time     time.Time // event time from the line; zero when it has none
	Received time.Time // when alertrelay read it
	Prefix   []byte    // leading token before the first key (the %Date% slot), nil when absent
	Fields   []Field   // vendor fields, vendor names and order, duplicates kept
	Raw      []byte    // the line as received (CR stripped, UTF-8 repaired)

	scratch []byte
}

// Format is the wire format a line was parsed from.
type Format uint8

// Wire formats.
const (
	FormatKV Format = iota
	FormatCEF
	FormatTemplate
	FormatJSON
)

var formatNames = [...]string{FormatKV: "kv", FormatCEF: "cef", FormatTemplate: "template", FormatJSON: "json"}

// String returns the format's config name.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "unknown"
}

// Reset clears the event for reuse, keeping its allocated memory.
func (e *Event) Reset() {
	fields := e.Fields[:0]
	scratch := e.scratch[:0]
	*e = Event{Fields: fields, scratch: scratch}
}

// Add appends a field.
func (e *Event) Add(g Group, key, value []byte) {
	n := len(e.Fields)
	if n == cap(e.Fields) {
		e.Fields = append(e.Fields, Field{})
	} else {
		e.Fields = e.Fields[:n+1]
	}
	// Member-wise stores: a composite literal here costs a store-forwarding
	// stall that showed up as a third of parse time.
	f := &e.Fields[n]
	f.Key, f.Value, f.Group = key, value, g
}

// Scratch returns a buffer of length n owned by the event, for values that
// must be rewritten (unescaped) rather than sliced out of Raw. The buffer
// stays valid until Reset. Parsers size it once per line: calling Scratch a
// second time for the same event invalidates earlier scratch slices only if
// it has to grow, so callers request the whole line length up front.
func (e *Event) Scratch(n int) []byte {
	if cap(e.scratch) < n {
		e.scratch = make([]byte, n)
	}
	e.scratch = e.scratch[:n]
	return e.scratch
}

// Get returns the value of the first field with the given group and key.
func (e *Event) Get(g Group, key string) ([]byte, bool) {
	for i := range e.Fields {
		f := &e.Fields[i]
		if f.Group == g && string(f.Key) == key {
			return f.Value, true
		}
	}
	return nil, false
}
