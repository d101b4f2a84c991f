package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func open(t testing.TB, path string, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(path, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func seen(t *testing.T, s *Store, src string, keys ...DedupKey) []bool {
	t.Helper()
	got, err := s.Seen(src, keys)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCursorRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	clk := &clock{t: t0}
	s := open(t, path, clk.Now)
	if _, ok, err := s.Cursor("acme"); ok || err != nil {
		t.Fatalf("fresh store: ok=%v err=%v", ok, err)
	}
	want := Cursor{LastSeen: time.Date(2025, 3, 1, 8, 5, 12, 407000000, time.FixedZone("x", 3600))}
	if err := s.SetCursor("acme", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Cursor("acme")
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if !got.LastSeen.Equal(want.LastSeen) || !got.Updated.Equal(t0) {
		t.Errorf("cursor = %+v, want LastSeen %v, Updated %v (clock)", got, want.LastSeen, t0)
	}
	// An explicit Updated is kept.
	upd := t0.Add(time.Hour)
	if err := s.SetCursor("acme", Cursor{LastSeen: t0, Updated: upd}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path, clk.Now)
	got, _, _ = s.Cursor("acme")
	if !got.LastSeen.Equal(t0) || !got.Updated.Equal(upd) {
		t.Errorf("after reopen cursor = %+v", got)
	}
	if _, ok, _ := s.Cursor("other"); ok {
		t.Error("another source has a cursor")
	}
}

func TestEmptySource(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	for name, err := range map[string]error{
		"SetCursor": s.SetCursor("", Cursor{}),
		"Commit":    s.Commit("", Cursor{}, nil),
		"Record":    s.Record("", nil, t0),
	} {
		if !errors.Is(err, ErrNoSource) {
			t.Errorf("%s: err = %v, want ErrNoSource", name, err)
		}
	}
	if _, err := s.Seen("", nil); !errors.Is(err, ErrNoSource) {
		t.Errorf("Seen: err = %v", err)
	}
}

func TestSeenRecordSemantics(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	a := DedupKey{88231, "2025-03-01T08:01:02"}
	aNew := DedupKey{88231, "2025-03-01T08:09:00"}
	b := DedupKey{-5, ""}
	if got := seen(t, s, "acme", a, aNew, b); !cmp.Equal(got, []bool{false, false, false}) {
		t.Errorf("fresh: %v", got)
	}
	if err := s.Record("acme", []DedupKey{a, b}, t0); err != nil {
		t.Fatal(err)
	}
	// Same ID and LastSeen: duplicate. Same ID, new LastSeen: an update.
	if got := seen(t, s, "acme", a, aNew, b); !cmp.Equal(got, []bool{true, false, true}) {
		t.Errorf("after Record: %v", got)
	}
	if err := s.Commit("acme", Cursor{LastSeen: t0}, []DedupKey{aNew}); err != nil {
		t.Fatal(err)
	}
	if got := seen(t, s, "acme", a, aNew, b); !cmp.Equal(got, []bool{true, true, true}) {
		t.Errorf("after Commit: %v", got)
	}
	if got, _ := s.Seen("acme", nil); len(got) != 0 {
		t.Errorf("Seen(nil) = %v", got)
	}
	// Recording a key twice keeps one record.
	if err := s.Record("acme", []DedupKey{a, a}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count("acme"); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
}

func TestTenantsIsolated(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	k := DedupKey{1, "x"}
	if err := s.Commit("acme", Cursor{LastSeen: t0}, []DedupKey{k}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit("globex", Cursor{LastSeen: t0.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	if got := seen(t, s, "globex", k); got[0] {
		t.Error("globex sees acme's key")
	}
	if got := seen(t, s, "initech", k); got[0] {
		t.Error("unknown source sees acme's key")
	}
	ca, _, _ := s.Cursor("acme")
	cg, _, _ := s.Cursor("globex")
	if !ca.LastSeen.Equal(t0) || !cg.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("cursors acme %v globex %v", ca.LastSeen, cg.LastSeen)
	}
	if n, _ := s.Expire("globex", t0.Add(24*time.Hour*365*100)); n != 0 {
		t.Errorf("Expire(globex) removed %d", n)
	}
	if got := seen(t, s, "acme", k); !got[0] {
		t.Error("expiring globex removed acme's key")
	}
}

func TestCommitAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, nil)
	first := []DedupKey{{1, "a"}, {2, "a"}}
	if err := s.Commit("acme", Cursor{LastSeen: t0}, first); err != nil {
		t.Fatal(err)
	}
	// A failure inside the transaction, after every write, undoes them all.
	boom := errors.New("injected")
	s.beforeCommit = func() error { return boom }
	second := []DedupKey{{3, "a"}, {1, "b"}}
	if err := s.Commit("acme", Cursor{LastSeen: t0.Add(time.Hour)}, second); !errors.Is(err, boom) {
		t.Fatalf("Commit err = %v, want the injected one", err)
	}
	s.beforeCommit = nil
	if got := seen(t, s, "acme", second...); got[0] || got[1] {
		t.Errorf("failed Commit left keys behind: %v", got)
	}
	if c, _, _ := s.Cursor("acme"); !c.LastSeen.Equal(t0) {
		t.Errorf("failed Commit moved the cursor to %v", c.LastSeen)
	}
	// A cursor that cannot be encoded fails before anything is written.
	if err := s.Commit("acme", Cursor{LastSeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, second); err == nil {
		t.Fatal("Commit with an unencodable cursor succeeded")
	}
	if got := seen(t, s, "acme", second...); got[0] || got[1] {
		t.Errorf("failed Commit left keys behind: %v", got)
	}
	// Reopen: both the cursor and the keys of the successful Commit are there.
	if err := s.Commit("acme", Cursor{LastSeen: t0.Add(2 * time.Hour)}, second); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Commit("acme", Cursor{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
	s = open(t, path, nil)
	if got := seen(t, s, "acme", append(first, second...)...); !cmp.Equal(got, []bool{true, true, true, true}) {
		t.Errorf("after reopen: %v", got)
	}
	if c, _, _ := s.Cursor("acme"); !c.LastSeen.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("after reopen cursor = %v", c.LastSeen)
	}
}

func TestExpire(t *testing.T) {
	clk := &clock{t: t0}
	s := open(t, filepath.Join(t.TempDir(), "state.db"), clk.Now)
	var old, fresh, refreshed []DedupKey
	for i := range 30 {
		old = append(old, DedupKey{int64(i), "v1"})
		fresh = append(fresh, DedupKey{int64(i), "v2"})
	}
	refreshed = old[:5]
	if err := s.Commit("acme", Cursor{}, old); err != nil { // at t0
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour))
	if err := s.Commit("acme", Cursor{}, fresh); err != nil {
		t.Fatal(err)
	}
	// Re-recording restarts a key's TTL.
	if err := s.Record("acme", refreshed, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if o, ok, _ := s.Oldest("acme"); !ok || !o.Equal(t0) {
		t.Errorf("Oldest = %v, %v", o, ok)
	}
	// Records made exactly at the cutoff stay.
	n, err := s.Expire("acme", t0.Add(time.Hour))
	if err != nil || n != 25 {
		t.Fatalf("Expire = %d, %v; want 25", n, err)
	}
	got := seen(t, s, "acme", old...)
	for i, g := range got {
		if want := i < 5; g != want {
			t.Errorf("old key %d seen = %v, want %v", i, g, want)
		}
	}
	for i, g := range seen(t, s, "acme", fresh...) {
		if !g {
			t.Errorf("fresh key %d expired", i)
		}
	}
	if c, _ := s.Count("acme"); c != 35 {
		t.Errorf("Count = %d, want 35", c)
	}
	if n, _ := s.Expire("acme", t0.Add(time.Hour)); n != 0 {
		t.Errorf("second Expire removed %d", n)
	}
	n, _ = s.Expire("acme", t0.Add(3*time.Hour))
	if n != 35 {
		t.Errorf("Expire all = %d, want 35", n)
	}
	if _, ok, _ := s.Oldest("acme"); ok {
		t.Error("Oldest after expiring everything")
	}
}

func TestExpireChunks(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	keys := make([]DedupKey, expireChunk*2+7)
	for i := range keys {
		keys[i] = DedupKey{int64(i), "v"}
	}
	if err := s.Record("acme", keys, t0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire("acme", t0.Add(time.Second)); n != len(keys) || err != nil {
		t.Errorf("Expire = %d, %v; want %d", n, err, len(keys))
	}
	if c, _ := s.Count("acme"); c != 0 {
		t.Errorf("Count = %d", c)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open(t, path, nil)
	start := time.Now()
	_, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Open took %v", d)
	}
	t.Log(err)
}

func TestKeyEncoding(t *testing.T) {
	var a, b [keyLen]byte
	DedupKey{-1, "x"}.encode(&a)
	DedupKey{1, "x"}.encode(&b)
	if string(a[:8]) >= string(b[:8]) {
		t.Error("negative IDs must sort before positive ones")
	}
	DedupKey{1, "y"}.encode(&a)
	if a == b {
		t.Error("LastSeen not in the key")
	}
	var tb [8]byte
	for _, tt := range []time.Time{t0, time.Unix(0, 0), time.Unix(-5, 0), t0.Add(time.Nanosecond)} {
		encodeTime(tb[:], tt)
		if got := decodeTime(tb[:]); !got.Equal(tt) {
			t.Errorf("time round trip %v -> %v", tt, got)
		}
	}
}

func keysFor(commit, n int) []DedupKey {
	keys := make([]DedupKey, n)
	ls := fmt.Sprintf("2025-03-01T%02d:%02d:%02d", commit/3600%24, commit/60%60, commit%60)
	for j := range keys {
		keys[j] = DedupKey{int64(commit)*100000 + int64(j), ls}
	}
	return keys
}

func BenchmarkCommit(b *testing.B) {
	dir := os.Getenv("STATE_BENCH_DIR") // to measure on a particular disk
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.db", os.Getpid()))
	defer os.Remove(path)
	s := open(b, path, nil)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := s.Commit("acme", Cursor{LastSeen: t0.Add(time.Duration(i) * time.Second)}, keysFor(i, 1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/key")
}

func BenchmarkSeen(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "state.db"), nil)
	for i := range 100 { // 100,000 records: the backlog of the brief
		if err := s.Commit("acme", Cursor{}, keysFor(i, 1000)); err != nil {
			b.Fatal(err)
		}
	}
	half := append(keysFor(50, 500), keysFor(500, 500)...) // 500 recorded, 500 new
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seen("acme", half); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/key")
}
