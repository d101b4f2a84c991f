// Package tally records what an emulator received: how many events, how
// many times each event.id, how many requests, how many body bytes, and
// the headers of the last request. The SIEM emulators (httpsink,
// splunkhec, sentinel, elasticsearch, syslog) each hold a Tally and answer
// their Count, IDs, Distinct, Requests, BytesOnWire and LastHeader from
// it, so that those methods mean the same everywhere.
package tally

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// Tally counts what an emulator received. The zero value is an empty
// Tally, ready to use. Its methods are safe for concurrent use; each call
// is atomic on its own, but a sequence of calls is not (a Reset may fall
// between a Request and the Add of the same request).
//
// A Tally must not be copied after first use.
type Tally struct {
	// wire is outside mu: a stream receiver adds to it on every read.
	wire atomic.Int64

	mu       sync.Mutex
	count    int
	ids      map[string]int // event.id → times received; nil when empty
	requests int
	header   http.Header
}

// Request records one request: Requests grows by one and LastHeader
// becomes a copy of h (h is not kept; nil makes LastHeader nil).
func (t *Tally) Request(h http.Header) {
	h = h.Clone()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.header = h
}

// AddBytes adds n to BytesOnWire: body bytes as received, before any
// decompression.
func (t *Tally) AddBytes(n int64) { t.wire.Add(n) }

// Add records n events received, duplicates included, and the event.ids
// of those of them that had one. ids may be fewer than n (events without
// an event.id, or whose IDs were not read); an empty id is skipped, as
// for an event without one. Add(0, id) records an id without counting an
// event, and Add(n) counts events without ids.
func (t *Tally) Add(n int, ids ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count += n
	for _, id := range ids {
		if id == "" {
			continue
		}
		if t.ids == nil {
			t.ids = make(map[string]int)
		}
		t.ids[id]++
	}
}

// Count is the number of events recorded by Add, duplicates included.
func (t *Tally) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// IDs returns a copy of the map from each event.id recorded to the number
// of times it was received. It is never nil; the caller may modify it.
func (t *Tally) IDs() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]int, len(t.ids))
	for k, v := range t.ids {
		m[k] = v
	}
	return m
}

// Distinct is the number of different event.ids recorded: len(IDs())
// without copying the map.
func (t *Tally) Distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}

// Requests is the number of calls to Request.
func (t *Tally) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests
}

// BytesOnWire is the sum of AddBytes.
func (t *Tally) BytesOnWire() int64 { return t.wire.Load() }

// LastHeader returns a copy of the headers given to the last Request, or
// nil if there was none since the last Reset.
func (t *Tally) LastHeader() http.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.header.Clone()
}

// Reset zeroes every count and forgets the IDs and the last header: the
// Tally is as new.
func (t *Tally) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count, t.ids, t.requests, t.header = 0, nil, 0, nil
	t.wire.Store(0)
}
