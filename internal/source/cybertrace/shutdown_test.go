package cybertrace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

func seqLine(conn, seq int) string {
	return fmt.Sprintf("category=KL_IP_Reputation matchedIndicator=192.0.2.1 conn=%d seq=%d", conn, seq)
}

// TestShutdownFlushesLingeringBatch: lines the source has read sit in a
// batch whose linger is 5 s; cancelling the source must hand them to the
// writer before Run returns, without waiting for the linger.
func TestShutdownFlushesLingeringBatch(t *testing.T) {
	cfg := testConfig()
	cfg.Batch.Linger = 5 * time.Second
	r := startSource(t, cfg, nil)
	c := r.dial(t)
	var want []string
	for i := 0; i < 10; i++ {
		want = append(want, seqLine(1, i))
		if _, err := c.Write([]byte(seqLine(1, i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	// Give the source time to read the lines (it does not flush for 5 s);
	// see TestShutdownRightAfterSend for cancelling at once.
	time.Sleep(300 * time.Millisecond)
	if n := r.rec().len(); n != 0 {
		t.Fatalf("%d documents flushed before the linger expired", n)
	}
	start := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Run took %s to return; it should not wait for the linger", el)
	}
	if d := cmp.Diff(want, originals(t, r.rec().get())); d != "" {
		t.Errorf("documents written before Run returned (-want +got):\n%s", d)
	}
	if !closedByPeer(c, testTimeout) {
		t.Error("connection not closed at shutdown")
	}
}

// TestShutdownRightAfterSend cancels the source as soon as the client's
// writes return. The bytes are then in the server's socket buffer
// (acknowledged to CyberTrace) but perhaps not yet read by the source.
func TestShutdownRightAfterSend(t *testing.T) {
	for trial := 0; trial < 20; trial++ {
		cfg := testConfig()
		cfg.Batch.Linger = 5 * time.Second
		r := startSourceLog(t, cfg, nil, discardLogger())
		c := r.dial(t)
		waitFor(t, "accept", func() bool { return acceptedOne(r) })
		var stream strings.Builder
		for i := 0; i < 10; i++ {
			stream.WriteString(seqLine(1, i) + "\n")
		}
		if _, err := c.Write([]byte(stream.String())); err != nil {
			t.Fatal(err)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		got, dl := r.rec().len(), r.dl.get()
		if got != 10 {
			t.Fatalf("trial %d: %d of 10 lines written before Run returned; dead letters %q", trial, got, dl)
		}
	}
}

func acceptedOne(r *running) bool {
	return telemetry.Value(r.m.ConnAccepted) == 1
}

// TestShutdownPartialLine: an unterminated line pending at shutdown goes
// to the dead-letter writer; the complete lines before it are written.
func TestShutdownPartialLine(t *testing.T) {
	cfg := testConfig()
	cfg.Batch.Linger = 5 * time.Second
	r := startSource(t, cfg, nil)
	c := r.dial(t)
	if _, err := c.Write([]byte(seed0 + "\n" + "category=KL_partial matchedIndicator=19")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the source read it
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got := originals(t, r.rec().get()); !cmp.Equal(got, []string{seed0}) {
		t.Errorf("documents: %q", got)
	}
	dl := r.dl.get()
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "incomplete line") || dl[0].Data != "category=KL_partial matchedIndicator=19" {
		t.Errorf("dead letters: %q", dl)
	}
	if got := metricsOf(r.m); got.Invalid != 1 || got.Events != 1 || got.Lines != 1 {
		t.Errorf("metrics: %+v", got)
	}
}

// TestShutdownIdleConnection: an open connection with nothing to read does
// not hold up Run.
func TestShutdownIdleConnection(t *testing.T) {
	r := startSource(t, testConfig(), nil)
	c := r.dial(t)
	waitFor(t, "accept", func() bool { return acceptedOne(r) })
	start := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Run took %s to return", el)
	}
	if !closedByPeer(c, testTimeout) {
		t.Error("connection not closed at shutdown")
	}
}

// seqWriter blocks every WriteBatch until released, and records the
// (conn, seq) of each document.
type seqWriter struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
	seqs    map[int][]int
	bad     []string
}

func (w *seqWriter) WriteBatch(ctx context.Context, b *event.Batch) error {
	w.mu.Lock()
	w.calls++
	w.mu.Unlock()
	select {
	case <-w.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 0; i < b.Len(); i++ {
		conn, ok1 := field(b.Doc(i), `"conn":"`)
		seq, ok2 := field(b.Doc(i), `"seq":"`)
		if !ok1 || !ok2 {
			w.bad = append(w.bad, string(b.Doc(i)))
			continue
		}
		w.seqs[conn] = append(w.seqs[conn], seq)
	}
	return nil
}

func (w *seqWriter) state() (calls int, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seqs {
		n += len(s)
	}
	return w.calls, n
}

func field(doc []byte, key string) (int, bool) {
	i := bytes.Index(doc, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := doc[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:j]))
	return n, err == nil
}

// TestBackPressure: while the writer blocks, the source stops reading, so
// the sender's writes block (TCP pushes back); once released, every line
// arrives, in order per connection.
func TestBackPressure(t *testing.T) {
	const (
		conns    = 2
		pushMax  = 64 << 20 // a source that does not push back lets this through
		lineSize = 1024
	)
	cfg := testConfig()
	cfg.IncludeOriginal = false // smaller documents
	cfg.Batch.MaxEvents = 256
	w := &seqWriter{release: make(chan struct{}), seqs: map[int][]int{}}
	r := startSourceLog(t, cfg, w, discardLogger())

	pad := strings.Repeat("p", lineSize)
	line := func(conn, seq int) string {
		l := seqLine(conn, seq) + " pad="
		return l + pad[:lineSize-1-len(l)] + "\n"
	}

	type result struct {
		pushed, lines int // before the writes blocked
		total         int // lines sent in all
		err           error
	}
	blocked := make(chan result, conns)
	finished := make(chan result, conns)
	released := make(chan struct{})
	for ci := 1; ci <= conns; ci++ {
		c := r.dial(t)
		go func() {
			var res result
			seq := 0
			var pending []byte
			fill := func() {
				var b bytes.Buffer
				for b.Len() < 64<<10 {
					b.WriteString(line(ci, seq))
					seq++
				}
				pending = b.Bytes()
			}
			// Phase 1: push until a write does not finish within 1 s.
			for {
				if len(pending) == 0 {
					if res.pushed >= pushMax {
						res.err = fmt.Errorf("pushed %d MiB without being blocked", res.pushed>>20)
						blocked <- res
						finished <- res
						return
					}
					fill()
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				n, err := c.Write(pending)
				res.pushed += n
				pending = pending[n:]
				if err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						res.err = err
						blocked <- res
						finished <- res
						return
					}
					res.lines = seq - bytes.Count(pending, []byte("\n"))
					blocked <- res
					break
				}
			}
			// Phase 2: once released, send the rest and 1000 more lines.
			<-released
			c.SetWriteDeadline(time.Now().Add(3 * testTimeout))
			end := seq + 1000
			for len(pending) > 0 || seq < end {
				if len(pending) == 0 {
					fill()
				}
				n, err := c.Write(pending)
				pending = pending[n:]
				if err != nil {
					res.err = err
					break
				}
			}
			res.total = seq
			c.Close()
			finished <- res
		}()
	}

	for i := 0; i < conns; i++ {
		select {
		case res := <-blocked:
			if res.err != nil {
				t.Fatal(res.err)
			}
			t.Logf("sender blocked after %.1f MiB (%d complete lines)", float64(res.pushed)/(1<<20), res.lines)
		case <-time.After(2 * testTimeout):
			t.Fatal("senders neither blocked nor failed")
		}
	}
	if calls, n := w.state(); calls != conns || n != 0 {
		t.Errorf("while blocked: %d WriteBatch calls and %d documents; want one pending call per connection", calls, n)
	}

	close(w.release)
	close(released)
	total := 0
	for i := 0; i < conns; i++ {
		select {
		case res := <-finished:
			if res.err != nil {
				t.Fatal(res.err)
			}
			total += res.total
		case <-time.After(3 * testTimeout):
			t.Fatal("senders did not finish after the release")
		}
	}
	r.waitServed(t, conns)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		t.Fatalf("%d documents without conn/seq, first: %s", len(w.bad), w.bad[0])
	}
	got := 0
	for ci := 1; ci <= conns; ci++ {
		seqs := w.seqs[ci]
		got += len(seqs)
		for i, s := range seqs {
			if s != i {
				t.Fatalf("connection %d: document %d has seq %d: lost or out of order", ci, i, s)
			}
		}
	}
	if got != total {
		t.Errorf("%d documents, want %d", got, total)
	}
	if m := metricsOf(r.m); m.Events != float64(total) || m.Invalid != 0 {
		t.Errorf("metrics: %+v, want %d events", m, total)
	}
}
