package disk

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/queue"
)

// built is a closed queue directory holding known records in segment 1.
type built struct {
	dir  string
	seg  string   // path of the segment holding the records
	docs []string // in order
	offs []int64  // offs[i]: start of record i; offs[len(docs)]: end
}

// build pushes batches into a new queue and closes it; acks the first
// acked documents first.
func build(t *testing.T, acked int, batches ...[]string) built {
	t.Helper()
	b := built{dir: t.TempDir()}
	q, _ := openQ(t, b.dir, Options{hooks: fastHooks})
	for _, docs := range batches {
		push(t, q, docs...)
		b.docs = append(b.docs, docs...)
	}
	var got []string
	for len(got) < acked {
		got = append(got, popAck(t, q, acked-len(got))...)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b.seg = filepath.Join(b.dir, segName(1))
	var off int64
	for _, d := range b.docs {
		b.offs = append(b.offs, off)
		off += headerSize + int64(len(d))
	}
	b.offs = append(b.offs, off)
	if fi, err := os.Stat(b.seg); err != nil || fi.Size() != off {
		t.Fatalf("segment 1: %v, size %v, want %d", err, fi, off)
	}
	return b
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func (b built) copy(t *testing.T) (dir, seg string) {
	dir = copyDir(t, b.dir)
	return dir, filepath.Join(dir, filepath.Base(b.seg))
}

func without(docs []string, drop ...int) []string {
	var out []string
	for i, d := range docs {
		if !slices.Contains(drop, i) {
			out = append(out, d)
		}
	}
	return out
}

func patch(t *testing.T, path string, off int64, f func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f(b[off:])
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestTornTailAtEveryOffset(t *testing.T) {
	b := build(t, 0, seqDocs("a", 0, 3), seqDocs("b", 0, 2), []string{`{"last":"record of the segment"}`})
	last := len(b.docs) - 1
	for cut := b.offs[last] + 1; cut < b.offs[last+1]; cut++ {
		dir, seg := b.copy(t)
		if err := os.Truncate(seg, cut); err != nil {
			t.Fatal(err)
		}
		v, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		torn := cut - b.offs[last]
		if v.TornBytes != torn || v.Records != last || v.Corrupt != 0 {
			t.Fatalf("cut at %d: Verify = %+v", cut, v)
		}
		got, rec := pending(t, dir)
		if d := cmp.Diff(b.docs[:last], got); d != "" {
			t.Fatalf("cut at %d (-want +got):\n%s", cut, d)
		}
		if rec.TornBytes != torn || rec.Corrupt != 0 || rec.Segments[0].Action != "truncated" || len(rec.Quarantined) != 0 {
			t.Fatalf("cut at %d: recovery = %+v", cut, rec)
		}
		if fi, _ := os.Stat(seg); fi.Size() != b.offs[last] {
			t.Fatalf("cut at %d: segment is %d bytes, want truncated to %d", cut, fi.Size(), b.offs[last])
		}
	}
}

func TestZeroFilledTail(t *testing.T) {
	// A file system may extend a file with zeros it never wrote.
	b := build(t, 0, seqDocs("a", 0, 4))
	dir, seg := b.copy(t)
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 8192))
	f.Close()
	got, rec := pending(t, dir)
	if d := cmp.Diff(b.docs, got); d != "" {
		t.Error(d)
	}
	if rec.TornBytes != 8192 {
		t.Errorf("recovery = %+v", rec)
	}
}

func TestBitFlipsInAMiddleRecord(t *testing.T) {
	docs := []string{`{"n":0}`, `{"n":1,"x":"yy"}`, `{"n":2,"msg":"the record whose bits flip"}`, `{"n":3}`, `{"n":4,"z":[1,2]}`}
	b := build(t, 0, docs[:2], docs[2:3], docs[3:])
	const mid = 2
	bits := 8 * int(b.offs[mid+1]-b.offs[mid])
	if bits < 200 {
		t.Fatalf("only %d bits", bits)
	}
	for bit := range bits {
		dir, seg := b.copy(t)
		patch(t, seg, b.offs[mid], func(p []byte) { p[bit/8] ^= 1 << (bit % 8) })
		q, rec := openQ(t, dir, Options{hooks: fastHooks})
		if rec.Corrupt < 1 || len(rec.Quarantined) != 1 || rec.Segments[0].Action != "rewritten" {
			t.Fatalf("bit %d: recovery = %+v", bit, rec)
		}
		if _, err := os.Stat(rec.Quarantined[0]); err != nil || !strings.HasPrefix(rec.Quarantined[0], filepath.Join(dir, quarName)) {
			t.Fatalf("bit %d: quarantined copy %q: %v", bit, rec.Quarantined[0], err)
		}
		if c := q.Detail().Corrupt; c < 1 {
			t.Fatalf("bit %d: Detail().Corrupt = %d", bit, c)
		}
		got := rest(t, q)
		if d := cmp.Diff(without(docs, mid), got); d != "" {
			t.Fatalf("bit %d (-want +got):\n%s", bit, d)
		}
		if v, err := Verify(dir); err != nil || v.Corrupt != 0 || v.TornBytes != 0 || v.Records != len(docs)-1 {
			t.Fatalf("bit %d: after recovery Verify = %+v, %v", bit, v, err)
		}
	}
}

func TestRandomDamageNeverLosesUntouchedRecords(t *testing.T) {
	var batches [][]string
	for i := range 12 {
		batches = append(batches, seqDocs("r", i*3, i*3+3))
	}
	batches[5] = append(batches[5], strings.Repeat(`{"long":"`+strings.Repeat("z", 300)+`"}`, 1))
	b := build(t, 0, batches...)
	rng := rand.New(rand.NewPCG(1, 2))
	size := b.offs[len(b.docs)]
	for round := range 150 {
		dir, seg := b.copy(t)
		from := rng.Int64N(size)
		n := 1 + rng.Int64N(min(64, size-from))
		patch(t, seg, from, func(p []byte) {
			for i := range n {
				p[i] = byte(rng.Uint32())
			}
			if rng.IntN(4) == 0 {
				for i := range n {
					p[i] = 0
				}
			}
		})
		got, _ := pending(t, dir)
		var want []string // records entirely outside the damage
		for i, d := range b.docs {
			if b.offs[i+1] <= from || b.offs[i] >= from+n {
				want = append(want, d)
			}
		}
		// got holds every untouched record, in order, and nothing else
		// than pushed records (a damaged one may survive if the damage
		// rewrote its own bytes).
		j := 0
		for _, d := range got {
			if j < len(want) && d == want[j] {
				j++
			} else if !slices.Contains(b.docs, d) {
				t.Fatalf("round %d: unknown document %q", round, d)
			}
		}
		if j != len(want) {
			t.Fatalf("round %d: damage at [%d,%d) lost untouched records:\ngot  %v\nwant %v", round, from, from+n, got, want)
		}
	}
}

func TestLargeGarbageRegionIsBounded(t *testing.T) {
	b := build(t, 0, seqDocs("a", 0, 50), seqDocs("b", 0, 50))
	dir, seg := b.copy(t)
	raw, _ := os.ReadFile(seg)
	garbage := randomBytes(rand.New(rand.NewPCG(9, 9)), 2<<20)
	raw = slices.Concat(raw[:b.offs[50]], garbage, raw[b.offs[50]:])
	os.WriteFile(seg, raw, 0o640)
	start := time.Now()
	got, rec := pending(t, dir)
	took := time.Since(start)
	t.Logf("2 MiB of random bytes: recovered in %v, %d records kept, %+v", took, len(got), rec.Segments[0])
	if took > 10*time.Second {
		t.Errorf("recovery took %v", took)
	}
	if d := cmp.Diff(b.docs, got); d != "" {
		t.Errorf("records around the garbage lost (-want +got):\n%s", d)
	}
	if rec.Corrupt != 1 || rec.CorruptBytes != int64(len(garbage)) {
		t.Errorf("recovery = %+v", rec)
	}
}

func TestSegmentWithoutOneGoodRecordIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, segName(7)), []byte("not a segment at all"), 0o640)
	_, rec := pending(t, dir)
	if len(rec.Quarantined) != 1 || rec.Segments[0].Action != "quarantined" || rec.TornBytes != 20 {
		t.Errorf("recovery = %+v", rec)
	}
}

func TestDamageWithAnImplausibleLength(t *testing.T) {
	b := build(t, 0, seqDocs("n", 0, 6))
	dir, seg := b.copy(t)
	patch(t, seg, b.offs[2], func(p []byte) { copy(p, []byte{0xff, 0xff, 0xff, 0x7f}) })
	got, rec := pending(t, dir)
	if d := cmp.Diff(without(b.docs, 2), got); d != "" {
		t.Error(d)
	}
	if rec.Corrupt != 1 || rec.CorruptBytes != b.offs[3]-b.offs[2] {
		t.Errorf("recovery = %+v", rec)
	}
}

func TestPositionLostOrGarbage(t *testing.T) {
	b := build(t, 6, seqDocs("n", 0, 4), seqDocs("n", 4, 10))
	posPath := func(dir string) string { return filepath.Join(dir, posName) }
	cases := map[string]struct {
		damage  func(t *testing.T, dir string)
		missing bool
	}{
		"missing": {damage: func(t *testing.T, dir string) { os.Remove(posPath(dir)) }, missing: true},
		"empty":   {damage: func(t *testing.T, dir string) { os.Truncate(posPath(dir), 0) }},
		"short":   {damage: func(t *testing.T, dir string) { os.Truncate(posPath(dir), 20) }},
		"garbage": {damage: func(t *testing.T, dir string) {
			os.WriteFile(posPath(dir), randomBytes(rand.New(rand.NewPCG(3, 4)), 600), 0o640)
		}},
		"huge": {damage: func(t *testing.T, dir string) { os.WriteFile(posPath(dir), make([]byte, 1<<20), 0o640) }},
		"both slots flipped": {damage: func(t *testing.T, dir string) {
			patch(t, posPath(dir), 0, func(p []byte) { p[13] ^= 1; p[posSlot1+13] ^= 1 })
		}},
		"a directory": {damage: func(t *testing.T, dir string) {
			os.Remove(posPath(dir))
			os.Mkdir(posPath(dir), 0o750)
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir, _ := b.copy(t)
			c.damage(t, dir)
			v, err := Verify(dir)
			if err != nil || v.PositionMissing != c.missing || v.PositionInvalid == c.missing || v.Pending != 10 {
				t.Errorf("Verify = %+v, %v", v, err)
			}
			got, rec := pending(t, dir)
			if d := cmp.Diff(b.docs, got); d != "" {
				t.Errorf("every retained record comes back (-want +got):\n%s", d)
			}
			if rec.PositionMissing != c.missing || rec.PositionInvalid == c.missing {
				t.Errorf("recovery = %+v", rec)
			}
			// Recovery wrote a good one.
			if _, _, err := readPosition(posPath(dir)); err != nil {
				t.Errorf("position after recovery: %v", err)
			}
		})
	}
}

func TestTornPositionSlotFallsBackToTheOther(t *testing.T) {
	b := build(t, 0, seqDocs("n", 0, 10))
	q, _ := openQ(t, b.dir, Options{hooks: fastHooks})
	popAck(t, q, 3)
	popAck(t, q, 4)
	q.Close()
	raw, _ := os.ReadFile(filepath.Join(b.dir, posName))
	_, g0, _ := decodeSlot(raw[0:])
	_, g1, _ := decodeSlot(raw[posSlot1:])
	newest := int64(0)
	if g1 > g0 {
		newest = posSlot1
	}
	patch(t, filepath.Join(b.dir, posName), newest+25, func(p []byte) { p[0] ^= 0x40 })
	got, rec := pending(t, b.dir)
	if d := cmp.Diff(b.docs[3:], got); d != "" {
		t.Errorf("the older slot rules (-want +got):\n%s", d)
	}
	if rec.PositionInvalid || rec.PositionMissing {
		t.Errorf("recovery = %+v", rec)
	}
}

func TestPositionIntoRewrittenOrMissingData(t *testing.T) {
	b := build(t, 6, seqDocs("n", 0, 3), seqDocs("n", 3, 5), seqDocs("n", 5, 10))
	t.Run("damage before the position", func(t *testing.T) {
		dir, seg := b.copy(t)
		patch(t, seg, b.offs[2]+headerSize, func(p []byte) { p[0] ^= 1 })
		got, rec := pending(t, dir)
		if d := cmp.Diff(b.docs[6:], got); d != "" {
			t.Errorf("the position moved with the rewrite (-want +got):\n%s", d)
		}
		if rec.Corrupt != 1 || rec.PositionMoved {
			t.Errorf("recovery = %+v", rec)
		}
	})
	t.Run("damage after the position", func(t *testing.T) {
		dir, seg := b.copy(t)
		patch(t, seg, b.offs[7]+headerSize, func(p []byte) { p[0] ^= 1 })
		got, _ := pending(t, dir)
		if d := cmp.Diff(without(b.docs[6:], 1), got); d != "" {
			t.Error(d)
		}
	})
	t.Run("damage at the position", func(t *testing.T) {
		dir, seg := b.copy(t)
		patch(t, seg, b.offs[6], func(p []byte) { p[2] ^= 0x10 })
		got, _ := pending(t, dir)
		if d := cmp.Diff(b.docs[7:], got); d != "" {
			t.Error(d)
		}
	})
	t.Run("position inside a record", func(t *testing.T) {
		dir, _ := b.copy(t)
		writePositionFile(filepath.Join(dir, posName), Position{Seq: 1, Offset: b.offs[6] + 5}, 1000, (*os.File).Sync)
		got, rec := pending(t, dir)
		if d := cmp.Diff(b.docs[6:], got); d != "" {
			t.Errorf("the record under the position is not acked (-want +got):\n%s", d)
		}
		if !rec.PositionMoved {
			t.Errorf("recovery = %+v", rec)
		}
	})
	t.Run("position past the data", func(t *testing.T) {
		dir, seg := b.copy(t)
		os.Truncate(seg, b.offs[8]+3) // the tail was torn, position beyond
		writePositionFile(filepath.Join(dir, posName), Position{Seq: 1, Offset: b.offs[9]}, 1000, (*os.File).Sync)
		got, rec := pending(t, dir)
		if len(got) != 0 || !rec.PositionMoved {
			t.Errorf("got %v, recovery %+v", got, rec)
		}
	})
}

func TestGarbageDirectory(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	junk := func(n int) []byte { return randomBytes(rng, n) }
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o640)
	os.WriteFile(filepath.Join(dir, segName(1)), junk(5000), 0o640)
	os.WriteFile(filepath.Join(dir, segName(2)), nil, 0o640)
	os.WriteFile(filepath.Join(dir, segName(3)+tmpSuffix), junk(100), 0o640)
	os.Mkdir(filepath.Join(dir, segName(4)), 0o750)
	os.WriteFile(filepath.Join(dir, "0001.seg"), junk(10), 0o640)
	os.Mkdir(filepath.Join(dir, posName), 0o750)
	os.WriteFile(filepath.Join(dir, quarName), junk(10), 0o640)
	os.Mkdir(filepath.Join(dir, lockName), 0o750)

	q, rec := openQ(t, dir, Options{hooks: fastHooks})
	if !rec.PositionInvalid || rec.Pending != 0 {
		t.Errorf("recovery = %+v", rec)
	}
	if got := rec.Ignored; !slices.Contains(got, "notes.txt") || !slices.Contains(got, segName(4)) || !slices.Contains(got, "0001.seg") {
		t.Errorf("ignored = %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(3)+tmpSuffix)); err == nil {
		t.Error("leftover temporary file kept")
	}
	push(t, q, "a", "b")
	if got := popAck(t, q, 10); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("got %v", got)
	}
	push(t, q, "c")
	q.Close()
	got, _ := pending(t, dir)
	if !cmp.Equal(got, []string{"c"}) {
		t.Errorf("after reopen got %v", got)
	}
}

func TestDamageWhileOpen(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, dir, Options{hooks: fastHooks})
	docs := seqDocs("n", 0, 8)
	for _, d := range docs {
		push(t, q, d)
	}
	seg := filepath.Join(dir, segName(1))
	var offs []int64
	var off int64
	for _, d := range docs {
		offs = append(offs, off)
		off += headerSize + int64(len(d))
	}
	patch(t, seg, offs[2]+headerSize+1, func(p []byte) { p[0] ^= 4 })      // payload
	patch(t, seg, offs[5], func(p []byte) { copy(p, []byte{9, 0, 0, 0}) }) // a plausible wrong length
	var got []string
	for len(got) < 6 {
		got = append(got, popAck(t, q, 100)...)
	}
	if d := cmp.Diff(without(docs, 2, 5), got); d != "" {
		t.Error(d)
	}
	if d := q.Detail(); d.Corrupt != 2 || d.Pending != 0 || d.Ready != 0 {
		t.Errorf("Detail = %+v", d)
	}
	if st := q.Stats(); st.Events != 0 || st.Bytes != 0 {
		t.Errorf("Stats = %+v", st)
	}
	// Still usable.
	push(t, q, "after")
	if got := popAck(t, q, 10); !cmp.Equal(got, []string{"after"}) {
		t.Errorf("got %v", got)
	}
}

func TestDamageWhileOpenOnlyDamagedLeft(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, dir, Options{hooks: fastHooks})
	push(t, q, "only")
	patch(t, filepath.Join(dir, segName(1)), headerSize, func(p []byte) { p[0] ^= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if l, err := q.Pop(ctx, fast); err == nil {
		t.Fatalf("Pop returned %v", docsOf(l.Batch))
	}
	q.Close()
	if _, err := q.Pop(context.Background(), fast); err != io.EOF {
		t.Fatalf("Pop = %v, want EOF", err)
	}
}

func TestVerifyAndRepair(t *testing.T) {
	b := build(t, 2, seqDocs("n", 0, 5), seqDocs("n", 5, 9))
	dir, seg := b.copy(t)
	patch(t, seg, b.offs[4]+headerSize, func(p []byte) { p[1] ^= 2 })
	os.Truncate(seg, b.offs[9]-2) // torn last record too
	v, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Records != 7 || v.Corrupt != 1 || v.TornBytes != b.offs[9]-2-b.offs[8] || v.Pending != 5 || v.Position.Seq != 1 || len(v.Segments) != 1 {
		t.Errorf("Verify = %+v", v)
	}
	before, _ := os.ReadFile(seg)
	if v2, _ := Verify(dir); !cmp.Equal(v, v2) {
		t.Error("Verify changed something")
	}
	if after, _ := os.ReadFile(seg); !bytes.Equal(before, after) {
		t.Error("Verify modified the segment")
	}
	r, err := Repair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Corrupt != 1 || len(r.Quarantined) != 1 || r.Segments[0].Action != "rewritten" || len(r.Problems) != 0 {
		t.Errorf("Repair = %+v", r)
	}
	v, _ = Verify(dir)
	if v.Damaged() || v.Records != 7 || v.Pending != 5 {
		t.Errorf("Verify after Repair = %+v", v)
	}
	got, _ := pending(t, dir)
	if d := cmp.Diff([]string{b.docs[2], b.docs[3], b.docs[5], b.docs[6], b.docs[7]}, got); d != "" {
		t.Error(d)
	}
	if _, err := Verify(filepath.Join(dir, "nope")); err == nil {
		t.Error("Verify of a missing directory succeeded")
	}
}

var _ queue.Queue = (*Disk)(nil)

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
