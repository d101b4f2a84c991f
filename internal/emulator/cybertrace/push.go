package cybertrace

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Push defaults.
const (
	DefaultPoolSize      = 4096
	DefaultDialTimeout   = 5 * time.Second
	DefaultCloseTimeout  = 2 * time.Second
	DefaultReconnectMin  = 100 * time.Millisecond
	DefaultReconnectMax  = 5 * time.Second
	DefaultProgressEvery = 500 * time.Millisecond

	writeBufferSize = 64 << 10
	// minTick is the shortest pacing sleep: at high rates lines are released
	// in batches every few milliseconds rather than one sleep per line.
	minTick = 2 * time.Millisecond
	// burstWindow caps the token bucket: after a stall (slow reader,
	// reconnect) at most this much rate-worth of lines goes out at once.
	burstWindow = 50 * time.Millisecond
	// unpacedBatch is how many lines go out between cancellation checks when
	// Rate is 0.
	unpacedBatch = 512
)

// PushConfig configures Push.
type PushConfig struct {
	// Addr is the listener's host:port.
	Addr string
	// Count is the total number of lines over all connections. Negative
	// means no limit: push until ctx is done. Zero connects, writes Flags
	// and closes.
	Count int
	// Rate is the overall rate in lines per second, split evenly over the
	// connections; 0 means as fast as possible.
	Rate float64
	// Conns is the number of parallel connections (default 1). Count is
	// split evenly; the first Count%Conns connections carry one extra line.
	Conns int
	// Flags, if not empty, is written at the start of every connection as
	// its own write with no newline (vendor-protocols.md B3), e.g.
	// FlagSendFinishedEvent+FlagReplyBack. It must not contain CR or LF.
	Flags string
	// CRLFEvery makes line i (0-based, per connection) end in "\r\n" when
	// (i+1)%CRLFEvery == 0; 0 means every line ends in "\n".
	CRLFEvery int
	// SplitWrites writes the stream in chunks cut at random byte offsets
	// (mid-line, and deliberately inside multi-byte UTF-8 sequences) so
	// that the listener's framing is exercised. Much slower.
	SplitWrites bool
	// TLS, if not nil, wraps connections in TLS with this client config.
	TLS *tls.Config
	// Gen configures the line generator.
	Gen GenOptions
	// Seed seeds the generators. Connection c uses ConnSeed(Seed, c), so a
	// single connection reproduces NewGenerator(Seed, Gen).
	Seed int64
	// PoolSize is the number of lines pre-generated per connection
	// (default DefaultPoolSize, capped at the connection's share of Count).
	// Connection c sends line i = the (i mod PoolSize)-th line of its
	// generator, so generation cost does not bound throughput. Negative
	// disables the pool: every line is generated fresh (slower, and lines
	// lost with a dropped connection are not re-sent).
	PoolSize int
	// DialTimeout bounds each dial including the TLS handshake (default 5 s).
	DialTimeout time.Duration
	// CloseTimeout bounds the graceful close: after the last line the
	// connection is half-closed and Push waits up to this long for the peer
	// to close its side (default 2 s), so no unread data triggers a reset.
	CloseTimeout time.Duration
	// Reconnect redials after a failed dial or a dropped connection, with
	// exponential back-off between ReconnectMin and ReconnectMax (defaults
	// 100 ms, 5 s), as CyberTrace does after listener restarts. The line
	// count continues from the last line the kernel accepted; a line cut
	// off by the drop is sent again in full on the next connection.
	Reconnect    bool
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// MaxRetries limits consecutive failed attempts per connection when
	// Reconnect is set; 0 means unlimited (until ctx is done).
	MaxRetries int
	// OnProgress, if set, is called every ProgressEvery (default 500 ms)
	// with the total number of lines sent so far, and once more with the
	// final total before Push returns. Calls come from one goroutine at a
	// time.
	OnProgress    func(sent int64)
	ProgressEvery time.Duration
}

// Stats reports what Push sent. A line counts as sent once its terminating
// LF was accepted by the kernel (or the TLS layer); bytes include Flags and
// CRs.
type Stats struct {
	Lines   int64
	Bytes   int64
	Elapsed time.Duration // from the first dial to the last close
	Conns   []ConnStats   // indexed by connection number
}

// ConnStats reports one connection slot of Push.
type ConnStats struct {
	Lines int64
	Bytes int64
	Dials int // successful dials: 1 plus the number of reconnections
}

// LinesPerSecond returns Lines/Elapsed.
func (s Stats) LinesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Lines) / s.Elapsed.Seconds()
}

// ConnSeed returns the generator seed Push uses for connection conn:
// ConnSeed(seed, 0) == seed.
func ConnSeed(seed int64, conn int) int64 {
	return int64(uint64(seed) + uint64(conn)*0x5851F42D4C957F2D)
}

// Push connects to cfg.Addr the way CyberTrace's output side does and
// writes cfg.Count generated lines over cfg.Conns connections, paced to
// cfg.Rate. Each connection is written through a 64 KiB buffer that is
// flushed whenever the pacer waits, and closed gracefully at the end.
//
// On ctx cancellation Push stops promptly and returns the stats so far with
// ctx.Err(). A connection error (refused, reset) without Reconnect stops all
// connections and is returned wrapped with the address; the stats are still
// valid.
func Push(ctx context.Context, cfg PushConfig) (Stats, error) {
	if err := cfg.normalize(); err != nil {
		return Stats{}, err
	}
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		share := int64(-1)
		if cfg.Count >= 0 {
			share = int64(cfg.Count / cfg.Conns)
			if i < cfg.Count%cfg.Conns {
				share++
			}
		}
		w := &worker{id: i, cfg: &cfg, share: share}
		workers[i] = w
		wg.Go(w.prepare)
	}
	wg.Wait()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	progressDone := make(chan struct{})
	total := func() int64 {
		var n int64
		for _, w := range workers {
			n += w.lines.Load()
		}
		return n
	}
	if cfg.OnProgress != nil {
		go func() {
			defer close(progressDone)
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					cfg.OnProgress(total())
				case <-runCtx.Done():
					return
				}
			}
		}()
	} else {
		close(progressDone)
	}

	errs := make([]error, len(workers))
	for i, w := range workers {
		w.pacer = newPacer(cfg.Rate/float64(cfg.Conns), start)
		wg.Go(func() {
			if err := w.run(runCtx); err != nil {
				errs[i] = err
				if !isCtxErr(err) {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel(nil)
	<-progressDone

	st := Stats{Elapsed: elapsed, Conns: make([]ConnStats, len(workers))}
	for i, w := range workers {
		c := ConnStats{Lines: w.lines.Load(), Bytes: w.bytes.Load(), Dials: w.dials}
		st.Conns[i] = c
		st.Lines += c.Lines
		st.Bytes += c.Bytes
	}
	if cfg.OnProgress != nil {
		cfg.OnProgress(st.Lines)
	}
	for i, err := range errs {
		if err != nil && !isCtxErr(err) {
			return st, fmt.Errorf("cybertrace: push to %s (conn %d): %w", cfg.Addr, i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	return st, nil
}

// isCtxErr reports whether err is exactly a context error returned by
// ctx.Err() (wrapped dial timeouts are real errors, not cancellation).
func isCtxErr(err error) bool {
	return err == context.Canceled || err == context.DeadlineExceeded
}

func (cfg *PushConfig) normalize() error {
	if cfg.Addr == "" {
		return errors.New("cybertrace: push: empty address")
	}
	if strings.ContainsAny(cfg.Flags, "\r\n") {
		return errors.New("cybertrace: push: flags must not contain CR or LF")
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return fmt.Errorf("cybertrace: push: invalid rate %v", cfg.Rate)
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.CRLFEvery < 0 {
		cfg.CRLFEvery = 0
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = DefaultReconnectMin
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(DefaultReconnectMax, cfg.ReconnectMin)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	return nil
}

// worker drives one connection slot.
type worker struct {
	id    int
	cfg   *PushConfig
	share int64 // lines to send; -1 = unlimited

	pool    linePool
	gen     *Generator // fresh mode only
	scratch []byte
	split   *rand.Rand
	bw      *bufio.Writer
	timer   *time.Timer
	pacer   pacer
	dials   int

	lines atomic.Int64 // LFs accepted by the kernel
	bytes atomic.Int64
}

// prepare builds the line pool (or the fresh generator).
func (w *worker) prepare() {
	seed := ConnSeed(w.cfg.Seed, w.id)
	w.split = rand.New(rand.NewPCG(uint64(seed), 0x5EED5D11))
	w.bw = bufio.NewWriterSize(nil, writeBufferSize)
	g := NewGenerator(seed, w.cfg.Gen)
	if w.cfg.PoolSize < 0 {
		w.gen = g
		return
	}
	n := w.cfg.PoolSize
	if w.share >= 0 {
		n = int(min(int64(n), max(w.share, 1)))
	}
	w.pool = buildPool(g, n)
}

// linePool holds n LF-terminated lines back to back.
type linePool struct {
	data []byte
	ends []int // ends[i] is the offset just past line i's LF
}

func buildPool(g *Generator, n int) linePool {
	p := linePool{data: make([]byte, 0, n*400), ends: make([]int, n)}
	for i := range n {
		p.data = g.Next(p.data)
		p.data = append(p.data, '\n')
		p.ends[i] = len(p.data)
	}
	return p
}

// line returns line i (with its LF).
func (p *linePool) line(i int64) []byte {
	j := int(i % int64(len(p.ends)))
	start := 0
	if j > 0 {
		start = p.ends[j-1]
	}
	return p.data[start:p.ends[j]]
}

// done reports whether the worker has nothing left to do.
func (w *worker) done() bool {
	return w.share >= 0 && w.dials > 0 && w.lines.Load() >= w.share
}

func (w *worker) run(ctx context.Context) error {
	backoff := w.cfg.ReconnectMin
	failures := 0
	for !w.done() {
		conn, err := w.dial(ctx)
		if err == nil {
			w.dials++
			before := w.lines.Load()
			err = w.session(ctx, conn)
			if err == nil {
				continue
			}
			if w.lines.Load() > before {
				backoff, failures = w.cfg.ReconnectMin, 0
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !w.cfg.Reconnect {
			return err
		}
		failures++
		if w.cfg.MaxRetries > 0 && failures > w.cfg.MaxRetries {
			return fmt.Errorf("giving up after %d attempts: %w", failures, err)
		}
		// Full jitter keeps parallel connections from redialling in step.
		d := backoff/2 + time.Duration(w.split.Int64N(int64(backoff/2)+1))
		if !w.sleep(ctx, d) {
			return ctx.Err()
		}
		backoff = min(2*backoff, w.cfg.ReconnectMax)
	}
	return nil
}

func (w *worker) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: w.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	if w.cfg.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: w.cfg.TLS}
		return td.DialContext(ctx, "tcp", w.cfg.Addr)
	}
	return d.DialContext(ctx, "tcp", w.cfg.Addr)
}

// sleep waits d or until ctx is done; it reports false on ctx.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

// pastDeadline unblocks pending I/O when ctx is cancelled.
var pastDeadline = time.Unix(1, 0)

// session writes flags and lines on one established connection until the
// share is done, then closes it gracefully.
func (w *worker) session(ctx context.Context, conn net.Conn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(pastDeadline) })
	defer stop()
	defer conn.Close()

	cc := &countingWriter{w: w, c: conn}
	if w.cfg.Flags != "" {
		if _, err := io.WriteString(cc, w.cfg.Flags); err != nil {
			return err
		}
	}
	var out io.Writer = cc
	if w.cfg.SplitWrites {
		out = &splitWriter{w: cc, r: w.split}
	}
	bw := w.bw
	bw.Reset(out)
	defer bw.Reset(nil)

	crlf := int64(w.cfg.CRLFEvery)
	paced := w.pacer.rate > 0
	done := ctx.Done()
	idx := w.lines.Load() // resume after the last line the kernel accepted
	for w.share < 0 || idx < w.share {
		var n int64 = unpacedBatch
		if paced {
			n = w.pacer.available(time.Now())
			if n == 0 {
				if err := bw.Flush(); err != nil {
					return err
				}
				if !w.sleep(ctx, w.pacer.wait()) {
					return ctx.Err()
				}
				continue
			}
		}
		if w.share >= 0 {
			n = min(n, w.share-idx)
		}
		if paced {
			w.pacer.use(n)
		}
		for end := idx + n; idx < end; idx++ {
			var line []byte
			if w.gen != nil {
				w.scratch = append(w.gen.Next(w.scratch[:0]), '\n')
				line = w.scratch
			} else {
				line = w.pool.line(idx)
			}
			if crlf > 0 && (idx+1)%crlf == 0 {
				if _, err := bw.Write(line[:len(line)-1]); err != nil {
					return err
				}
				if _, err := bw.WriteString("\r\n"); err != nil {
					return err
				}
			} else if _, err := bw.Write(line); err != nil {
				return err
			}
		}
		select {
		case <-done:
			return ctx.Err()
		default:
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	w.closeGracefully(ctx, conn)
	return nil
}

// closeGracefully half-closes conn and waits (bounded) for the peer's EOF,
// so that unread incoming data (e.g. TLS session tickets) cannot turn the
// close into a reset that discards lines the peer has not read yet.
func (w *worker) closeGracefully(ctx context.Context, conn net.Conn) {
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	// Checking ctx after setting the deadline is race-free: a cancellation
	// after the check runs the AfterFunc, which resets the deadline to the
	// past.
	if conn.SetReadDeadline(time.Now().Add(w.cfg.CloseTimeout)) != nil || ctx.Err() != nil {
		return
	}
	var buf [512]byte
	for {
		if _, err := conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// countingWriter counts bytes and LFs accepted by the connection.
type countingWriter struct {
	w *worker
	c net.Conn
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.c.Write(p)
	if n > 0 {
		cw.w.bytes.Add(int64(n))
		if k := bytes.Count(p[:n], []byte{'\n'}); k > 0 {
			cw.w.lines.Add(int64(k))
		}
	}
	return n, err
}

// splitWriter forwards each Write as several writes cut at random offsets.
type splitWriter struct {
	w io.Writer
	r *rand.Rand
}

func (s *splitWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := s.cut(p)
		m, err := s.w.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// cut picks the next chunk length: tiny, short or about a line, and in a
// quarter of the cases just before the next UTF-8 continuation byte so the
// chunk ends inside a multi-byte character.
func (s *splitWriter) cut(p []byte) int {
	var n int
	switch r := s.r.IntN(100); {
	case r < 25:
		n = 1 + s.r.IntN(4)
	case r < 60:
		n = 5 + s.r.IntN(60)
	default:
		n = 65 + s.r.IntN(700)
	}
	if s.r.IntN(4) == 0 {
		for i := 1; i < min(len(p), n+512); i++ {
			if p[i]&0xC0 == 0x80 {
				n = i
				break
			}
		}
	}
	return min(n, len(p))
}

// pacer is a token bucket refilled at rate tokens/s, capped at burstWindow
// worth of tokens; it is consulted once per batch, not per line.
type pacer struct {
	rate, burst, tokens float64
	last                time.Time
}

func newPacer(rate float64, now time.Time) pacer {
	return pacer{rate: rate, burst: max(1, rate*burstWindow.Seconds()), tokens: 1, last: now}
}

// available refills the bucket and returns the whole tokens available.
func (p *pacer) available(now time.Time) int64 {
	p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	p.last = now
	return int64(p.tokens)
}

func (p *pacer) use(n int64) { p.tokens -= float64(n) }

// wait returns how long until the next token, at least minTick.
func (p *pacer) wait() time.Duration {
	d := time.Duration((1 - p.tokens) / p.rate * float64(time.Second))
	return max(d, minTick)
}
