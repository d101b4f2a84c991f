// Package kv parses Kaspersky CyberTrace output lines in its key=value
// layout: detection events, service alerts (alert=KL_ALERT_*) and
// lookup-finished events.
//
// CyberTrace renders a detection from an operator-editable template, by
// default
//
//	%Date% category=%Category% matchedIndicator=%MatchedIndicator% url=%RE_URL% ... confidence=%Confidence%%RecordContext%
//
// where %RecordContext% is every field of the matched feed record rendered
// as " name=value" and glued on with no separator. So a line carries two
// groups of pairs whose keys may collide (the detection's category and the
// feed record's own category), values contain spaces (first_seen=10.07.2015
// 23:53), "-" stands for an empty value and the date slot before the first
// key is optional. Parser handles that layout without a template: see Parse.
// Template handles any layout the operator configured.
package kv

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Sentinel errors. Parse wraps them with detail.
var (
	// ErrNoPairs: the line holds no key=value pair at all.
	ErrNoPairs = errors.New("no key=value pairs")
	// ErrNotDetection: the pairs name none of the detection template's keys
	// and the line is not an alert either.
	ErrNotDetection = errors.New("no detection template key")
	// ErrTemplateMismatch: the line does not follow the configured template.
	ErrTemplateMismatch = errors.New("line does not match the configured template")
)

// DefaultTemplateKeys are the keys of CyberTrace's default detection
// template, in order. Parser treats the leading run of these keys as the
// detection's own fields and everything after as the feed record context.
var DefaultTemplateKeys = []string{
	"category", "matchedIndicator", "url", "src", "ip",
	"md5", "sha1", "sha256", "usrName", "confidence",
}

// Parser parses key=value lines without a template. The zero value is not
// usable; use NewParser. A Parser is immutable and safe for concurrent use.
type Parser struct {
	template []string // at most 64; index = bit in the seen mask
}

// NewParser returns a parser that takes keys as the detection template's
// keys (DefaultTemplateKeys when keys is empty). At most 64 keys.
func NewParser(keys []string) (*Parser, error) {
	if len(keys) == 0 {
		keys = DefaultTemplateKeys
	}
	if len(keys) > 64 {
		return nil, fmt.Errorf("kv: %d template keys, at most 64", len(keys))
	}
	p := &Parser{}
	for _, k := range keys {
		if !validKey(k) {
			return nil, fmt.Errorf("kv: template key %q is not a valid key", k)
		}
		if p.templateBit([]byte(k)) >= 0 {
			return nil, fmt.Errorf("kv: template key %q listed twice", k)
		}
		p.template = append(p.template, k)
	}
	return p, nil
}

// templateBit returns the index of key among the template keys, or -1. A
// linear scan beats a map for a dozen short keys.
func (p *Parser) templateBit(key []byte) int {
	for i, k := range p.template {
		if len(k) == len(key) && k == string(key) {
			return i
		}
	}
	return -1
}

// Parse fills ev from one line (without its LF; CR already stripped).
//
// The text before the first key is the date slot and goes to ev.Prefix
// ("-" and empty mean none). Pairs are split at every space that is followed
// by a key and '=' (a key is [A-Za-z_][A-Za-z0-9_.-]*), so values may hold
// spaces and '=' (as in URLs with query strings) as long as no " key=" occurs
// inside them. Values that are empty or "-" are dropped; trailing spaces are
// trimmed.
//
// Classification: a first key "alert" with a KL_ALERT_ value makes a service
// alert, with "LookupFinished" a lookup-finished event; in both the alert
// pair is GroupTemplate and the rest GroupContext. Otherwise the line is a
// detection: the leading run of distinct template keys is GroupTemplate and
// everything from the first other or repeated key on is GroupContext (the
// feed record). Keys and values alias line; Parse allocates nothing once ev
// is warm. It never panics.
func (p *Parser) Parse(line []byte, ev *event.Event) error {
	ev.Format = event.FormatKV
	line = trimRight(line)
	first, firstEq := nextKey(line, 0)
	if first < 0 {
		return ErrNoPairs
	}
	ev.Prefix = emptyToNil(trimRight(line[:first]))

	kind := event.KindDetection
	inTemplate := true
	var seen uint64
	for pos, eq := first, firstEq; pos >= 0; {
		key := line[pos:eq]
		next, nextEq := nextKey(line, eq+1)
		end := len(line)
		if next >= 0 {
			end = next - 1 // the space before the next key
		}
		val := trimRight(line[eq+1 : end])
		isFirst := pos == first
		pos, eq = next, nextEq

		group := event.GroupContext
		switch {
		case isFirst && string(key) == "alert" && alertKind(val) != event.KindDetection:
			kind = alertKind(val)
			group = event.GroupTemplate
			inTemplate = false
		case inTemplate:
			if bit := p.templateBit(key); bit >= 0 && seen&(1<<bit) == 0 {
				seen |= 1 << bit
				group = event.GroupTemplate
			} else {
				inTemplate = false
			}
		}
		if isEmpty(val) {
			continue
		}
		ev.Add(group, key, val)
	}
	ev.Kind = kind
	if kind == event.KindDetection && seen == 0 {
		return fmt.Errorf("%w (first key %q)", ErrNotDetection, excerpt(line[first:firstEq]))
	}
	return nil
}

// nextKey returns the offsets of the first key that starts at or after from
// and of the '=' that follows it, where the key starts the line or follows a
// space. It returns -1, -1 when there is none.
func nextKey(line []byte, from int) (start, eq int) {
	for from < len(line) {
		i := bytes.IndexByte(line[from:], '=')
		if i < 0 {
			return -1, -1
		}
		eq = from + i
		// Walk back over key characters.
		k := eq
		for k > 0 && isKeyByte(line[k-1]) {
			k--
		}
		if k >= from && k < eq && isKeyStart(line[k]) && (k == 0 || line[k-1] == ' ') {
			return k, eq
		}
		from = eq + 1
	}
	return -1, -1
}

// keyLen returns the length of the key at the start of s (s starts a key
// found by nextKey, so an '=' follows it).
func keyLen(s []byte) int {
	n := 0
	for n < len(s) && isKeyByte(s[n]) {
		n++
	}
	return n
}

// keyClass[c] is 2 for bytes that may start a key, 1 for bytes that may
// only continue one, 0 otherwise.
var keyClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			t[c] = 2
		case ('0' <= c && c <= '9') || c == '.' || c == '-':
			t[c] = 1
		}
	}
	return t
}()

func isKeyStart(c byte) bool { return keyClass[c] == 2 }
func isKeyByte(c byte) bool  { return keyClass[c] != 0 }

func validKey(k string) bool {
	if k == "" || !isKeyStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isKeyByte(k[i]) {
			return false
		}
	}
	return true
}

// alertKind classifies the value of a leading alert= pair.
func alertKind(v []byte) event.Kind {
	switch {
	case hasPrefix(v, "KL_ALERT_"):
		return event.KindServiceAlert
	case string(v) == "LookupFinished":
		return event.KindLookupFinished
	}
	return event.KindDetection
}

func isEmpty(v []byte) bool { return len(v) == 0 || (len(v) == 1 && v[0] == '-') }

func emptyToNil(v []byte) []byte {
	if isEmpty(v) {
		return nil
	}
	return v
}

func trimRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// excerpt bounds what an error message quotes from untrusted input.
func excerpt(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
