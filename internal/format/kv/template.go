package kv

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/alertrelay/alertrelay/internal/event"
)

// placeholderKeys names the fields of placeholders that have no "key=" in
// front of them in a template (tab- or pipe-separated layouts).
var placeholderKeys = map[string]string{
	"Category":         "category",
	"MatchedIndicator": "matchedIndicator",
	"RE_URL":           "url",
	"SRC_IP":           "src",
	"RE_IP":            "ip",
	"RE_MD5":           "md5",
	"RE_SHA1":          "sha1",
	"RE_SHA256":        "sha256",
	"RE_USERNAME":      "usrName",
	"Confidence":       "confidence",
	"SourceId":         "sourceId",
	"ActionableFields": "actionableFields",
	"Alert":            "alert",
}

// Template parses lines laid out by an operator's CyberTrace EventFormat,
// with %RecordContext% expanded by RecordFieldContextFormat. Service alert
// and lookup-finished lines (alert=...) do not follow EventFormat and are
// parsed by the default Parser. A Template is immutable and safe for
// concurrent use.
type Template struct {
	lead  []byte    // literal before the first placeholder
	slots []slot    // each placeholder and the literal after it
	item  *itemForm // RecordFieldContextFormat, nil if unused
	alert *Parser
}

type slot struct {
	name    string // placeholder name without %
	key     []byte // output key; nil for the date slot
	context bool   // %RecordContext%
	lit     []byte // literal that follows the value
}

// itemForm is "A%ParamName%B%ParamValue%C".
type itemForm struct {
	a, b, c []byte
	sep     []byte // c+a: what stands between two items
}

// NewTemplate compiles an EventFormat and RecordFieldContextFormat (may be
// empty when EventFormat has no %RecordContext%). It reports layouts that
// cannot be parsed unambiguously, such as two placeholders with nothing
// between them.
func NewTemplate(eventFormat, contextFormat string) (*Template, error) {
	alert, _ := NewParser(nil)
	t := &Template{alert: alert}
	lits, names, err := splitFormat(eventFormat)
	if err != nil {
		return nil, fmt.Errorf("event format: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("event format: no %%placeholders%%")
	}
	t.lead = []byte(lits[0])
	for i, name := range names {
		s := slot{name: name, lit: []byte(lits[i+1])}
		switch name {
		case "Date", "RE_DATE":
		case "RecordContext":
			s.context = true
		default:
			s.key = []byte(keyFor(lits[i], name))
		}
		t.slots = append(t.slots, s)
	}
	for i := range t.slots {
		s := &t.slots[i]
		if len(s.lit) > 0 || i == len(t.slots)-1 {
			continue
		}
		if !t.slots[i+1].context || s.context {
			return nil, fmt.Errorf("event format: %%%s%% and %%%s%% have nothing between them", s.name, t.slots[i+1].name)
		}
	}
	for _, s := range t.slots {
		if s.context {
			if t.item, err = compileItem(contextFormat); err != nil {
				return nil, fmt.Errorf("record field context format: %w", err)
			}
		}
	}
	return t, nil
}

// splitFormat splits "lit%A%lit%B%lit" into literals (len(names)+1) and names.
func splitFormat(f string) (lits, names []string, err error) {
	for {
		i := strings.IndexByte(f, '%')
		if i < 0 {
			return append(lits, f), names, nil
		}
		j := strings.IndexByte(f[i+1:], '%')
		if j < 0 {
			return nil, nil, fmt.Errorf("unterminated %% in %q", f)
		}
		name := f[i+1 : i+1+j]
		if name == "" || strings.ContainsAny(name, " \t=") {
			return nil, nil, fmt.Errorf("bad placeholder %q", "%"+name+"%")
		}
		lits = append(lits, f[:i])
		names = append(names, name)
		f = f[i+2+j:]
	}
}

// keyFor takes the key from a literal ending in "key=" or "key:", else from
// the placeholder.
func keyFor(before, name string) string {
	if n := len(before); n > 1 && (before[n-1] == '=' || before[n-1] == ':') {
		k := n - 1
		for k > 0 && isKeyByte(before[k-1]) {
			k--
		}
		if k < n-1 && isKeyStart(before[k]) {
			return before[k : n-1]
		}
	}
	if k, ok := placeholderKeys[name]; ok {
		return k
	}
	if strings.HasPrefix(name, "RE_") {
		return strings.ToLower(name[3:])
	}
	return name
}

func compileItem(f string) (*itemForm, error) {
	lits, names, err := splitFormat(f)
	if err != nil {
		return nil, err
	}
	if len(names) != 2 || names[0] != "ParamName" || names[1] != "ParamValue" {
		return nil, fmt.Errorf("want %%ParamName%% then %%ParamValue%%, got %q", f)
	}
	it := &itemForm{a: []byte(lits[0]), b: []byte(lits[1]), c: []byte(lits[2])}
	if len(it.b) == 0 {
		return nil, fmt.Errorf("nothing between %%ParamName%% and %%ParamValue%% in %q", f)
	}
	it.sep = append(append([]byte{}, it.c...), it.a...)
	if len(it.sep) == 0 {
		return nil, fmt.Errorf("fields have no separator in %q", f)
	}
	return it, nil
}

// Parse fills ev from one line. Lines whose first pair is alert=... are
// parsed as by Parser.Parse. Keys of the template's own fields come from the
// literal before each placeholder ("category=%Category%" → category) or,
// without one, from the placeholder (%MatchedIndicator% → matchedIndicator).
// Empty and "-" values are dropped. It never panics.
func (t *Template) Parse(line []byte, ev *event.Event) error {
	line = trimRight(line)
	if k, _ := nextKey(line, 0); k >= 0 && hasPrefix(line[k:], "alert=") {
		if err := t.alert.Parse(line, ev); err == nil || ev.Kind != event.KindDetection {
			return err
		}
		ev.Fields = ev.Fields[:0]
	}
	ev.Format = event.FormatTemplate
	ev.Kind = event.KindDetection
	if !bytes.HasPrefix(line, t.lead) {
		return fmt.Errorf("%w: does not start with %q", ErrTemplateMismatch, excerpt(t.lead))
	}
	pos := len(t.lead)
	for i, s := range t.slots {
		end := len(line)
		switch {
		case len(s.lit) > 0:
			j := bytes.Index(line[pos:], s.lit)
			if j < 0 {
				if i == len(t.slots)-1 && isSpaces(s.lit) {
					break // trailing spaces were trimmed
				}
				return fmt.Errorf("%w: %q not found after %%%s%%", ErrTemplateMismatch, excerpt(s.lit), s.name)
			}
			end = pos + j
		case i+1 < len(t.slots): // followed directly by %RecordContext%
			if j := t.item.next(line, pos); j >= 0 {
				end = j
			}
		}
		val := line[pos:end]
		switch {
		case s.context:
			t.item.split(val, ev)
		case s.key == nil:
			ev.Prefix = emptyToNil(trimRight(val))
		case !isEmpty(val):
			ev.Add(event.GroupTemplate, s.key, val)
		}
		pos = min(end+len(s.lit), len(line))
	}
	return nil
}

// next returns where the first item starts in line at or after from, or -1.
func (it *itemForm) next(line []byte, from int) int {
	for from <= len(line) {
		j := bytes.Index(line[from:], it.a)
		if j < 0 {
			return -1
		}
		at := from + j
		if it.keyAt(line, at+len(it.a)) > 0 {
			return at
		}
		from = at + 1
	}
	return -1
}

// keyAt returns the length of a key at p followed by it.b, or 0.
func (it *itemForm) keyAt(s []byte, p int) int {
	if p >= len(s) || !isKeyStart(s[p]) {
		return 0
	}
	n := keyLen(s[p:])
	if !bytes.HasPrefix(s[p+n:], it.b) {
		return 0
	}
	return n
}

// split adds the record context items in s as GroupContext fields.
func (it *itemForm) split(s []byte, ev *event.Event) {
	s = bytes.TrimPrefix(s, it.a)
	for len(s) > 0 {
		n := it.keyAt(s, 0)
		if n == 0 {
			return // not an item: the context is malformed from here on
		}
		key := s[:n]
		s = s[n+len(it.b):]
		// The value ends at the next separator that is followed by a key.
		end, rest := len(s), len(s)
		for from := 0; from < len(s); {
			j := bytes.Index(s[from:], it.sep)
			if j < 0 {
				break
			}
			if it.keyAt(s, from+j+len(it.sep)) > 0 {
				end, rest = from+j, from+j+len(it.sep)
				break
			}
			from += j + 1
		}
		val := s[:end]
		if rest == len(s) {
			val = bytes.TrimSuffix(trimRight(val), trimRight(it.c))
		}
		if !isEmpty(val) {
			ev.Add(event.GroupContext, key, val)
		}
		s = s[rest:]
	}
}

func isSpaces(b []byte) bool { return len(bytes.Trim(b, " \t")) == 0 }
