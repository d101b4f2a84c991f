// Package cynet is the Cynet 360 alerts source: it polls one tenant's REST
// API (POST /api/account/token, then paged GET /api/alerts/bulk with
// access_token and client_id headers) and hands new alerts to the pipeline.
//
// Guarantees. The cursor (the next LastSeen) is persisted only after the
// pipeline's WriteBatch has durably accepted the cycle's alerts, and every
// emitted alert version (ClientDbId + LastSeen) is recorded in the state
// store in the same transaction as the page it came from. A restart at any
// instant resumes from the last persisted cursor minus the overlap window,
// and the records suppress what was already emitted: every alert reaches
// the queue, and an alert whose LastSeen moved (an update) is emitted again.
//
// The queue and the state store are two commits. A crash after the queue's
// fsync and before the state's re-emits that one page on restart (at most
// PageSize alerts, with the same event IDs): at least once, never lost.
// docs/decisions/0003-cynet-commit-window.md explains why that window is
// left open.
//
// The next cursor is the SyncTimeUtc of the cycle's first page (the
// server's clock, never ours) minus overlap.
package cynet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/normalize"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/state"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// Source polls one Cynet tenant.
type Source struct {
	name   string
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	client *client
	store  *state.Store
	norm   *normalize.Cynet
	dl     pipeline.DeadLetterer
	m      *telemetry.SourceMetrics
	health *telemetry.Health
	sleep  func(ctx context.Context, d time.Duration) error

	batches *event.BatchPool
}

// New builds the source; store holds its cursor and dedup records.
func New(name string, cfg Config, deps pipeline.Deps, store *state.Store, dl pipeline.DeadLetterer,
	m *telemetry.SourceMetrics, health *telemetry.Health) (*Source, error) {
	cfg.SetDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	c, err := newClient(&cfg, now)
	if err != nil {
		return nil, err
	}
	if cfg.TLS.InsecureSkipVerify {
		deps.Log.Warn("TLS certificate verification is OFF for this Cynet tenant (tls.insecure_skip_verify)", "source", name)
	}
	return &Source{
		name: name, cfg: cfg, now: now, client: c, store: store, dl: dl, m: m, health: health,
		log:     deps.Log.With("component", "source", "source", name),
		norm:    normalize.NewCynet(normalize.CynetOptions{Source: name, IncludeOriginal: cfg.IncludeOriginal}),
		sleep:   pipeline.Sleep,
		batches: event.NewBatchPool(cfg.PageSize, 4096, 2),
	}, nil
}

func (s *Source) component() string { return "source " + s.name }

// Run polls until ctx ends. Authentication and permission failures stop
// this source (logged, and shown in /healthz) but not the daemon.
func (s *Source) Run(ctx context.Context, w pipeline.BatchWriter) error {
	defer s.client.close()
	backoff := s.cfg.Retry.Initial
	for {
		n, err := s.cycle(ctx, w)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrAuth):
			s.log.Error("cynet source stopped: fix the credentials or permissions and restart", "err", err)
			s.health.Set(s.component(), false, err.Error())
			<-ctx.Done()
			return nil
		case err != nil:
			wait := backoff/2 + rand.N(backoff/2+1)
			var r *retryable
			if errors.As(err, &r) && r.after > wait {
				wait = r.after
			}
			s.log.Warn("poll failed; retrying", "err", err, "wait", wait)
			s.health.Set(s.component(), false, "retrying: "+err.Error())
			backoff = min(2*backoff, s.cfg.Retry.Max)
			if s.sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		backoff = s.cfg.Retry.Initial
		s.health.Set(s.component(), true, "")
		s.log.Debug("poll cycle done", "alerts", n)
		if s.sleep(ctx, s.cfg.PollInterval) != nil {
			return nil
		}
	}
}

// cycle reads every page since the cursor and returns how many alerts it
// emitted.
func (s *Source) cycle(ctx context.Context, w pipeline.BatchWriter) (int, error) {
	cur, ok, err := s.store.Cursor(s.name)
	if err != nil {
		return 0, err
	}
	since := cur.LastSeen
	if !ok {
		since = s.now().Add(-s.cfg.InitialLookback)
	}
	var sync time.Time
	emitted := 0
	// Pages are recorded with the cycle's starting cursor: a crash
	// mid-cycle restarts the cycle, and the records skip what was emitted.
	start := state.Cursor{LastSeen: since, Updated: s.now()}
	// The next page is fetched while this one is processed, so the API's
	// time and ours overlap. Two body buffers take turns.
	type result struct {
		p   page
		err error
	}
	fetch := func(offset int, buf *[]byte) <-chan result {
		ch := make(chan result, 1)
		go func() {
			p, err := s.client.fetch(ctx, since, offset, buf)
			ch <- result{p, err}
		}()
		return ch
	}
	var bufs [2][]byte
	next := fetch(0, &bufs[0])
	for offset, turn := 0, 0; ; turn ^= 1 {
		r := <-next
		if r.err != nil {
			return emitted, r.err
		}
		if offset == 0 {
			sync = r.p.sync
		}
		full := len(r.p.entities) >= s.cfg.PageSize
		offset += len(r.p.entities)
		next = nil
		if full {
			next = fetch(offset, &bufs[turn^1])
		}
		n, err := s.emit(ctx, w, r.p.entities, start)
		emitted += n
		if err != nil {
			if next != nil {
				<-next // the goroutine owns a buffer: let it finish
			}
			return emitted, err
		}
		if !full {
			break
		}
	}
	// Advance the cursor: the server's time of the first page, less the
	// overlap, and never backwards.
	if !sync.IsZero() {
		next := sync.Add(-s.cfg.Overlap)
		if next.After(since) {
			cur = state.Cursor{LastSeen: next, Updated: s.now()}
			if err := s.store.Commit(s.name, cur, nil); err != nil {
				return emitted, err
			}
		}
	} else if !ok {
		// No SyncTimeUtc (a bare-array deployment): keep the first run's
		// start as the cursor rather than our clock.
		if err := s.store.Commit(s.name, state.Cursor{LastSeen: since, Updated: s.now()}, nil); err != nil {
			return emitted, err
		}
	}
	if _, err := s.store.Expire(s.name, s.now().Add(-s.cfg.DedupTTL)); err != nil {
		s.log.Warn("expiring dedup records failed", "err", err)
	}
	return emitted, nil
}

// emit normalises the page's new alert versions, hands them to the
// pipeline and records them (with cur unchanged) once WriteBatch returned.
// Each alert is scanned once: normalised straight into the batch, which
// also yields its dedup key; the few already emitted (the overlap window)
// are taken out afterwards.
func (s *Source) emit(ctx context.Context, w pipeline.BatchWriter, ents []json.RawMessage, cur state.Cursor) (int, error) {
	if len(ents) == 0 {
		return 0, nil
	}
	s.m.Lines.Add(float64(len(ents)))
	batch := s.batches.Get() // pooled: the queues give it back when delivered
	defer func() { batch.Release() }()
	keys := make([]state.DedupKey, 0, len(ents))
	inPage := make(map[state.DedupKey]bool, len(ents))
	received := s.now()
	size := 0
	for _, e := range ents {
		size += len(e)
		out, id, ls, err := s.norm.AppendKeyed(batch.Buffer(), e, received)
		if err != nil {
			s.m.Invalid.Inc()
			s.deadLetter(err.Error(), e)
			continue
		}
		key := state.DedupKey{ID: id, LastSeen: string(ls)}
		if inPage[key] {
			continue // the same version twice in one page: not committed
		}
		inPage[key] = true
		batch.Commit(out)
		keys = append(keys, key)
	}
	s.m.Bytes.Add(float64(size)) // once per page, not per alert
	seen, err := s.store.Seen(s.name, keys)
	if err != nil {
		return 0, err
	}
	fresh := keys
	if anyTrue(seen) {
		kept := s.batches.Get()
		fresh = fresh[:0:0]
		for i, k := range keys {
			if !seen[i] {
				kept.Append(batch.Doc(i))
				fresh = append(fresh, k)
			}
		}
		batch.Release()
		batch = kept
	}
	if batch.Len() > 0 {
		if err := w.WriteBatch(ctx, batch); err != nil {
			return 0, err
		}
		s.m.Events.Add(float64(batch.Len()))
	}
	if len(fresh) > 0 {
		if err := s.store.Commit(s.name, cur, fresh); err != nil {
			return 0, fmt.Errorf("recording emitted alerts: %w", err)
		}
	}
	return batch.Len(), nil
}

func anyTrue(b []bool) bool {
	for _, v := range b {
		if v {
			return true
		}
	}
	return false
}

func (s *Source) deadLetter(reason string, data []byte) {
	if err := s.dl.DeadLetter(reason, data); err != nil {
		s.log.Error("could not write the dead-letter file", "err", err)
	}
}
