package stdout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// countingWriter records each Write call separately.
type countingWriter struct {
	calls []string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func TestWriteNDJSON(t *testing.T) {
	var w countingWriter
	s := New(Config{}, &w, pipeline.Deps{})
	ctx := context.Background()
	for _, b := range []*event.Batch{
		sinktest.Batch(`{"a":1}`, `{"b":{"c":[1,2]}}`),
		sinktest.Batch[string](),
		sinktest.Batch(`{"d":"x"}`),
	} {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"{\"a\":1}\n{\"b\":{\"c\":[1,2]}}\n",
		"{\"d\":\"x\"}\n",
	}
	if diff := cmp.Diff(want, w.calls); diff != "" {
		t.Errorf("Write calls (-want +got):\n%s", diff)
	}
}

func TestWritePretty(t *testing.T) {
	var w countingWriter
	s := New(Config{Pretty: true}, &w, pipeline.Deps{})
	if err := s.Write(context.Background(), sinktest.Batch(`{"a":1,"b":{"c":[1,2]}}`, `{}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{`{
  "a": 1,
  "b": {
    "c": [
      1,
      2
    ]
  }
}
{}
`}
	if diff := cmp.Diff(want, w.calls); diff != "" {
		t.Errorf("Write calls (-want +got):\n%s", diff)
	}
}

func TestWritePrettyInvalidDocument(t *testing.T) {
	var w countingWriter
	s := New(Config{Pretty: true}, &w, pipeline.Deps{})
	err := s.Write(context.Background(), sinktest.Batch(`{"a":1}`, `{"broken`, `{"c":3}`))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *pipeline.PartialError", err)
	}
	if len(pe.Items) != 1 || pe.Items[0].Index != 1 || !pe.Items[0].Permanent {
		t.Errorf("items = %+v, want document 1, permanent", pe.Items)
	}
	want := []string{"{\n  \"a\": 1\n}\n{\n  \"c\": 3\n}\n"}
	if diff := cmp.Diff(want, w.calls); diff != "" {
		t.Errorf("Write calls (-want +got):\n%s", diff)
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteError(t *testing.T) {
	s := New(Config{}, failingWriter{}, pipeline.Deps{})
	err := s.Write(context.Background(), sinktest.Batch(`{}`))
	if err == nil || pipeline.IsPermanent(err) {
		t.Errorf("err = %v, want a retryable error", err)
	}
}

func TestWriteCanceledContext(t *testing.T) {
	var buf bytes.Buffer
	s := New(Config{}, &buf, pipeline.Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, sinktest.Batch(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q after cancel", buf.String())
	}
}

// TestSharedWriter runs several sinks writing through one SyncWriter to one
// bytes.Buffer (not safe for concurrent use) at once: under -race this checks
// the serialisation, and every line must come out whole.
func TestSharedWriter(t *testing.T) {
	var buf bytes.Buffer
	out := NewSyncWriter(&buf)
	const sinks, batches, docs = 4, 50, 20
	var wg sync.WaitGroup
	for k := range sinks {
		s := New(Config{}, out, pipeline.Deps{})
		wg.Go(func() {
			for i := range batches {
				b := event.NewBatch(docs, 64)
				for j := range docs {
					b.Append(fmt.Appendf(nil, `{"sink":%d,"batch":%d,"doc":%d,"pad":"%s"}`, k, i, j, strings.Repeat("x", 200)))
				}
				if err := s.Write(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != sinks*batches*docs {
		t.Fatalf("%d lines, want %d", len(lines), sinks*batches*docs)
	}
	// Batches are contiguous: within a run of lines of one batch, docs count up.
	for i := 0; i < len(lines); i += docs {
		var k0, i0 int
		for j := range docs {
			var k, b, d int
			if _, err := fmt.Sscanf(lines[i+j], `{"sink":%d,"batch":%d,"doc":%d,`, &k, &b, &d); err != nil {
				t.Fatalf("line %d %q: %v", i+j, lines[i+j], err)
			}
			if j == 0 {
				k0, i0 = k, b
			}
			if k != k0 || b != i0 || d != j {
				t.Fatalf("line %d: sink %d batch %d doc %d interleaved into sink %d batch %d", i+j, k, b, d, k0, i0)
			}
		}
	}
}

func TestCloseNoop(t *testing.T) {
	var buf bytes.Buffer
	s := New(Config{}, &buf, pipeline.Deps{})
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Pretty {
		t.Error("Pretty defaults to true")
	}
	if errs := c.Validate(); errs != nil {
		t.Errorf("Validate = %v", errs)
	}
}

func BenchmarkWrite(b *testing.B) {
	batch := event.NewBatch(1000, 500)
	for i := range 1000 {
		batch.Append(fmt.Appendf(nil, `{"i":%d,"p":"%s"}`, i, strings.Repeat("x", 480)))
	}
	s := New(Config{}, discard{}, pipeline.Deps{})
	b.SetBytes(int64(batch.Size() + batch.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
