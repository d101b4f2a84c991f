package normalize

import (
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// jw appends a JSON object to a byte slice without reflection or
// allocation. It tracks, per nesting level, whether a comma is due.
type jw struct {
	b     []byte
	depth int
	comma uint64 // bit d set: level d already has a member
}

func (w *jw) sep() {
	bit := uint64(1) << w.depth
	if w.comma&bit != 0 {
		w.b = append(w.b, ',')
	}
	w.comma |= bit
}

func (w *jw) key(k string) {
	w.sep()
	w.b = append(w.b, '"')
	w.b = append(w.b, k...) // keys written through key() are constants, no escaping needed
	w.b = append(w.b, '"', ':')
}

// begin opens the top-level object.
func (w *jw) begin() { w.b = append(w.b, '{'); w.depth, w.comma = 0, 0 }

// open starts a nested object member.
func (w *jw) open(k string) {
	w.key(k)
	w.b = append(w.b, '{')
	w.depth++
	w.comma &^= 1 << w.depth
}

// openDyn starts a nested object whose key comes from input.
func (w *jw) openDyn(k []byte) {
	w.sep()
	w.b = event.AppendJSONString(w.b, k)
	w.b = append(w.b, ':', '{')
	w.depth++
	w.comma &^= 1 << w.depth
}

func (w *jw) close() {
	w.b = append(w.b, '}')
	if w.depth > 0 {
		w.depth--
	}
}

func (w *jw) str(k string, v []byte) {
	w.key(k)
	w.b = event.AppendJSONString(w.b, v)
}

// strOpt writes the member only when v is not empty.
func (w *jw) strOpt(k string, v []byte) {
	if len(v) > 0 {
		w.str(k, v)
	}
}

func (w *jw) lit(k, v string) {
	w.key(k)
	w.b = event.AppendJSONStr(w.b, v)
}

// raw writes a member whose value is already JSON.
func (w *jw) raw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
}

func (w *jw) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// dynStr writes a member whose key comes from input.
func (w *jw) dynStr(k, v []byte) {
	w.sep()
	w.b = event.AppendJSONString(w.b, k)
	w.b = append(w.b, ':')
	w.b = event.AppendJSONString(w.b, v)
}
