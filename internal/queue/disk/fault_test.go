package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// failingDisk is a write seam that accepts budget more bytes, then writes
// what is left of the budget and fails with ENOSPC. A negative budget is
// unlimited.
type failingDisk struct {
	budget       atomic.Int64
	truncFails   atomic.Int64 // truncations to fail
	syncFails    atomic.Int64 // fsyncs of segment files to fail
	writes, errs atomic.Int64
}

func newFailingDisk() *failingDisk {
	d := &failingDisk{}
	d.budget.Store(-1)
	return d
}

func (d *failingDisk) hooks() *hooks {
	return &hooks{
		writeAt: func(f *os.File, p []byte, off int64) (int, error) {
			d.writes.Add(1)
			b := d.budget.Load()
			if b < 0 || int64(len(p)) <= b {
				if b >= 0 {
					d.budget.Add(-int64(len(p)))
				}
				return f.WriteAt(p, off)
			}
			d.errs.Add(1)
			n, _ := f.WriteAt(p[:b], off)
			d.budget.Store(0)
			return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		},
		truncate: func(f *os.File, size int64) error {
			if d.truncFails.Add(-1) >= 0 {
				return &fs.PathError{Op: "truncate", Path: f.Name(), Err: syscall.EIO}
			}
			return f.Truncate(size)
		},
		sync: func(f *os.File) error {
			if strings.HasSuffix(f.Name(), segSuffix) && d.syncFails.Add(-1) >= 0 {
				return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
			}
			return nil
		},
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestWriteFailureLeavesNoPartialRecord(t *testing.T) {
	for _, truncFails := range []int64{0, 1} {
		t.Run(fmt.Sprintf("truncationFails=%d", truncFails), func(t *testing.T) {
			fd := newFailingDisk()
			dir := t.TempDir()
			q, _ := openQ(t, dir, Options{hooks: fd.hooks()})
			seg := filepath.Join(dir, segName(1))
			push(t, q, "a0", "a1", "a2")
			if got := popAck(t, q, 1); !cmp.Equal(got, []string{"a0"}) {
				t.Fatal(got)
			}
			good := fileSize(t, seg)

			fd.budget.Store(25) // one record and a half
			fd.truncFails.Store(truncFails)
			err := q.Push(context.Background(), batch("b0-xxxxxx", "b1-xxxxxx", "b2-xxxxxx"))
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Push = %v, want ENOSPC", err)
			}
			if truncFails == 0 && fileSize(t, seg) != good {
				t.Fatalf("segment is %d bytes after the failed write, want %d", fileSize(t, seg), good)
			}
			if err := q.Push(context.Background(), batch("c0")); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Push with no space = %v", err)
			}
			if st := q.Stats(); st.Events != 2 {
				t.Errorf("Stats = %+v, want the 2 unacked", st)
			}

			fd.budget.Store(-1) // space again
			push(t, q, "d0", "d1")
			if fileSize(t, seg) != good+2*(headerSize+2) {
				t.Errorf("segment is %d bytes, want %d: bytes of the failed writes remain", fileSize(t, seg), good+2*(headerSize+2))
			}
			if v, _ := Verify(dir); v.TornBytes != 0 || v.Corrupt != 0 {
				t.Errorf("Verify = %+v", v)
			}
			want := []string{"a1", "a2", "d0", "d1"}
			if got := rest(t, q); !cmp.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if got, rec := pending(t, dir); !cmp.Equal(got, want) || rec.Damaged() {
				t.Errorf("after reopen got %v, recovery %+v", got, rec)
			}
		})
	}
}

func TestFsyncFailureIsReported(t *testing.T) {
	fd := newFailingDisk()
	dir := t.TempDir()
	q, _ := openQ(t, dir, Options{hooks: fd.hooks()})
	fd.syncFails.Store(1)
	if err := q.Push(context.Background(), batch("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Push = %v, want EIO", err)
	}
	push(t, q, "y")
	// The first batch is in the file: it is delivered (the pusher, told
	// it failed, would retry: a duplicate, never a loss).
	if got := rest(t, q); !cmp.Equal(got, []string{"x", "y"}) {
		t.Errorf("got %v", got)
	}
}

// failingReader fails reads at or past from while broken is set.
type failingReader struct {
	f      *os.File
	from   int64
	broken *atomic.Bool
}

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if r.broken.Load() && off+int64(len(p)) > r.from {
		return 0, &fs.PathError{Op: "read", Path: r.f.Name(), Err: syscall.EIO}
	}
	return r.f.ReadAt(p, off)
}

func TestReadErrorLosesNothing(t *testing.T) {
	var broken atomic.Bool
	docs := seqDocs("n", 0, 6)
	from := 3 * int64(headerSize+len(docs[0])) // records 3.. unreadable
	h := &hooks{sync: fastHooks.sync, reader: func(f *os.File) io.ReaderAt { return failingReader{f, from, &broken} }}
	q, _ := openQ(t, t.TempDir(), Options{hooks: h})
	for _, d := range docs {
		push(t, q, d)
	}
	broken.Store(true)
	ctx := context.Background()
	l, err := q.Pop(ctx, fast)
	if err != nil {
		t.Fatalf("Pop = %v, want the records before the error", err)
	}
	if got := docsOf(l.Batch); !cmp.Equal(got, docs[:3]) {
		t.Fatalf("got %v", got)
	}
	l.Ack()
	if _, err := q.Pop(ctx, fast); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Pop = %v, want EIO", err)
	}
	broken.Store(false)
	if got := popAck(t, q, 100); !cmp.Equal(got, docs[3:]) {
		t.Fatalf("after the disk recovered got %v", got)
	}
}

// TestRealDiskFull fills a 256 KiB tmpfs. It needs root (mount); it is
// skipped elsewhere.
func TestRealDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	dir := filepath.Join(mnt, "q")
	q, _ := openQ(t, dir, Options{SegmentBytes: 24 << 10})
	ctx := context.Background()
	pad := strings.Repeat("x", 1000)
	var want []string
	var err error
	for i := 0; i < 1000; i++ {
		docs := seqDocs(fmt.Sprintf("%d-%s", i, pad), 0, 5)
		if err = q.Push(ctx, batch(docs...)); err != nil {
			break
		}
		want = append(want, docs...)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Push = %v after %d documents, want ENOSPC", err, len(want))
	}
	if v, err := Verify(dir); err != nil || v.TornBytes != 0 || v.Corrupt != 0 || v.Records != len(want) {
		t.Fatalf("Verify on a full disk = %+v, %v: want %d records and no partial one", v, err, len(want))
	}
	var got []string
	for len(got) < len(want) {
		got = append(got, popAck(t, q, 64)...)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	// Acked segments are deleted in the background: space comes back.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = q.Push(ctx, batch("after"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Push after freeing space: %v", err)
	}
	q.Close()
	if got, _ := pending(t, dir); !cmp.Equal(got, []string{"after"}) {
		t.Errorf("after reopen got %v", got)
	}
}
