package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// doc returns a JSON document of exactly n bytes (n >= 10).
func doc(i, n int) string {
	s := fmt.Sprintf(`{"i":%d,"p":"`, i)
	return s + strings.Repeat("x", n-len(s)-2) + `"}`
}

func testConfig(t *testing.T) Config {
	t.Helper()
	c := Config{Path: filepath.Join(t.TempDir(), "sub", "dir", "alerts.ndjson")}
	c.SetDefaults()
	return c
}

func mustNew(t *testing.T, cfg Config, o ops) *Sink {
	t.Helper()
	s, err := newSink(cfg, pipeline.Deps{}, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func mustWrite(t *testing.T, s *Sink, b *event.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteNDJSON(t *testing.T) {
	cfg := testConfig(t)
	s := mustNew(t, cfg, osOps)
	mustWrite(t, s, sinktest.Batch(`{"a":1}`, `{"b":"two"}`))
	mustWrite(t, s, sinktest.Batch[string]()) // empty batch: nothing written
	mustWrite(t, s, sinktest.Batch(`{"c":[3]}`))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "{\"a\":1}\n{\"b\":\"two\"}\n{\"c\":[3]}\n"
	if diff := cmp.Diff(want, readFile(t, cfg.Path)); diff != "" {
		t.Errorf("file content (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("mode = %o, want 640", got)
	}
	di, err := os.Stat(filepath.Dir(cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got&0o700 != 0o700 {
		t.Errorf("dir mode = %o, want owner rwx", got)
	}
}

func TestModeIgnoresUmask(t *testing.T) {
	cfg := testConfig(t)
	cfg.Mode = "0666" // a typical umask (022) would turn this into 0644
	s := mustNew(t, cfg, osOps)
	_ = s.Close(context.Background())
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o666 {
		t.Errorf("mode = %o, want 666", got)
	}
}

func TestRotation(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4096
	cfg.MaxFiles = 3
	s := mustNew(t, cfg, osOps)

	// Each batch is 2 documents of 999 bytes + 2 newlines = 2000 bytes, so
	// each file holds exactly 2 batches (4000 bytes; a third would make 6000).
	const batches = 11
	for i := range batches {
		mustWrite(t, s, sinktest.Batch(doc(2*i, 999), doc(2*i+1, 999)))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Dir(cfg.Path)
	base := filepath.Base(cfg.Path)
	if diff := cmp.Diff([]string{base, base + ".1", base + ".2"}, listDir(t, dir)); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	// Batches 0..10 went to files of 2 batches: [0 1] [2 3] [4 5] [6 7] [8 9] [10].
	wantFile := func(batchIdx ...int) string {
		var sb strings.Builder
		for _, bi := range batchIdx {
			sb.WriteString(doc(2*bi, 999) + "\n" + doc(2*bi+1, 999) + "\n")
		}
		return sb.String()
	}
	for name, want := range map[string]string{
		cfg.Path:        wantFile(10),
		cfg.Path + ".1": wantFile(8, 9),
		cfg.Path + ".2": wantFile(6, 7),
	} {
		if diff := cmp.Diff(want, readFile(t, name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", filepath.Base(name), diff)
		}
	}
}

func TestRotationNeverSplitsBatch(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4096
	cfg.MaxFiles = 1024
	s := mustNew(t, cfg, osOps)

	// Batches of varied sizes, some larger than MaxBytes.
	sizes := []int{1, 3, 7, 2, 20, 1, 5, 9, 4, 1, 1, 12}
	var all []string
	n := 0
	for _, k := range sizes {
		var docs []string
		for range k {
			docs = append(docs, doc(n, 300))
			n++
		}
		all = append(all, docs...)
		mustWrite(t, s, sinktest.Batch(docs...))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// batchEnd[k] is the number of documents written by the end of the
	// batch that ends there.
	batchEnd := map[int]int{}
	c := 0
	for i, k := range sizes {
		c += k
		batchEnd[c] = i
	}

	// Read the files oldest first: each must end on a batch boundary, and a
	// file past MaxBytes must hold a single batch.
	names := listDir(t, filepath.Dir(cfg.Path))
	var got []string
	prevEnd := 0
	for i := len(names) - 1; i >= 0; i-- {
		p := cfg.Path
		if i > 0 {
			p = fmt.Sprintf("%s.%d", cfg.Path, i)
		}
		content := readFile(t, p)
		got = append(got, strings.Split(strings.TrimSuffix(content, "\n"), "\n")...)
		end := len(got)
		bi, ok := batchEnd[end]
		if !ok {
			t.Errorf("%s ends after document %d, inside a batch", p, end)
			continue
		}
		if len(content) > int(cfg.MaxBytes) && end-prevEnd != sizes[bi] {
			t.Errorf("%s has %d bytes, more than MaxBytes, but holds more than one batch", p, len(content))
		}
		prevEnd = end
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Fatalf("documents across files (-want +got):\n%s", diff)
	}
	if len(names) < 5 {
		t.Errorf("only %d files: the test does not exercise rotation much", len(names))
	}
}

func TestMaxFilesOne(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4096
	cfg.MaxFiles = 1
	s := mustNew(t, cfg, osOps)
	for i := range 5 {
		mustWrite(t, s, sinktest.Batch(doc(i, 3000)))
	}
	_ = s.Close(context.Background())
	if diff := cmp.Diff([]string{filepath.Base(cfg.Path)}, listDir(t, filepath.Dir(cfg.Path))); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(doc(4, 3000)+"\n", readFile(t, cfg.Path)); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
}

func TestMaxBytesZeroNeverRotates(t *testing.T) {
	cfg := Config{Path: filepath.Join(t.TempDir(), "a.ndjson"), MaxBytes: 0, MaxFiles: 2, Mode: "0600"}
	s := mustNew(t, cfg, osOps)
	for i := range 10 {
		mustWrite(t, s, sinktest.Batch(doc(i, 1000)))
	}
	_ = s.Close(context.Background())
	if got := listDir(t, filepath.Dir(cfg.Path)); len(got) != 1 {
		t.Errorf("files = %v, want only the active one", got)
	}
}

func TestRotationRemovesFilesBeyondMaxFiles(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4096
	cfg.MaxFiles = 2
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		t.Fatal(err)
	}
	// Left over from an earlier max_files: 5.
	for i := 1; i <= 4; i++ {
		if err := os.WriteFile(fmt.Sprintf("%s.%d", cfg.Path, i), []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := mustNew(t, cfg, osOps)
	mustWrite(t, s, sinktest.Batch(doc(0, 3000)))
	mustWrite(t, s, sinktest.Batch(doc(1, 3000))) // rotates
	_ = s.Close(context.Background())
	base := filepath.Base(cfg.Path)
	if diff := cmp.Diff([]string{base, base + ".1"}, listDir(t, filepath.Dir(cfg.Path))); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(doc(0, 3000)+"\n", readFile(t, cfg.Path+".1")); diff != "" {
		t.Errorf(".1 (-want +got):\n%s", diff)
	}
}

func TestReopenContinues(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4096
	s := mustNew(t, cfg, osOps)
	mustWrite(t, s, sinktest.Batch(doc(0, 1500)))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = mustNew(t, cfg, osOps)
	if s.size != 1501 {
		t.Errorf("size after reopen = %d, want 1501", s.size)
	}
	mustWrite(t, s, sinktest.Batch(doc(1, 1500))) // 3002 bytes: fits
	mustWrite(t, s, sinktest.Batch(doc(2, 1500))) // 4503 bytes: rotates first
	_ = s.Close(context.Background())
	if diff := cmp.Diff(doc(0, 1500)+"\n"+doc(1, 1500)+"\n", readFile(t, cfg.Path+".1")); diff != "" {
		t.Errorf(".1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(doc(2, 1500)+"\n", readFile(t, cfg.Path)); diff != "" {
		t.Errorf("active (-want +got):\n%s", diff)
	}
}

func TestReopenTerminatesPartialLine(t *testing.T) {
	cfg := testConfig(t)
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path, []byte("{\"a\":1}\n{\"b\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, cfg, osOps)
	mustWrite(t, s, sinktest.Batch(`{"c":3}`))
	_ = s.Close(context.Background())
	want := "{\"a\":1}\n{\"b\":\n{\"c\":3}\n"
	if diff := cmp.Diff(want, readFile(t, cfg.Path)); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
	// The existing file keeps its permissions.
	fi, _ := os.Stat(cfg.Path)
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %o, want 600 (unchanged)", got)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{}, pipeline.Deps{}); err == nil {
		t.Error("New with invalid config: want error")
	}
	cfg := Config{Path: dir, MaxFiles: 1, Mode: "0600"}
	s, err := New(cfg, pipeline.Deps{})
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("New on a directory: err = %v, want error naming the path", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close after failed New: %v", err)
	}
	cfg.Path = "/dev/null"
	if _, err := New(cfg, pipeline.Deps{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("New on /dev/null: err = %v, want not a regular file", err)
	}
}

// countingOps counts fsyncs.
func countingOps(n *atomic.Int64) ops {
	o := osOps
	o.sync = func(f *os.File) error { n.Add(1); return f.Sync() }
	return o
}

func TestSyncIntervalZero(t *testing.T) {
	var syncs atomic.Int64
	cfg := testConfig(t)
	cfg.SyncInterval = 0
	s := mustNew(t, cfg, countingOps(&syncs))
	if s.done != nil {
		t.Error("sync goroutine started with SyncInterval 0")
	}
	for i := range 3 {
		mustWrite(t, s, sinktest.Batch(doc(i, 100)))
		if got := syncs.Load(); got != int64(i+1) {
			t.Fatalf("after write %d: %d fsyncs, want %d", i+1, got, i+1)
		}
	}
}

func TestSyncFailureIsRetryable(t *testing.T) {
	cfg := testConfig(t)
	cfg.SyncInterval = 0
	o := osOps
	o.sync = func(*os.File) error { return syscall.EIO }
	s := mustNew(t, cfg, o)
	err := s.Write(context.Background(), sinktest.Batch(`{}`))
	if !errors.Is(err, syscall.EIO) || pipeline.IsPermanent(err) {
		t.Errorf("err = %v, want retryable EIO", err)
	}
}

func TestSyncLoop(t *testing.T) {
	var syncs atomic.Int64
	cfg := testConfig(t)
	cfg.SyncInterval = 5 * time.Millisecond
	s := mustNew(t, cfg, countingOps(&syncs))

	time.Sleep(30 * time.Millisecond)
	if got := syncs.Load(); got != 0 {
		t.Errorf("%d fsyncs without writes, want 0", got)
	}
	mustWrite(t, s, sinktest.Batch(`{"a":1}`))
	deadline := time.Now().Add(5 * time.Second)
	for syncs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fsync after a write")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	if got := syncs.Load(); got != 1 {
		t.Errorf("%d fsyncs after one write, want 1", got)
	}
}

func TestCloseIdempotentAndWriteAfterClose(t *testing.T) {
	cfg := testConfig(t)
	s := mustNew(t, cfg, osOps)
	mustWrite(t, s, sinktest.Batch(`{}`))
	for range 3 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	err := s.Write(context.Background(), sinktest.Batch(`{}`))
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: err = %v, want os.ErrClosed", err)
	}
	if pipeline.IsPermanent(err) {
		t.Error("Write after Close: error is permanent")
	}
	var nilSink *Sink
	if err := nilSink.Close(context.Background()); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

func TestWriteCanceledContext(t *testing.T) {
	s := mustNew(t, testConfig(t), osOps)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, sinktest.Batch(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestConcurrentClose runs writes, the sync goroutine and several Close calls
// at once; run with -race.
func TestConcurrentClose(t *testing.T) {
	for range 20 {
		cfg := testConfig(t)
		cfg.SyncInterval = 100 * time.Microsecond
		cfg.MaxBytes = 8192
		s := mustNew(t, cfg, osOps)
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				if err := s.Write(context.Background(), sinktest.Batch(doc(i, 1000))); err != nil {
					if !errors.Is(err, os.ErrClosed) {
						t.Errorf("Write: %v", err)
					}
					return
				}
			}
		})
		time.Sleep(2 * time.Millisecond)
		for range 3 {
			wg.Go(func() {
				if err := s.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
	}
}

func TestWriteFailureLeavesNoPartialLine(t *testing.T) {
	cfg := testConfig(t)
	var fail atomic.Bool
	o := osOps
	o.write = func(f *os.File, p []byte) (int, error) {
		if !fail.Load() {
			return f.Write(p)
		}
		n, err := f.Write(p[:len(p)/2+1]) // half a batch, ending mid-line
		if err != nil {
			return n, err
		}
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	s := mustNew(t, cfg, o)
	mustWrite(t, s, sinktest.Batch(`{"a":1}`))

	fail.Store(true)
	err := s.Write(context.Background(), sinktest.Batch(`{"b":2}`, `{"c":3}`, `{"d":4}`))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	if pipeline.IsPermanent(err) {
		t.Error("ENOSPC reported as permanent")
	}
	if !strings.Contains(err.Error(), cfg.Path) {
		t.Errorf("error %q does not name the path", err)
	}
	if diff := cmp.Diff("{\"a\":1}\n", readFile(t, cfg.Path)); diff != "" {
		t.Fatalf("after failed write (-want +got):\n%s", diff)
	}

	fail.Store(false)
	mustWrite(t, s, sinktest.Batch(`{"b":2}`, `{"c":3}`, `{"d":4}`)) // the retry
	want := "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n"
	if diff := cmp.Diff(want, readFile(t, cfg.Path)); diff != "" {
		t.Errorf("after retry (-want +got):\n%s", diff)
	}
}

func TestTruncateFailureRetriedBeforeNextWrite(t *testing.T) {
	cfg := testConfig(t)
	var fail atomic.Bool
	o := osOps
	o.write = func(f *os.File, p []byte) (int, error) {
		if !fail.Load() {
			return f.Write(p)
		}
		n, _ := f.Write(p[:3])
		return n, syscall.EIO
	}
	o.truncate = func(f *os.File, size int64) error {
		if fail.Load() {
			return syscall.EIO
		}
		return f.Truncate(size)
	}
	s := mustNew(t, cfg, o)
	mustWrite(t, s, sinktest.Batch(`{"a":1}`))
	fail.Store(true)
	if err := s.Write(context.Background(), sinktest.Batch(`{"b":2}`)); err == nil {
		t.Fatal("want error")
	}
	if diff := cmp.Diff("{\"a\":1}\n{\"b", readFile(t, cfg.Path)); diff != "" {
		t.Fatalf("partial write expected on disk (-want +got):\n%s", diff)
	}
	// Still failing: the pending truncation fails and nothing is written.
	if err := s.Write(context.Background(), sinktest.Batch(`{"b":2}`)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want EIO", err)
	}
	fail.Store(false)
	mustWrite(t, s, sinktest.Batch(`{"b":2}`))
	if diff := cmp.Diff("{\"a\":1}\n{\"b\":2}\n", readFile(t, cfg.Path)); diff != "" {
		t.Errorf("after recovery (-want +got):\n%s", diff)
	}
}

func TestRotationFailureIsRetried(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 4096
	cfg.MaxFiles = 3
	var fail atomic.Bool
	o := osOps
	o.sync = func(f *os.File) error {
		if fail.Load() {
			return syscall.EIO
		}
		return f.Sync()
	}
	s := mustNew(t, cfg, o)
	mustWrite(t, s, sinktest.Batch(doc(0, 3000)))
	fail.Store(true)
	if err := s.Write(context.Background(), sinktest.Batch(doc(1, 3000))); !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want EIO from the pre-rotation fsync", err)
	}
	fail.Store(false)
	mustWrite(t, s, sinktest.Batch(doc(1, 3000)))
	if diff := cmp.Diff(doc(0, 3000)+"\n", readFile(t, cfg.Path+".1")); diff != "" {
		t.Errorf(".1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(doc(1, 3000)+"\n", readFile(t, cfg.Path)); diff != "" {
		t.Errorf("active (-want +got):\n%s", diff)
	}
}

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{MaxBytes: 100 << 20, MaxFiles: 10, SyncInterval: time.Second, Mode: "0640"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	valid := Config{Path: "/var/log/a.ndjson"}
	valid.SetDefaults()
	tests := []struct {
		name   string
		mod    func(*Config)
		fields []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"never rotate, sync every write", func(c *Config) { c.MaxBytes = 0; c.SyncInterval = 0 }, nil},
		{"mode without leading zero", func(c *Config) { c.Mode = "600" }, nil},
		{"min max_bytes", func(c *Config) { c.MaxBytes = 4096 }, nil},
		{"max_files 1", func(c *Config) { c.MaxFiles = 1 }, nil},
		{"no path", func(c *Config) { c.Path = "" }, []string{"path"}},
		{"directory path", func(c *Config) { c.Path = "/var/log/" }, []string{"path"}},
		{"small max_bytes", func(c *Config) { c.MaxBytes = 4095 }, []string{"max_bytes"}},
		{"negative max_bytes", func(c *Config) { c.MaxBytes = -1 }, []string{"max_bytes"}},
		{"max_files 0", func(c *Config) { c.MaxFiles = 0 }, []string{"max_files"}},
		{"max_files huge", func(c *Config) { c.MaxFiles = 1025 }, []string{"max_files"}},
		{"negative sync", func(c *Config) { c.SyncInterval = -time.Second }, []string{"sync_interval"}},
		{"mode not octal", func(c *Config) { c.Mode = "0689" }, []string{"mode"}},
		{"mode too big", func(c *Config) { c.Mode = "01777" }, []string{"mode"}},
		{"mode symbolic", func(c *Config) { c.Mode = "rw-r-----" }, []string{"mode"}},
		{"mode not owner-writable", func(c *Config) { c.Mode = "0440" }, []string{"mode"}},
		{"mode empty", func(c *Config) { c.Mode = "" }, []string{"mode"}},
		{"everything", func(c *Config) { *c = Config{MaxBytes: 1, SyncInterval: -1} },
			[]string{"path", "max_bytes", "max_files", "sync_interval", "mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mod(&c)
			var fields []string
			for _, err := range c.Validate() {
				var fe *config.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v is not a *config.FieldError", err)
				}
				fields = append(fields, fe.Field)
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func benchBatch() *event.Batch {
	b := event.NewBatch(1000, 500)
	for i := range 1000 {
		b.Append([]byte(doc(i, 500)))
	}
	return b
}

// BenchmarkWrite writes batches of 1000 documents of 500 bytes. Rotation at
// 128 MiB with MaxFiles 2 bounds the disk space used; its cost is amortised
// over ~260 writes.
func BenchmarkWrite(b *testing.B) {
	cfg := Config{Path: filepath.Join(b.TempDir(), "bench.ndjson"), MaxBytes: 128 << 20, MaxFiles: 2}
	cfg.SetDefaults()
	s, err := New(cfg, pipeline.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	batch := benchBatch()
	ctx := context.Background()
	if err := s.Write(ctx, batch); err != nil { // grow the buffer
		b.Fatal(err)
	}
	b.SetBytes(int64(batch.Size() + batch.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
