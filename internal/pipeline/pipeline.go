// Package pipeline defines the contracts between sources, queues and sinks,
// and the error kinds a sink uses to tell the delivery loop what to do.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// BatchWriter accepts encoded events from a source.
//
// WriteBatch returns nil only once every queue the batch is routed to holds
// it (memory queue: accepted; disk queue: written and fsynced). It blocks
// while a queue is full: that is the back-pressure a source must honour. It
// returns ctx.Err() if ctx ends first, in which case the batch may have
// reached some queues and not others. Queues that keep the batch take their
// own references (event.Batch.Retain); the caller keeps its reference, must
// Release it when done, and must not modify the batch after the call.
type BatchWriter interface {
	WriteBatch(ctx context.Context, b *event.Batch) error
}

// Source produces events.
//
// Run blocks until ctx is done (then it returns nil after handing every
// event it has already read to w) or until a fatal error. It must not retain
// w after returning.
type Source interface {
	Run(ctx context.Context, w BatchWriter) error
}

// Sink delivers batches to a destination.
//
// Write returns nil when the destination accepted every event; a
// *PartialError naming the events it did not accept; an error wrapped by
// Permanent when retrying cannot help (the batch goes to the dead-letter
// file); or any other error, meaning the whole batch should be retried.
// Write is never called concurrently for one sink. Close flushes and
// releases resources; it is idempotent.
type Sink interface {
	Write(ctx context.Context, b *event.Batch) error
	Close(ctx context.Context) error
}

// Checker is an optional capability of sources and sinks: Check verifies
// that the remote end is reachable and the credentials work, for
// `validate --connect` and /readyz.
type Checker interface {
	Check(ctx context.Context) error
}

// DeadLetterer receives what cannot be delivered or parsed, with the reason.
// Implementations persist it; they must be safe for concurrent use.
type DeadLetterer interface {
	DeadLetter(reason string, data []byte) error
}

// Deps are the shared services every component constructor receives.
type Deps struct {
	Log      *slog.Logger
	StateDir string
	Now      func() time.Time
	IDs      *event.IDGen
}

// ErrPermanent marks an error that retrying cannot fix.
var ErrPermanent = errors.New("permanent failure")

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() []error      { return []error{e.err, ErrPermanent} }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent wraps err so that errors.Is(err, ErrPermanent) reports true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfterError asks the delivery loop to wait at least Delay before the
// next attempt (HTTP 429/503 Retry-After).
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Delay)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ItemError says why one document of a batch failed.
type ItemError struct {
	Index     int   // position in the batch
	Err       error // cause
	Permanent bool  // true: dead-letter it; false: retry it
}

// PartialError reports a batch the destination accepted in part.
type PartialError struct {
	Items []ItemError
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d of the batch's events failed (first: %v)", len(e.Items), e.first())
}

func (e *PartialError) first() error {
	if len(e.Items) == 0 {
		return nil
	}
	return e.Items[0].Err
}
