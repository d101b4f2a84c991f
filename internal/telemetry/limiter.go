package telemetry

import (
	"sync"
	"time"
)

// LogLimiter lets a message through at most once per interval per key, so
// a flood of bad input produces one log line every few seconds, not one per
// line. It is safe for concurrent use.
type LogLimiter struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	keys     map[string]*limitState
}

type limitState struct {
	last       time.Time
	suppressed int
}

// NewLogLimiter returns a limiter with the given interval.
func NewLogLimiter(interval time.Duration) *LogLimiter {
	return &LogLimiter{interval: interval, now: time.Now, keys: map[string]*limitState{}}
}

// Allow reports whether a message for key may be logged now and, if so, how
// many were suppressed since the last one that was.
func (l *LogLimiter) Allow(key string) (suppressed int, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[key]
	if st == nil {
		st = &limitState{}
		l.keys[key] = st
	} else if now.Sub(st.last) < l.interval {
		st.suppressed++
		return 0, false
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return n, true
}
