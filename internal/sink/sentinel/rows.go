package sentinel

import (
	"errors"
	"fmt"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// Row layout. Every document becomes one JSON object of the DCR's input
// stream (see docs/sinks/sentinel.md and sentinel-dcr.json):
//
//	{"TimeGenerated":"<@timestamp>","EventId":"<event.id>","Dataset":"<event.dataset>",
//	 "SourceName":"<event.provider>","Kind":"<event.kind>","Event":<the document>}
//
// The string values are copied as they are escaped in the document, so a
// row is built by appending bytes, without decoding. A member whose field
// is absent from the document (or not a string) is left out, except
// TimeGenerated, which the table requires: without @timestamp it is the
// time the row was built.
const (
	keyTime    = `{"TimeGenerated":"`
	keyID      = `","EventId":"`
	keyDataset = `","Dataset":"`
	keySource  = `","SourceName":"`
	keyKind    = `","Kind":"`
	keyEvent   = `","Event":`
)

// timeLayout is @timestamp's format: RFC 3339, UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// errMalformed is the cause given for a document that is not a JSON object.
var errMalformed = errors.New("document is not a JSON object; it cannot be sent as a row")

// appendRow appends the row of doc to dst. ok is false when doc is not a
// well-formed JSON object (nothing is appended then).
func appendRow(dst, doc []byte, now time.Time) ([]byte, bool) {
	m, ok := event.ReadMeta(doc)
	if !ok {
		return dst, false
	}
	dst = append(dst, keyTime...)
	if m.Timestamp != nil {
		dst = append(dst, m.Timestamp...)
	} else {
		dst = now.UTC().AppendFormat(dst, timeLayout)
	}
	dst = appendMember(dst, keyID, m.ID)
	dst = appendMember(dst, keyDataset, m.Dataset)
	dst = appendMember(dst, keySource, m.Provider)
	dst = appendMember(dst, keyKind, m.Kind)
	dst = append(dst, keyEvent...)
	dst = append(dst, doc...)
	return append(dst, '}'), true
}

// appendMember appends key (which closes the previous string and opens
// this one) and the string body v, unless v is nil.
func appendMember(dst []byte, key string, v []byte) []byte {
	if v == nil {
		return dst
	}
	return append(append(dst, key...), v...)
}

// row is one encoded row: document doc of the batch, at s.buf[start:end].
// The byte before start and the byte at end are separators: ',' normally,
// '[' and ']' while the row opens or closes a request body.
type row struct{ doc, start, end int }

// span is the rows [lo, hi) of one request.
type span struct{ lo, hi int }

// encode builds the rows of b into s.buf and s.rows, and returns the
// documents that cannot be sent at all (not a JSON object, or a row larger
// than the body limit) as permanent item errors.
func (s *Sink) encode(b *event.Batch) []pipeline.ItemError {
	var bad []pipeline.ItemError
	now := s.now()
	buf := s.buf[:0]
	rows := s.rows[:0]
	buf = append(buf, ',')
	for i, n := 0, b.Len(); i < n; i++ {
		start := len(buf)
		var ok bool
		buf, ok = appendRow(buf, b.Doc(i), now)
		if !ok {
			bad = append(bad, pipeline.ItemError{Index: i, Err: s.wrap(errMalformed), Permanent: true})
			continue
		}
		if size := len(buf) - start + 2; size > s.maxBody {
			buf = buf[:start]
			bad = append(bad, pipeline.ItemError{Index: i, Permanent: true, Err: s.wrap(fmt.Errorf(
				"event too large: its row is %d bytes and a request may carry at most max_body_bytes=%d", size, s.maxBody))})
			continue
		}
		rows = append(rows, row{doc: i, start: start, end: len(buf)})
		buf = append(buf, ',')
	}
	s.buf, s.rows = buf, rows
	return bad
}

// plan groups s.rows, in order, into spans whose bodies fit in maxBody.
func (s *Sink) plan() []span {
	spans := s.spans[:0]
	if len(s.rows) == 0 {
		s.spans = spans
		return spans
	}
	cur := span{}
	for i, r := range s.rows {
		if i > cur.lo && r.end+1-(s.rows[cur.lo].start-1) > s.maxBody {
			cur.hi = i
			spans = append(spans, cur)
			cur = span{lo: i}
		}
	}
	cur.hi = len(s.rows)
	spans = append(spans, cur)
	s.spans = spans
	return spans
}

// body returns the JSON array of the rows of sp: a slice of s.buf with its
// separators set to '[' and ']'. Call restore once the request is done.
func (s *Sink) body(sp span) []byte {
	first, last := s.rows[sp.lo].start-1, s.rows[sp.hi-1].end
	s.buf[first], s.buf[last] = '[', ']'
	return s.buf[first : last+1]
}

// restore puts back the separators body changed.
func (s *Sink) restore(sp span) {
	s.buf[s.rows[sp.lo].start-1], s.buf[s.rows[sp.hi-1].end] = ',', ','
}

// itemsFor appends an item error for every document of the rows [lo, hi).
func (s *Sink) itemsFor(items []pipeline.ItemError, lo, hi int, err error, permanent bool) []pipeline.ItemError {
	for _, r := range s.rows[lo:hi] {
		items = append(items, pipeline.ItemError{Index: r.doc, Err: err, Permanent: permanent})
	}
	return items
}
