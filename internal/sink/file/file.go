// Package file implements a sink that appends events as NDJSON to a local
// file, with size-based rotation and periodic fsync, for a SIEM agent
// (Filebeat, Splunk UF, Vector...) to tail.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// ops are the file operations the sink performs on the active file; tests
// replace them to inject failures.
type ops struct {
	write    func(f *os.File, p []byte) (int, error)
	truncate func(f *os.File, size int64) error
	sync     func(f *os.File) error
}

var osOps = ops{
	write:    (*os.File).Write,
	truncate: (*os.File).Truncate,
	sync:     (*os.File).Sync,
}

// Sink appends batches to a file as NDJSON: each document followed by '\n'.
// It implements pipeline.Sink.
//
// Delivery guarantee: Write returns nil once the whole batch has been handed
// to the kernel with write(2). The data is then in the OS page cache: it
// survives a crash of alertrelay, but not a power cut or kernel crash until
// the next fsync. With SyncInterval > 0 a goroutine owned by the Sink fsyncs
// every SyncInterval if anything was written since the last fsync, so at most
// about SyncInterval of acknowledged data is at risk; with SyncInterval 0
// Write fsyncs before returning and nothing acknowledged is at risk. Rotation
// and Close always fsync the file, and rotation fsyncs the directory too.
//
// Atomicity: a batch is written with one Write call on the file (a single
// write(2) unless the kernel writes it short) and is never split across two
// files. If the write fails half-way (ENOSPC, EIO...), the file is truncated
// back to its size before the write, so a retry never leaves a partial line;
// if even that truncation fails, the next Write retries it before writing. A
// partial line left by a crash (no trailing newline when the file is opened)
// is terminated with '\n' rather than deleted, since its origin is unknown.
//
// Rotation (MaxBytes > 0): before writing a batch that would take a non-empty
// file past MaxBytes, the sink fsyncs and closes it, deletes the oldest
// rotated file, renames Path.N to Path.N+1 (N = MaxFiles-2 ... 1) and Path to
// Path.1, and opens a new Path. MaxFiles counts the active file: at most
// MaxFiles files exist, Path being the newest and Path.<MaxFiles-1> the
// oldest. A batch larger than MaxBytes is written whole to an empty file, so
// a file exceeds MaxBytes only when it holds a single batch.
//
// Errors: every I/O error (write, fsync, rotation, reopening) is retryable,
// never pipeline.Permanent: the batch stays queued until the disk recovers.
type Sink struct {
	path     string
	perm     fs.FileMode
	maxBytes int64
	maxFiles int
	interval time.Duration
	log      *slog.Logger
	ops      ops

	mu       sync.Mutex
	f        *os.File // nil when closed or when reopening after rotation failed
	size     int64    // bytes in f known to be complete lines
	torn     bool     // f may hold a partial batch past size; truncate before writing
	unsynced bool     // written since the last fsync
	closed   bool

	stop chan struct{} // closed by Close to stop the sync goroutine
	done chan struct{} // closed when the sync goroutine has exited; nil if none
}

// New opens (creating it and its parent directories if needed) the file at
// cfg.Path for appending, continuing an existing file and its size, and
// starts the fsync goroutine when cfg.SyncInterval > 0. cfg must have been
// through SetDefaults; New returns an error if it fails Validate. deps.Log
// may be nil.
//
// On error New returns a nil *Sink, on which Close is a harmless no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	return newSink(cfg, deps, osOps)
}

func newSink(cfg Config, deps pipeline.Deps, o ops) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("file sink: invalid config: %w", errors.Join(errs...))
	}
	perm, _ := parseMode(cfg.Mode) // validated above
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		path:     cfg.Path,
		perm:     perm,
		maxBytes: cfg.MaxBytes,
		maxFiles: cfg.MaxFiles,
		interval: cfg.SyncInterval,
		log:      log.With("component", "sink", "path", cfg.Path),
		ops:      o,
		stop:     make(chan struct{}),
	}
	if err := os.MkdirAll(filepath.Dir(s.path), dirPerm(perm)); err != nil {
		return nil, s.wrap(err)
	}
	if err := s.openLocked(); err != nil {
		return nil, err
	}
	s.log.Info("opened file", "size", s.size)
	if s.interval > 0 {
		s.done = make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// Write appends every document of b, each followed by '\n', to the file. See
// the type's documentation for the durability and atomicity guarantees.
// After Close it returns an error wrapping os.ErrClosed.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("file sink %s: %w", s.path, os.ErrClosed)
	}
	if b.Len() == 0 {
		return nil
	}
	if s.torn {
		if err := s.ops.truncate(s.f, s.size); err != nil {
			return s.wrap(err)
		}
		s.torn = false
		s.log.Info("removed partial write", "size", s.size)
	}
	if s.f == nil {
		if err := s.openLocked(); err != nil {
			return err
		}
	}
	n := int64(b.Size())
	if s.maxBytes > 0 && s.size > 0 && s.size+n > s.maxBytes {
		if err := s.rotateLocked(); err != nil {
			return err
		}
	}

	w, err := s.ops.write(s.f, b.NDJSON()) // the batch is NDJSON already: no copy
	if err != nil {
		if w > 0 {
			if terr := s.ops.truncate(s.f, s.size); terr != nil {
				s.torn = true
				s.log.Error("could not remove partial write; will retry before the next write",
					"size", s.size, "written", w, "error", terr)
			}
		}
		return s.wrap(err)
	}
	s.size += int64(w)
	s.unsynced = true
	if s.interval == 0 {
		if err := s.ops.sync(s.f); err != nil {
			return s.wrap(err)
		}
		s.unsynced = false
	}
	return nil
}

// Close stops the fsync goroutine, fsyncs and closes the file. It is
// idempotent, safe to call concurrently with Write and the fsync goroutine,
// and safe on the nil *Sink returned by a failed New. ctx is not consulted:
// an fsync cannot be interrupted.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	close(s.stop)
	if s.done != nil {
		<-s.done
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	var errs []error
	if s.torn {
		if err := s.ops.truncate(s.f, s.size); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.ops.sync(s.f); err != nil {
		errs = append(errs, err)
	}
	if err := s.f.Close(); err != nil {
		errs = append(errs, err)
	}
	s.f = nil
	if err := errors.Join(errs...); err != nil {
		return s.wrap(err)
	}
	s.log.Info("closed file", "size", s.size)
	return nil
}

// syncLoop fsyncs every interval if there were writes since the last fsync.
func (s *Sink) syncLoop() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.syncIfDirty()
		}
	}
}

// syncIfDirty fsyncs outside the lock so that Write is not held up by a slow
// disk. *os.File serialises the fd's lifetime itself: if rotation or Close
// closes f meanwhile, they have fsynced it first.
func (s *Sink) syncIfDirty() {
	s.mu.Lock()
	f := s.f
	if f == nil || !s.unsynced {
		s.mu.Unlock()
		return
	}
	s.unsynced = false
	s.mu.Unlock()

	err := s.ops.sync(f)
	if err == nil {
		return
	}
	s.mu.Lock()
	stillOpen := s.f == f
	if stillOpen {
		s.unsynced = true
	}
	s.mu.Unlock()
	if stillOpen {
		// Data acknowledged since the last fsync may be lost (on Linux a
		// failed fsync can drop the dirty pages); nothing can be retried.
		s.log.Error("fsync failed", "error", err)
	}
}

// openLocked opens s.path for appending and sets s.f and s.size.
func (s *Sink) openLocked() error {
	f, created, err := openFile(s.path, s.perm)
	if err != nil {
		return s.wrap(err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("file sink %s: not a regular file (%s)", s.path, fi.Mode().Type())
	}
	if err != nil {
		_ = f.Close()
		return s.wrap(err)
	}
	size := fi.Size()
	if size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			_ = f.Close()
			return s.wrap(err)
		}
		if last[0] != '\n' {
			// A crash interrupted a write. Terminate the partial line so the
			// next document starts on a line of its own.
			if _, err := f.Write([]byte{'\n'}); err != nil {
				_ = f.Close()
				return s.wrap(err)
			}
			size++
			s.log.Warn("terminated partial last line left by a crash", "size", size)
		}
	}
	if created {
		s.syncDir()
	}
	s.f, s.size, s.torn = f, size, false
	return nil
}

// rotateLocked fsyncs and closes the active file, shifts the rotated files
// and opens a new active file.
func (s *Sink) rotateLocked() error {
	if err := s.ops.sync(s.f); err != nil {
		return s.wrap(err) // nothing changed; the next Write tries again
	}
	s.unsynced = false
	if err := s.f.Close(); err != nil {
		s.log.Warn("closing file before rotation failed", "error", err)
	}
	s.f = nil
	oldSize := s.size
	shiftErr := s.shift()
	s.syncDir()
	if err := s.openLocked(); err != nil {
		return errors.Join(shiftErr, err)
	}
	if shiftErr != nil {
		// Path was reopened as it was if it could not be renamed; the next
		// Write rotates again.
		return shiftErr
	}
	s.log.Info("rotated file", "rotated_size", oldSize, "max_files", s.maxFiles)
	return nil
}

// shift deletes the oldest rotated file (and any left beyond MaxFiles by an
// earlier, larger setting) and renames the others one step older.
func (s *Sink) shift() error {
	keep := s.maxFiles - 1 // rotated files kept
	if keep == 0 {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.wrap(err)
		}
		return nil
	}
	for n := keep; ; n++ {
		err := os.Remove(s.rotated(n))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return s.wrap(err)
		}
	}
	for n := keep - 1; n >= 1; n-- {
		if err := os.Rename(s.rotated(n), s.rotated(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.wrap(err)
		}
	}
	if err := os.Rename(s.path, s.rotated(1)); err != nil {
		return s.wrap(err)
	}
	return nil
}

func (s *Sink) rotated(n int) string { return s.path + "." + strconv.Itoa(n) }

// syncDir fsyncs the parent directory so that a created or renamed file
// survives a power cut. Failure is logged: some filesystems do not support
// it, and the data itself is already safe.
func (s *Sink) syncDir() {
	d, err := os.Open(filepath.Dir(s.path))
	if err == nil {
		err = d.Sync()
		_ = d.Close()
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		s.log.Warn("fsync of directory failed", "dir", filepath.Dir(s.path), "error", err)
	}
}

// wrap prefixes err with the sink and, unless err already names it, the path.
func (s *Sink) wrap(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) || errors.As(err, &le) {
		return fmt.Errorf("file sink: %w", err)
	}
	return fmt.Errorf("file sink %s: %w", s.path, err)
}

// openFile opens path for reading and appending. A file it creates gets
// exactly perm, regardless of the umask.
func openFile(path string, perm fs.FileMode) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, perm)
	if err == nil {
		if err := f.Chmod(perm); err != nil {
			_ = f.Close()
			return nil, false, err
		}
		return f, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	return f, false, err
}

// dirPerm derives the permission of created directories from the file's:
// search permission wherever there is read permission (0640 -> 0750).
func dirPerm(perm fs.FileMode) fs.FileMode {
	return perm | (perm&0o444)>>2
}

var _ pipeline.Sink = (*Sink)(nil)
