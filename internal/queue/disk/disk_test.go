package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/queue"
	"github.com/alertrelay/alertrelay/internal/queue/queuetest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// fastHooks skip fsync: for tests about formats and recovery, not
// durability.
var fastHooks = &hooks{sync: func(*os.File) error { return nil }}

func openQ(t testing.TB, dir string, opt Options) (*Disk, *Recovery) {
	t.Helper()
	if opt.MaxBytes == 0 {
		opt.MaxBytes = 1 << 30
	}
	q, rec, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open: %v (recovery %+v)", err, rec)
	}
	t.Cleanup(func() { q.Close() })
	return q, rec
}

func batch(docs ...string) *event.Batch {
	b := event.NewBatch(len(docs), 16)
	for _, d := range docs {
		b.Append([]byte(d))
	}
	return b
}

func docsOf(b *event.Batch) []string {
	out := make([]string, b.Len())
	for i := range out {
		out[i] = string(b.Doc(i))
	}
	return out
}

func seqDocs(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"%s":%d}`, prefix, i))
	}
	return out
}

func push(t testing.TB, q queue.Queue, docs ...string) {
	t.Helper()
	if err := q.Push(context.Background(), batch(docs...)); err != nil {
		t.Fatalf("Push: %v", err)
	}
}

var fast = queue.Limits{MaxEvents: 1000, MaxBytes: 1 << 20, Linger: time.Millisecond}

// popAck pops up to n documents, acks them and returns them.
func popAck(t testing.TB, q queue.Queue, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := q.Pop(ctx, queue.Limits{MaxEvents: n, MaxBytes: 1 << 30, Linger: time.Millisecond})
	if err != nil {
		t.Fatalf("Pop: %v", err)
	}
	d := docsOf(l.Batch)
	l.Ack()
	return d
}

// rest closes q and returns every document it still hands out, unacked.
func rest(t testing.TB, q *Disk) []string {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var out []string
	for {
		l, err := q.Pop(context.Background(), fast)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Pop: %v", err)
		}
		out = append(out, docsOf(l.Batch)...)
	}
}

// pending reopens dir and returns what it holds, acking nothing.
func pending(t testing.TB, dir string) ([]string, *Recovery) {
	t.Helper()
	q, rec := openQ(t, dir, Options{hooks: fastHooks})
	return rest(t, q), rec
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, maxBytes int64) queue.Queue {
		q, _ := openQ(t, t.TempDir(), Options{MaxBytes: maxBytes})
		return q
	})
}

func TestConformanceSmallSegments(t *testing.T) {
	// Every few records rotate, so reading crosses segments and acked
	// segments are deleted while pushes go on.
	queuetest.Run(t, func(t *testing.T, maxBytes int64) queue.Queue {
		q, _ := openQ(t, t.TempDir(), Options{MaxBytes: maxBytes, SegmentBytes: 100})
		return q
	})
}

func TestReopenDeliversExactlyTheUnacked(t *testing.T) {
	dir := t.TempDir()
	q, rec := openQ(t, dir, Options{SegmentBytes: 256})
	if rec.Damaged() {
		t.Errorf("fresh directory reported damaged: %+v", rec)
	}
	all := seqDocs("n", 0, 30)
	for i := 0; i < 30; i += 3 {
		push(t, q, all[i:i+3]...)
	}
	if got := popAck(t, q, 7); !cmp.Equal(got, all[:7]) {
		t.Fatalf("popped %v", got)
	}
	// Popped but not acked: must come back.
	ctx := context.Background()
	if _, err := q.Pop(ctx, queue.Limits{MaxEvents: 5, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Events != 23 {
		t.Errorf("Stats = %+v, want 23 events", st)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	got, rec := pending(t, dir)
	if d := cmp.Diff(all[7:], got); d != "" {
		t.Errorf("after reopen (-want +got):\n%s", d)
	}
	if rec.Damaged() || rec.Pending != 23 {
		t.Errorf("recovery = %+v", rec)
	}
}

func TestReopenAfterCrashLosesNothing(t *testing.T) {
	for _, flushed := range []bool{false, true} {
		t.Run(fmt.Sprintf("positionFlushed=%v", flushed), func(t *testing.T) {
			dir := t.TempDir()
			q, _ := openQ(t, dir, Options{SegmentBytes: 300})
			all := seqDocs("n", 0, 40)
			for i := 0; i < 40; i += 4 {
				push(t, q, all[i:i+4]...)
			}
			acked := len(popAck(t, q, 13))
			acked += len(popAck(t, q, 9))
			if !flushed {
				// What a crash before the position's fsync can leave: the
				// position of the previous run.
				q.abandon()
				os.Remove(filepath.Join(dir, posName))
			} else {
				q.abandon()
			}
			got, _ := pending(t, dir)
			// Duplicates allowed (a suffix of everything at least as long
			// as the unacked part), loss not.
			if len(got) < len(all)-acked || !slices.Equal(got, all[len(all)-len(got):]) {
				t.Fatalf("after crash got %v, want a suffix of the pushed documents holding the last %d", got, len(all)-acked)
			}
			if flushed && len(got) != len(all)-acked {
				t.Errorf("got %d documents, want exactly the %d unacked", len(got), len(all)-acked)
			}
		})
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestSegmentsRotateAndAckedOnesAreDeleted(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, dir, Options{SegmentBytes: 200})
	big := strings.Repeat("x", 500) // larger than a segment: one of its own
	push(t, q, seqDocs("a", 0, 5)...)
	push(t, q, big)
	push(t, q, seqDocs("b", 0, 5)...)
	push(t, q, seqDocs("c", 0, 5)...)
	if n := len(segFiles(t, dir)); n < 4 {
		t.Fatalf("%d segments, want at least 4", n)
	}
	d := q.Detail()
	if d.Records != 16 || d.Pending != 16 || d.Segments != len(segFiles(t, dir)) || d.Oldest.IsZero() {
		t.Errorf("Detail = %+v", d)
	}
	want := append(append(append(seqDocs("a", 0, 5), big), seqDocs("b", 0, 5)...), seqDocs("c", 0, 5)...)
	var got []string
	for len(got) < len(want) {
		got = append(got, popAck(t, q, 3)...)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (len(segFiles(t, dir)) > 1 || q.Detail().Segments > 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("%d segments left after acking everything, want the active one", n)
	}
	if d := q.Detail(); d.Pending != 0 || d.PendingBytes != 0 || !d.Oldest.IsZero() || d.Segments != 1 {
		t.Errorf("Detail after acking everything = %+v", d)
	}
}

func TestDetailOldest(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	q, _ := openQ(t, t.TempDir(), Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }, hooks: fastHooks})
	push(t, q, "a", "b")
	clock.Add(int64(time.Minute))
	push(t, q, "c")
	if got := q.Detail().Oldest; !got.Equal(now) {
		t.Errorf("Oldest = %v, want %v", got, now)
	}
	popAck(t, q, 2)
	if got := q.Detail().Oldest; !got.Equal(now.Add(time.Minute)) {
		t.Errorf("Oldest after ack = %v, want %v", got, now.Add(time.Minute))
	}
}

func TestAcksOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, dir, Options{hooks: fastHooks})
	push(t, q, seqDocs("n", 0, 6)...)
	ctx := context.Background()
	lim := queue.Limits{MaxEvents: 2, MaxBytes: 1 << 20}
	l1, _ := q.Pop(ctx, lim)
	l2, _ := q.Pop(ctx, lim)
	l3, _ := q.Pop(ctx, lim)
	l3.Ack()
	l2.Ack()
	if st := q.Stats(); st.Events != 6 {
		t.Errorf("Stats = %+v: only the acked prefix counts", st)
	}
	q.Close()
	got, _ := pending(t, dir)
	if d := cmp.Diff(seqDocs("n", 0, 6), got); d != "" {
		t.Errorf("the first lease was not acked: everything comes back (-want +got):\n%s", d)
	}
	_ = l1 // never acked
}

func TestAckAfterClosePersists(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, dir, Options{})
	push(t, q, seqDocs("n", 0, 4)...)
	q.Close()
	l, err := q.Pop(context.Background(), queue.Limits{MaxEvents: 3, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	l.Ack()
	got, _ := pending(t, dir)
	if d := cmp.Diff(seqDocs("n", 3, 4), got); d != "" {
		t.Error(d)
	}
}

func TestWhenFullDrop(t *testing.T) {
	q, _ := openQ(t, t.TempDir(), Options{MaxBytes: 40, WhenFullDrop: true, hooks: fastHooks})
	push(t, q, "0123456789") // 26 bytes on disk
	if err := q.Push(context.Background(), batch("0123456789")); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
	if st := q.Stats(); st.Events != 1 || st.Bytes != 26 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	openQ(t, dir, Options{hooks: fastHooks})
	if _, _, err := Open(dir, Options{MaxBytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want in use", err)
	}
	if _, err := Repair(dir); err == nil {
		t.Fatal("Repair of an open queue succeeded")
	}
}

func TestGroupCommit(t *testing.T) {
	var syncs atomic.Int64
	h := &hooks{sync: func(f *os.File) error {
		syncs.Add(1)
		time.Sleep(time.Millisecond) // a disk a little slower than this one
		return f.Sync()
	}}
	q, _ := openQ(t, t.TempDir(), Options{hooks: h})
	const pushers, each = 16, 40
	before := syncs.Load()
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for i := range each {
				if err := q.Push(context.Background(), batch(fmt.Sprintf("%d:%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := syncs.Load() - before
	t.Logf("%d pushes, %d fsyncs", pushers*each, n)
	if n > pushers*each/4 {
		t.Errorf("%d fsyncs for %d concurrent pushes: no group commit", n, pushers*each)
	}
}
