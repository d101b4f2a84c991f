package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// fakeTB records what a helper reports instead of failing the test.
type fakeTB struct {
	errors, fatals []string
	cleanups       []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Error(args ...any) { f.errors = append(f.errors, fmt.Sprint(args...)) }
func (f *fakeTB) Fatal(args ...any) { f.fatals = append(f.fatals, fmt.Sprint(args...)) }
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestDocsAndBatch(t *testing.T) {
	ds := Docs[string](30, 100, func(i int) string { return fmt.Sprintf(`{"id":"x-%d","message":"`, i) })
	for i, d := range ds {
		var v struct{ ID, Message string }
		if len(d) != 100 || json.Unmarshal([]byte(d), &v) != nil || v.ID != fmt.Sprintf("x-%d", i) || strings.Trim(v.Message, string(rune('a'+i%26))) != "" {
			t.Fatalf("doc %d: %q", i, d)
		}
	}
	long := Docs[[]byte](1, 5, func(int) string { return `{"message":"` })
	if string(long[0]) != `{"message":""}` {
		t.Errorf("head longer than size: %q", long[0])
	}
	b := Batch(ds...)
	if b.Len() != len(ds) || string(b.Doc(29)) != ds[29] {
		t.Errorf("Batch: %d docs, last %q", b.Len(), b.Doc(b.Len()-1))
	}
	if Batch[string]().Len() != 0 {
		t.Error("empty Batch not empty")
	}
}

func TestGolden(t *testing.T) {
	docs := Golden[[]byte](t)
	ct := GoldenFile[string](t, "cybertrace_kv")
	if len(docs) < minGolden || string(docs[0]) != ct[0] {
		t.Fatalf("%d documents, first %.60s", len(docs), docs[0])
	}
	for _, d := range docs {
		if m, ok := event.ReadMeta(d); !ok || m.ID == nil {
			t.Errorf("not a document with an event.id: %.80s", d)
		}
	}
	docs[0] = append(docs[0], '!') // a copy: the next document is intact
	if !json.Valid(docs[1]) {
		t.Errorf("documents share memory")
	}
	var f fakeTB
	if got := GoldenFile[string](&f, "missing"); got != nil || len(f.fatals) != 1 {
		t.Errorf("missing file: %v, fatals %q", got, f.fatals)
	}
}

func TestItems(t *testing.T) {
	pe := &pipeline.PartialError{Items: []pipeline.ItemError{{Index: 0}, {Index: 3, Permanent: true}}}
	if diff := cmp.Diff([]string{"0:R", "3:P"}, Items(t, fmt.Errorf("wrapped: %w", pe))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var f fakeTB
	if got := Items(&f, errors.New("plain")); got != nil || len(f.fatals) != 1 {
		t.Errorf("not a PartialError: %v, fatals %q", got, f.fatals)
	}
}

type fakeSink struct {
	deps     pipeline.Deps
	closeErr error
	closed   int
}

func (s *fakeSink) Close(context.Context) error { s.closed++; return s.closeErr }

func TestNewSink(t *testing.T) {
	var f fakeTB
	now := func() time.Time { return time.Unix(1, 0) }
	s, logs := NewSink(&f, now, func(d pipeline.Deps) (*fakeSink, error) { return &fakeSink{deps: d, closeErr: errors.New("boom")}, nil })
	s.deps.Log.Debug("hello", "k", 1)
	if !strings.Contains(logs.String(), "level=DEBUG msg=hello k=1") || s.deps.Now().Unix() != 1 {
		t.Errorf("logs %q, now %v", logs, s.deps.Now())
	}
	f.runCleanups()
	if s.closed != 1 || len(f.errors) != 1 {
		t.Errorf("closed %d times, errors %q", s.closed, f.errors)
	}

	f = fakeTB{}
	_, _ = NewSink(&f, nil, func(pipeline.Deps) (*fakeSink, error) { return nil, errors.New("bad config") })
	if len(f.fatals) != 1 || len(f.cleanups) != 0 {
		t.Errorf("open failing: fatals %q, %d cleanups", f.fatals, len(f.cleanups))
	}
}

func TestContext(t *testing.T) {
	var f fakeTB
	ctx := Context(&f)
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > Timeout {
		t.Errorf("deadline %v, %v", d, ok)
	}
	f.runCleanups()
	if ctx.Err() == nil {
		t.Error("context not ended with the test")
	}
}
