package cynet

import (
	"sort"
	"sync"
)

// record is the whole mutable state of one stored alert (32 bytes); the
// rest of the alert is derived from its ClientDbId (render.go). Times are
// Unix nanoseconds, UTC.
type record struct {
	dateIn      int64
	lastSeen    int64
	dateChanged int64
	status      int8 // -1: as generated; else set by SetStatus
}

// key is one entry of a sorted index: the sort time and the alert's slot
// (slot = ClientDbId - FirstAlertID, so ordering by slot is ordering by
// ClientDbId).
type key struct {
	t    int64
	slot uint32
}

func (a key) less(b key) bool { return a.t < b.t || (a.t == b.t && a.slot < b.slot) }

// index is a slice of keys kept sorted by (t, slot): the stable order of
// every listing (time ascending, then ClientDbId ascending).
type index []key

// lowerBound returns the first position whose key is not less than k.
func (x index) lowerBound(k key) int {
	return sort.Search(len(x), func(i int) bool { return !x[i].less(k) })
}

// from returns the first position with t >= tm.
func (x index) from(tm int64) int {
	return sort.Search(len(x), func(i int) bool { return x[i].t >= tm })
}

// insertBlock adds n keys with time tm and slots first..first+n-1, which are
// greater than every slot already present. Appending is the common case
// (tm not before the newest key); otherwise the tail moves up by n once.
func (x *index) insertBlock(tm int64, first uint32, n int) {
	old := len(*x)
	p := old
	if old > 0 && (*x)[old-1].t > tm {
		p = x.from(tm + 1) // after every key with t <= tm: the new slots are larger
	}
	s := grow(*x, n)[:old+n]
	*x = s
	copy(s[p+n:], s[p:old])
	for i := 0; i < n; i++ {
		s[p+i] = key{tm, first + uint32(i)}
	}
}

// grow returns s with room for n more elements. Capacity at least doubles:
// Go's append grows large slices by only 1.25x, which for a store filled in
// batches of 1,000 copies the whole backlog several times over.
func grow[E any](s []E, n int) []E {
	if cap(s)-len(s) >= n {
		return s
	}
	c := max(2*cap(s), len(s)+n, 1024)
	t := make([]E, len(s), c)
	copy(t, s)
	return t
}

// move changes the time of slot from oldT to newT, shifting only the keys
// between its old and new positions.
func (x index) move(slot uint32, oldT, newT int64) {
	ok, nk := key{oldT, slot}, key{newT, slot}
	i := x.lowerBound(ok)
	if i == len(x) || x[i] != ok {
		panic("cynet: index out of sync")
	}
	j := x.lowerBound(nk)
	switch {
	case j > i: // later: keys (i, j) move down one
		copy(x[i:j-1], x[i+1:j])
		x[j-1] = nk
	case j < i: // earlier: keys [j, i) move up one
		copy(x[j+1:i+1], x[j:i])
		x[j] = nk
	default:
		x[i] = nk
	}
}

// store holds every alert: records by slot plus the LastSeen and
// DateChanged indexes. Its methods lock mu themselves.
type store struct {
	mu   sync.RWMutex
	recs []record
	byLS index // by (LastSeen, ClientDbId)
	byDC index // by (DateChanged, ClientDbId)
}

// row is a snapshot of one alert for rendering outside the lock.
type row struct {
	id  int64
	rec record
}

// listing selects the index a query runs on.
type listing int

const (
	byLastSeen listing = iota
	byDateChanged
)

// page returns up to limit rows from position from(t)+offset of the chosen
// index, plus the number of rows matching t in total. now, if non-nil, is
// called under the read lock so that the caller's SyncTimeUtc is consistent
// with the snapshot (every alert stamped before it is visible).
func (st *store) page(l listing, t int64, offset, limit int, buf []row, now func()) []row {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if now != nil {
		now()
	}
	x := st.byLS
	if l == byDateChanged {
		x = st.byDC
	}
	lo := x.from(t) + offset
	if lo < 0 {
		lo = 0
	}
	hi := min(lo+limit, len(x))
	for i := lo; i < hi; i++ {
		k := x[i]
		buf = append(buf, row{FirstAlertID + int64(k.slot), st.recs[k.slot]})
	}
	return buf
}

// count returns the number of alerts with the chosen time >= t.
func (st *store) count(l listing, t int64) int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	x := st.byLS
	if l == byDateChanged {
		x = st.byDC
	}
	return len(x) - x.from(t)
}
