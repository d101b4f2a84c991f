package cybertrace

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

const (
	initialBuffer = 64 << 10
	// shutdownGrace bounds how long a connection may wait for the queues to
	// take its last batch once the source is stopping.
	shutdownGrace = 30 * time.Second
	// shutdownDrain bounds how long a connection keeps reading what its
	// peer already sent once the source is stopping.
	shutdownDrain = 250 * time.Millisecond
	// dlHead is how much of an oversize line the dead-letter file keeps.
	dlHead = 1024
)

// The session flags a ReplyBack client sends first, with no newline (spec B3).
var sessionFlags = [][]byte{
	[]byte("X-KF-ReplyBack"), []byte("X-KF-SendFinishedEvent"), []byte("X-KF-SaveStatistic"),
}

// conn is the state of one connection. Only its goroutine touches it.
type conn struct {
	s    *Source
	c    net.Conn
	peer string
	w    pipeline.BatchWriter

	buf        []byte // read buffer; unread data is buf[start:end]
	start, end int
	atStart    bool // session flags not yet looked for
	flagsSeen  bool // at least one session flag was stripped
	discarding bool // inside a line longer than max_line_bytes
	dropped    int  // bytes of that line so far
	head       []byte

	recv    time.Time // time of the current read, from the injectable clock: stamps events
	active  time.Time // last read or hand-over; idle_timeout counts from here
	ev      event.Event
	batch   *event.Batch
	first   time.Time // wall time the batch's first event was read: drives the linger deadline
	fixed   []byte    // UTF-8 repair buffer
	counts  counts
	flushCx context.Context
}

// counts are accumulated per batch and added to the metrics on flush, so
// the hot path touches no shared memory.
type counts struct {
	lines, bytes, invalid, oversize, repaired int
}

func (s *Source) serve(ctx context.Context, nc net.Conn, peer netip.Addr, w pipeline.BatchWriter) {
	s.m.ConnActive.Inc()
	defer s.m.ConnActive.Dec()
	s.m.ConnAccepted.Inc()
	c := &conn{
		s: s, c: nc, peer: peer.String(), w: w,
		buf:     make([]byte, min(initialBuffer, s.cfg.MaxLineBytes+1)),
		atStart: true,
		batch:   s.batches.Get(),
	}
	// The last batch must still reach the queues after ctx ends, within
	// shutdownGrace.
	flushCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
	defer stopGrace()
	c.flushCx = flushCtx
	// Wake a blocked Read when the source stops; loop then drains what the
	// socket already holds (a deadline in the past fails Read without
	// reading, so the drain sets its own deadline).
	stopRead := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Now()) })
	defer stopRead()
	defer nc.Close()

	s.log.Debug("connection opened", "peer", c.peer)
	reason := c.loop(ctx)
	c.flush()
	c.batch.Release()
	s.log.Debug("connection closed", "peer", c.peer, "reason", reason)
}

// loop reads until EOF, error, idle timeout or ctx end, and says why it
// stopped. When ctx ends it keeps reading for up to shutdownDrain, so lines
// CyberTrace had already sent (and TCP acknowledged) are not lost.
func (c *conn) loop(ctx context.Context) string {
	cfg := &c.s.cfg
	// Deadlines run on the wall clock; the injectable clock only stamps
	// events (a test clock would make every deadline expire at once).
	c.active = time.Now()
	var drainUntil time.Time
	for {
		if c.end == len(c.buf) {
			c.makeRoom()
		}
		if drainUntil.IsZero() && ctx.Err() != nil {
			drainUntil = time.Now().Add(shutdownDrain)
		}
		deadline := c.active.Add(cfg.IdleTimeout)
		if c.batch.Len() > 0 {
			deadline = minTime(deadline, c.first.Add(cfg.Batch.Linger))
		}
		if !drainUntil.IsZero() {
			deadline = minTime(deadline, drainUntil)
		}
		c.c.SetReadDeadline(deadline)
		n, err := c.c.Read(c.buf[c.end:])
		if n > 0 {
			c.recv = c.s.now()
			c.active = time.Now()
			c.end += n
			c.scan(false)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			c.scan(true)
			c.finish("")
			return "eof"
		case isTimeout(err):
			if ctx.Err() != nil && !drainUntil.IsZero() && !time.Now().Before(drainUntil) {
				c.finish("incomplete line when the source stopped")
				return "source stopping"
			}
			if c.batch.Len() > 0 {
				c.flush()
			}
			if time.Since(c.active) >= cfg.IdleTimeout {
				c.finish("incomplete line at idle timeout")
				return "idle timeout"
			}
		default:
			c.finish("incomplete line when the connection failed")
			return err.Error()
		}
	}
}

// makeRoom frees or adds space at the end of the buffer. A line that fills
// a buffer of max_line_bytes+1 without a LF is too long: its first bytes are
// kept for the dead-letter record and the rest is skipped up to the next LF.
func (c *conn) makeRoom() {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
		return
	}
	if limit := c.s.cfg.MaxLineBytes + 1; len(c.buf) < limit {
		nb := make([]byte, min(2*len(c.buf), limit))
		c.end = copy(nb, c.buf[:c.end])
		c.buf = nb
		return
	}
	if !c.discarding {
		c.discarding = true
		c.head = append(c.head[:0], c.buf[:min(dlHead, c.end)]...)
	}
	c.dropped += c.end
	c.start, c.end = 0, 0
	if len(c.buf) > initialBuffer {
		c.buf = make([]byte, initialBuffer) // give the memory back
	}
}

// scan handles every complete line in the buffer; at EOF also the last,
// unterminated one.
func (c *conn) scan(eof bool) {
	if c.atStart && !c.stripFlags(eof) {
		return
	}
	for c.start < c.end {
		i := bytes.IndexByte(c.buf[c.start:c.end], '\n')
		if i < 0 {
			if c.discarding {
				c.dropped += c.end - c.start
				c.start, c.end = 0, 0
			}
			break
		}
		line := c.buf[c.start : c.start+i]
		c.start += i + 1
		if c.discarding {
			c.endOversize(len(line))
			continue
		}
		c.handle(line)
	}
	if eof && c.start < c.end && !c.discarding {
		c.handle(c.buf[c.start:c.end]) // CyberTrace always ends lines; be lenient at EOF
		c.start = c.end
	}
	if c.start == c.end {
		c.start, c.end = 0, 0
	}
}

// stripFlags removes any concatenation of the session flags at the start of
// the stream, then one optional line break. Each complete flag is consumed
// as soon as it is seen, so a long run of flags never fills the buffer. It
// reports false while the data so far could still be (part of) a flag or
// the line break after one.
func (c *conn) stripFlags(eof bool) bool {
	for {
		p := c.buf[c.start:c.end]
		matched := false
		for _, f := range sessionFlags {
			if bytes.HasPrefix(p, f) {
				c.start += len(f)
				c.flagsSeen, matched = true, true
				break
			}
			if len(p) < len(f) && bytes.HasPrefix(f, p) && !eof {
				return false // wait for more bytes
			}
		}
		if !matched {
			break
		}
	}
	if c.flagsSeen {
		p := c.buf[c.start:c.end]
		switch {
		case bytes.HasPrefix(p, []byte("\r\n")):
			c.start += 2
		case len(p) == 1 && p[0] == '\r' && !eof:
			return false // the LF of a CRLF may follow
		case len(p) > 0 && (p[0] == '\n' || p[0] == '\r'):
			c.start++
		case len(p) == 0 && !eof:
			return false // a line break may follow
		}
	}
	c.atStart = false
	return true
}

func (c *conn) endOversize(tail int) {
	c.discarding = false
	size := c.dropped + tail
	c.dropped = 0
	c.counts.oversize++
	c.s.deadLetter("line longer than max_line_bytes", c.head)
	c.s.logLimited("oversize", "dropped a line longer than max_line_bytes", "peer", c.peer, "bytes", size, "max_line_bytes", c.s.cfg.MaxLineBytes)
}

// finish deals with what is left when the stream ends: the tail of an
// oversize line, or an unterminated line that may be cut short (reason says
// why; empty at EOF, where scan already delivered it).
func (c *conn) finish(reason string) {
	if c.discarding {
		c.endOversize(0)
	}
	if reason != "" && c.start < c.end {
		c.s.deadLetter(reason, c.buf[c.start:c.end])
		c.counts.invalid++
	}
	c.start, c.end = 0, 0
}

func (c *conn) handle(line []byte) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return
	}
	c.counts.lines++
	c.counts.bytes += len(line) + 1
	if !utf8.Valid(line) {
		c.fixed = appendValidUTF8(c.fixed[:0], line)
		line = c.fixed
		c.counts.repaired++
	}
	ev := &c.ev
	ev.Reset()
	ev.Source = c.s.name
	ev.Received = c.recv
	ev.Raw = line
	if err := c.s.parse(line, ev); err != nil {
		c.counts.invalid++
		c.s.deadLetter(err.Error(), line)
		c.s.logLimited("invalid", "could not parse a line; it is in the dead-letter file", "peer", c.peer, "err", err)
		return
	}
	if c.batch.Len() == 0 {
		c.first = time.Now()
	}
	c.batch.Commit(c.s.norm.Append(c.batch.Buffer(), ev))
	if c.batch.Len() >= c.s.cfg.Batch.MaxEvents {
		c.flush()
	}
}

// flush hands the batch to the pipeline, blocking while the queues are full.
func (c *conn) flush() {
	m := c.s.m
	m.Lines.Add(float64(c.counts.lines))
	m.Bytes.Add(float64(c.counts.bytes))
	m.Invalid.Add(float64(c.counts.invalid))
	m.Oversize.Add(float64(c.counts.oversize))
	m.Repaired.Add(float64(c.counts.repaired))
	c.counts = counts{}
	if c.batch.Len() == 0 {
		return
	}
	n := c.batch.Len()
	if err := c.w.WriteBatch(c.flushCx, c.batch); err != nil {
		// Only after shutdownGrace: keep the events rather than lose them.
		c.s.log.Error("queues did not take a batch before shutdown; writing it to the dead-letter file", "events", n, "err", err)
		for i := 0; i < n; i++ {
			c.s.deadLetter("not queued before shutdown: "+err.Error(), c.batch.Doc(i))
		}
	} else {
		m.Events.Add(float64(n))
	}
	// The queues hold their own references; ours goes, and the next batch
	// comes from the pool (a batch is never modified once handed on).
	c.batch.Release()
	c.batch = c.s.batches.Get()
	// Time spent waiting for the queues is not idleness on the peer's part.
	c.active = time.Now()
}

func (s *Source) deadLetter(reason string, data []byte) {
	if err := s.dl.DeadLetter(reason, data); err != nil {
		s.logLimited("dlfail", "could not write the dead-letter file", "err", err)
	}
}

// appendValidUTF8 appends s with each invalid byte sequence replaced by U+FFFD.
func appendValidUTF8(dst, s []byte) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[:size]...)
		}
		s = s[size:]
	}
	return dst
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
