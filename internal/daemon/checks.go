package daemon

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// Connectivity checks. A sink that implements pipeline.Checker proves its
// destination reachable and its credentials accepted. They run:
//
//   - on demand, from `alertrelay validate --connect` (Connect);
//   - while the daemon runs, at start and every checkInterval (watchSinks):
//     each result is a /healthz component ("sink NAME"), and /readyz stays
//     503 until every such sink has passed once. After that a failing
//     check degrades /healthz but not readiness: the disk queue exists to
//     ride out an outage, and a load balancer that stopped sending
//     CyberTrace's connections to us would move the backlog onto the
//     sender. A bad deployment (wrong URL, token, CA) never becomes ready.

// checkInterval is how often a running daemon re-checks its sinks.
const checkInterval = 30 * time.Second

// checkTimeout bounds one Check.
const checkTimeout = 15 * time.Second

// CheckResult is the outcome of one component's Check.
type CheckResult struct {
	Component string // "sink NAME"
	Err       error  // nil: reachable and authorised
	Took      time.Duration
}

// Connect builds every sink of f that can check its destination, checks
// them concurrently and closes them. It opens no queue, state or lock, so
// it is safe beside a running daemon. Sinks without a Check (file, stdout)
// are skipped. Results are sorted by component.
func Connect(ctx context.Context, f *config.File, opt Options) ([]CheckResult, error) {
	var errs config.Errors
	_, sinks := decode(f, &errs)
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	opt.fill()
	e := &env{deps: pipeline.Deps{Log: opt.Log, StateDir: f.StateDir, Now: opt.Now, IDs: opt.IDs}}
	kt := sinkTypes()
	var checkers []named
	for _, s := range sinks {
		if !kt[s.Type].remote {
			continue
		}
		sink, err := kt[s.Type].build(s.Name, s.cfg, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		defer sink.Close(context.WithoutCancel(ctx))
		if c, ok := sink.(pipeline.Checker); ok {
			checkers = append(checkers, named{"sink " + s.Name, c})
		}
	}
	return runChecks(ctx, checkers), nil
}

type named struct {
	name string
	c    pipeline.Checker
}

// runChecks runs every check concurrently, each bounded by checkTimeout.
func runChecks(ctx context.Context, checkers []named) []CheckResult {
	res := make([]CheckResult, len(checkers))
	var wg sync.WaitGroup
	for i, n := range checkers {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			start := time.Now()
			err := n.c.Check(cctx)
			res[i] = CheckResult{Component: n.name, Err: err, Took: time.Since(start)}
		})
	}
	wg.Wait()
	sort.Slice(res, func(i, j int) bool { return res[i].Component < res[j].Component })
	return res
}

// watchSinks checks the running sinks at start and every interval until
// ctx ends, recording each result in /healthz, and calls ready once every
// checkable sink has passed at least once (at once when there is none).
func (d *Daemon) watchSinks(ctx context.Context, interval time.Duration, ready func()) {
	var checkers []named
	for _, s := range d.sinks {
		if c, ok := s.sink.(pipeline.Checker); ok {
			checkers = append(checkers, named{"sink " + s.name, c})
		}
	}
	passed := map[string]bool{}
	isReady := false
	for {
		for _, r := range runChecks(ctx, checkers) {
			if ctx.Err() != nil {
				return
			}
			if r.Err != nil {
				d.env.health.Set(r.Component, false, "check failed: "+r.Err.Error())
				d.log.Warn("destination check failed", "component", r.Component, "err", r.Err)
				continue
			}
			d.env.health.Set(r.Component, true, "")
			passed[r.Component] = true
		}
		if !isReady && len(passed) == len(checkers) {
			isReady = true
			ready()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
