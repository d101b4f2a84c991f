// Package sinktest holds what the sinks' tests share: a sink opened with a
// captured debug log, emulators started on loopback, test contexts,
// synthetic and golden documents, PartialError summaries and the timed
// loop of BenchmarkWrite.
//
// Only _test.go files import it. It does not import package testing: the
// helpers take TB (or Bench), the few methods of *testing.T and
// *testing.B that they use.
package sinktest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// TB is the part of testing.TB that the helpers use. Like the helpers of
// package testing they return right after calling Fatal, which with a
// *testing.T or *testing.B does not return.
type TB interface {
	Helper()
	Error(args ...any)
	Fatal(args ...any)
	Cleanup(func())
}

// LogBuffer collects log output. It is safe for concurrent use: sinks log
// from their transports' goroutines too.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what has been logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Closer is a sink as NewSink closes it.
type Closer interface {
	Close(ctx context.Context) error
}

// NewSink opens a sink with open, passing it Deps whose Log writes every
// level from debug up as text to the LogBuffer it returns, and whose Now
// is now (nil: the sink's default clock). It fails t if open fails, and
// closes the sink when the test ends, failing t if Close does.
func NewSink[S Closer](t TB, now func() time.Time, open func(pipeline.Deps) (S, error)) (S, *LogBuffer) {
	t.Helper()
	logs := &LogBuffer{}
	deps := pipeline.Deps{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: now}
	s, err := open(deps)
	if err != nil {
		t.Fatal(err)
		return s, logs
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, logs
}

// Timeout bounds every Context, so that a hung sink fails its test instead
// of the whole run.
const Timeout = 20 * time.Second

// Context returns a context that ends after Timeout or with the test.
func Context(t TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Start starts the emulator srv on a free loopback port, fails t if it
// cannot, and closes it when the test ends. It returns srv.
func Start[S interface {
	Start(addr string) error
	Close()
}](t TB, srv S) S {
	t.Helper()
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
		return srv
	}
	t.Cleanup(srv.Close)
	return srv
}

// StartTLS is Start over TLS with the server configuration cfg.
func StartTLS[S interface {
	StartTLS(addr string, cfg *tls.Config) error
	Close()
}](t TB, srv S, cfg *tls.Config) S {
	t.Helper()
	if err := srv.StartTLS("127.0.0.1:0", cfg); err != nil {
		t.Fatal(err)
		return srv
	}
	t.Cleanup(srv.Close)
	return srv
}

// Items returns the items of err, which must be or wrap a
// *pipeline.PartialError, as Summary renders them; it fails t otherwise.
func Items(t TB, err error) []string {
	t.Helper()
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatal(fmt.Sprintf("%T %v is not a *pipeline.PartialError", err, err))
		return nil
	}
	return Summary(pe.Items)
}

// Summary renders items, in order, as "INDEX:P" (permanent: dead-lettered)
// or "INDEX:R" (retried).
func Summary(items []pipeline.ItemError) []string {
	var out []string
	for _, it := range items {
		k := "R"
		if it.Permanent {
			k = "P"
		}
		out = append(out, fmt.Sprintf("%d:%s", it.Index, k))
	}
	return out
}
