// Package stdout implements a sink that writes events to a writer, standard
// output in production, as NDJSON or as indented JSON for reading by eye. It
// is meant for trying alertrelay out and for debugging pipelines.
package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// Config configures a stdout sink.
type Config struct {
	// Pretty writes each document indented over several lines (two-space
	// indent, followed by a newline) instead of one document per line.
	Pretty bool `yaml:"pretty"`
}

// SetDefaults does nothing: the zero Config (NDJSON) is the default. It
// exists for uniformity with the other sinks.
func (c *Config) SetDefaults() {}

// Validate returns nil: every Config is valid. It exists for uniformity with
// the other sinks.
func (c *Config) Validate() []error { return nil }

// SyncWriter serialises Write calls to w. Sinks that share one output (every
// stdout sink of a daemon shares os.Stdout) share one SyncWriter, and since
// each sink writes a batch in a single call their lines never interleave.
type SyncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSyncWriter wraps w.
func NewSyncWriter(w io.Writer) *SyncWriter { return &SyncWriter{w: w} }

// Write writes p to the underlying writer under the lock.
func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Sink writes batches to an io.Writer. It implements pipeline.Sink.
//
// Each batch is formatted into a buffer and handed to the writer in a single
// Write call; sinks that share a writer must share a SyncWriter. Write returns once
// the writer has accepted the bytes; the sink neither buffers nor syncs.
type Sink struct {
	pretty bool
	w      io.Writer

	mu  sync.Mutex   // guards buf
	buf bytes.Buffer // reused between batches
}

// New returns a sink writing to w (os.Stdout in production). The sink does
// not close w. deps is accepted for uniformity and not used.
func New(cfg Config, w io.Writer, deps pipeline.Deps) *Sink {
	return &Sink{pretty: cfg.Pretty, w: w}
}

// Write writes every document of b: followed by '\n' (NDJSON), or indented
// by json.Indent and followed by '\n' when Pretty is set. An error from the
// writer is returned as is (retryable), in which case part of the batch may
// have been written. With Pretty, a document that is not valid JSON is left
// out and reported in a *pipeline.PartialError as permanent; the others are
// written.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	if !s.pretty {
		if _, err := s.w.Write(b.NDJSON()); err != nil {
			return fmt.Errorf("stdout sink: %w", err)
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	s.buf.Reset()
	var items []pipeline.ItemError
	if s.pretty {
		for i := range b.Len() {
			n := s.buf.Len()
			if err := json.Indent(&s.buf, b.Doc(i), "", "  "); err != nil {
				s.buf.Truncate(n)
				items = append(items, pipeline.ItemError{Index: i, Err: fmt.Errorf("stdout sink: indenting: %w", err), Permanent: true})
				continue
			}
			s.buf.WriteByte('\n')
		}
	} else {
		s.buf.Write(b.NDJSON())
	}

	if s.buf.Len() > 0 {
		_, err := s.w.Write(s.buf.Bytes())
		if err != nil {
			return fmt.Errorf("stdout sink: %w", err)
		}
	}
	if items != nil {
		return &pipeline.PartialError{Items: items}
	}
	return nil
}

// Close does nothing and returns nil; it does not close the writer. It is
// idempotent, and Write keeps working after it.
func (s *Sink) Close(ctx context.Context) error { return nil }

var _ pipeline.Sink = (*Sink)(nil)
