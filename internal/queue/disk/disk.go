package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/queue"
)

// DefaultSegmentBytes is the segment size when Options.SegmentBytes is 0.
const DefaultSegmentBytes = 16 << 20

// Options configure a disk queue.
type Options struct {
	// MaxBytes bounds the records stored and not yet acked, counted as
	// they are on disk: each document plus a 16-byte header. Push blocks
	// (or, with WhenFullDrop, returns queue.ErrFull) while a batch does not
	// fit, unless the queue is empty. Disk usage can exceed it by the acked
	// records of the oldest segment, up to SegmentBytes. Required.
	MaxBytes int64
	// SegmentBytes is the size past which the writer starts a new segment
	// file (default DefaultSegmentBytes).
	SegmentBytes int64
	// WhenFullDrop makes Push return queue.ErrFull at once instead of
	// blocking while the queue is full (when_full: drop_newest).
	WhenFullDrop bool
	// Now stamps records (default time.Now).
	Now func() time.Time
	// Log receives recovery findings and I/O errors (default: discarded).
	Log *slog.Logger

	hooks *hooks // tests inject I/O failures and count fsyncs
}

// hooks are the I/O operations tests replace.
type hooks struct {
	writeAt  func(f *os.File, p []byte, off int64) (int, error)
	sync     func(f *os.File) error // files and directories
	truncate func(f *os.File, size int64) error
	reader   func(f *os.File) io.ReaderAt // what Pop reads a segment through
}

// Detail describes a disk queue in more depth than Stats, for metrics and
// the admin endpoint. It is cheap: counters, plus at most one 16-byte read
// when the oldest pending record changed.
type Detail struct {
	Segments     int   // segment files
	DiskBytes    int64 // their size (acked records not yet deleted included)
	Records      int   // records in them, acked or not
	Pending      int   // records not acked (Stats().Events)
	PendingBytes int64 // their bytes on disk (Stats().Bytes)
	Ready        int   // of which durable and not handed out by Pop yet
	// Oldest is the push time of the oldest unacked record; zero when
	// nothing is pending.
	Oldest time.Time
	// Corrupt counts damaged regions skipped since Open, by recovery and by
	// Pop; each hid at least one record.
	Corrupt int64
}

// segment is a segment file as the Disk tracks it. Offsets are also
// counted "logically": a segment's base is the logical offset of its first
// byte, the next segment's base is base+size, so one int64 orders every
// position in the queue.
type segment struct {
	seq     uint64
	base    int64
	size    int64 // bytes of complete records (the active segment's grows)
	records int
}

func (s *segment) end() int64 { return s.base + s.size }

// round is one group commit: the pushes that wrote since the previous
// round, released together by one fsync of the files they wrote.
type round struct {
	done   chan struct{}
	err    error      // set before done is closed
	files  []*os.File // written in this round
	retire []*os.File // rotated out: close after syncing
	dir    bool       // a segment was created: fsync the directory
	end    int64      // logical end of the last write
	events int
	ndjson int64
}

func (r *round) addFile(f *os.File) {
	for _, g := range r.files {
		if g == f {
			return
		}
	}
	r.files = append(r.files, f)
}

// leaseEnt is a range of records handed out by Pop, acked in any order;
// the position advances over the acked prefix.
type leaseEnt struct {
	start, end int64    // logical offsets
	pos        Position // the position once acked
	events     int      // records (and damaged regions) it covers
	done       bool
}

// reader is Pop's cursor. Only the goroutine holding Disk.rmu uses it.
type reader struct {
	seq      uint64
	base     int64
	off      int64
	f        *os.File // nil until needed
	w        window
	leaseEnd int64  // logical end of the last range handed out
	missing  uint64 // seq of a segment found missing (logged once)
}

// Disk is a queue.Queue that keeps its records in segment files in one
// directory; see the package documentation for the format and guarantees.
// Push may be called concurrently; Pop by one goroutine at a time.
type Disk struct {
	dir   string
	opt   Options
	log   *slog.Logger
	hooks hooks
	env   env
	lock  *os.File
	// batches recycles the batches Pop hands out: they come back when
	// their lease is acked, so a steady drain allocates nothing.
	batches *event.BatchPool

	// wmu serialises writes to the active segment. Lock order: wmu, then mu.
	wmu   sync.Mutex
	wf    *os.File
	wseq  uint64
	woff  int64 // end of the complete records in wf
	wtorn bool  // wf may hold a failed write's bytes past woff

	mu        sync.Mutex
	closed    bool // no more pushes
	finished  bool // closed and every written record synced: Pop may end
	changed   chan struct{}
	segs      []*segment
	records   int   // in segs
	diskBytes int64 // in segs
	writtenL  int64 // logical end of the written records
	syncedL   int64 // logical end of the fsynced records: Pop reads below it
	round     *round
	carryEv   int // records of failed rounds, readable after the next good one
	carryB    int64
	resEvents int   // reserved by pushes not yet written
	resBytes  int64 // their bytes
	events    int   // written and not acked
	ready     int   // synced and not handed out
	readyB    int64 // their NDJSON bytes
	leases    []*leaseEnt
	ackL      int64
	ackPos    Position
	corrupt   int64
	posF      *os.File // nil after Close
	posGen    uint64
	posDirty  bool
	posSynced time.Time
	posErr    bool  // the last position write failed (logged once)
	oldL      int64 // cache for Detail.Oldest
	oldTs     time.Time

	rmu sync.Mutex
	rd  reader

	pushes     sync.WaitGroup // between reservation and write
	kick       chan struct{}
	stop       chan struct{}
	syncerDone chan struct{}
	abandoned  atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

var _ queue.Queue = (*Disk)(nil)

var osHooks = hooks{
	writeAt:  (*os.File).WriteAt,
	sync:     (*os.File).Sync,
	truncate: (*os.File).Truncate,
	reader:   func(f *os.File) io.ReaderAt { return f },
}

// Open opens the queue in dir, creating the directory if needed, recovers
// it (see the package documentation) and starts its fsync goroutine. The
// Recovery says what was found and fixed; it is returned even with an error.
// Damage in the directory never makes Open fail; I/O errors creating the
// new segment or taking the lock (another process has the queue open) do.
func Open(dir string, opt Options) (*Disk, *Recovery, error) {
	if opt.MaxBytes <= 0 {
		return nil, nil, fmt.Errorf("disk queue: MaxBytes must be positive, got %d", opt.MaxBytes)
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = DefaultSegmentBytes
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	h := osHooks
	if opt.hooks != nil {
		if opt.hooks.writeAt != nil {
			h.writeAt = opt.hooks.writeAt
		}
		if opt.hooks.sync != nil {
			h.sync = opt.hooks.sync
		}
		if opt.hooks.truncate != nil {
			h.truncate = opt.hooks.truncate
		}
		if opt.hooks.reader != nil {
			h.reader = opt.hooks.reader
		}
	}
	e := env{log: opt.Log, sync: h.sync, now: opt.Now}
	if err := mkdirDurable(dir, e); err != nil {
		return nil, nil, fmt.Errorf("disk queue: %w", err)
	}
	lock, err := lockDir(dir, e)
	if err != nil {
		return nil, nil, err
	}
	rep, st, err := recoverDir(dir, e, true)
	if err != nil {
		lock.Close()
		return nil, &rep, fmt.Errorf("disk queue: recovering %s: %w", dir, err)
	}
	q, err := start(dir, opt, h, e, lock, st, int64(rep.Corrupt))
	if err != nil {
		lock.Close()
		return nil, &rep, err
	}
	rep.Position = q.ackPos
	return q, &rep, nil
}

// start creates the new active segment and the Disk over the recovered
// segments.
func start(dir string, opt Options, h hooks, e env, lock *os.File, st *recovered, corrupt int64) (*Disk, error) {
	active := &segment{seq: st.nextSeq}
	wf, err := os.OpenFile(filepath.Join(dir, segName(active.seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, fmt.Errorf("disk queue: creating a segment: %w", err)
	}
	q := &Disk{
		dir: dir, opt: opt, log: opt.Log, hooks: h, env: e, lock: lock,
		batches: event.NewBatchPool(1024, 1024, 2),
		wf:      wf, wseq: active.seq,
		changed:    make(chan struct{}),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		syncerDone: make(chan struct{}),
		oldL:       -1,
		corrupt:    corrupt,
	}
	var base int64
	for _, s := range st.segs {
		s.base = base
		base += s.size
		q.records += s.records
		q.diskBytes += s.size
	}
	active.base = base
	q.segs = append(st.segs, active)
	q.writtenL, q.syncedL = base, base
	if st.pending > 0 {
		q.ackPos = st.first
		q.ackL = st.first.Offset // the first retained segment has base 0
		q.events, q.ready = st.pending, st.pending
		q.readyB = max(st.pendB-int64(st.pending)*(headerSize-1), 0)
	} else {
		q.ackPos = Position{Seq: active.seq}
		q.ackL = active.base
	}
	first := q.segs[0]
	if st.pending == 0 {
		first = active
	}
	q.rd = reader{seq: first.seq, base: first.base, off: q.ackL - first.base, leaseEnd: q.ackL}

	q.posF, err = os.OpenFile(filepath.Join(dir, posName), os.O_RDWR|os.O_CREATE, filePerm)
	if err == nil {
		q.posGen = st.gen + 1
		_, err = q.posF.WriteAt(encodeSlot(q.ackPos, q.posGen), slotOffset(q.posGen))
		if err == nil {
			err = h.sync(q.posF)
		}
	}
	if err == nil {
		err = e.syncDir(dir) // the new segment and position file
	}
	if err != nil {
		wf.Close()
		if q.posF != nil {
			q.posF.Close()
		}
		return nil, fmt.Errorf("disk queue: %w", err)
	}
	q.posSynced = time.Now()
	go q.syncLoop()
	return q, nil
}

// mkdirDurable creates dir and its missing parents, fsyncing the parent of
// each directory it creates: otherwise a power cut could lose the new
// directory with every record fsynced into it.
func mkdirDurable(dir string, e env) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := e.syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// notify wakes everything waiting for a change. Called with mu held.
func (q *Disk) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// Push implements queue.Queue: it stores b's documents as records and
// returns after the fsync that covers them. It does not keep b. An error
// other than ErrClosed, ErrFull or ctx's is an I/O error (wrapped; ENOSPC,
// EIO...): the queue stays usable and the caller may retry; the batch may
// have been stored anyway when the fsync failed or ctx ended while Push was
// waiting for it.
func (q *Disk) Push(ctx context.Context, b *event.Batch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	for i := range n {
		if len(b.Doc(i)) > MaxDocBytes {
			return fmt.Errorf("disk queue: document of %d bytes exceeds the limit of %d", len(b.Doc(i)), MaxDocBytes)
		}
	}
	size := int64(b.Size()) + int64(n)*(headerSize-1)
	if err := q.reserve(ctx, n, size); err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	buf := appendRecords((*bp)[:0], q.opt.Now().UnixNano(), b)
	r, err := q.write(buf, n, int64(b.Size()))
	if cap(buf) <= 4<<20 {
		*bp = buf
		bufPool.Put(bp)
	}
	q.pushes.Done()
	if err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reserve waits for room for size bytes and counts them as reserved.
func (q *Disk) reserve(ctx context.Context, n int, size int64) error {
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return queue.ErrClosed
		}
		used := q.writtenL - q.ackL + q.resBytes
		if used == 0 || used+size <= q.opt.MaxBytes {
			q.resEvents += n
			q.resBytes += size
			q.pushes.Add(1)
			q.mu.Unlock()
			return nil
		}
		if q.opt.WhenFullDrop {
			q.mu.Unlock()
			return queue.ErrFull
		}
		wait := q.changed
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
}

// write appends buf (n records, ndjson bytes as NDJSON) to the active
// segment with one write and joins the pending round.
func (q *Disk) write(buf []byte, n int, ndjson int64) (*round, error) {
	size := int64(len(buf))
	q.wmu.Lock()
	defer q.wmu.Unlock()
	fail := func(err error) (*round, error) {
		q.mu.Lock()
		q.resEvents -= n
		q.resBytes -= size
		q.notify()
		q.mu.Unlock()
		return nil, err
	}
	if q.woff > 0 && q.woff+size > q.opt.SegmentBytes {
		if err := q.rotate(); err != nil {
			return fail(err)
		}
	}
	if q.wtorn {
		if err := q.hooks.truncate(q.wf, q.woff); err == nil {
			q.wtorn = false
		}
	}
	m, err := q.hooks.writeAt(q.wf, buf, q.woff)
	if err == nil && m < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		// Leave no partial record: cut the file back. If that fails too,
		// the next write overwrites the bytes (writes are positional) and
		// retries the truncation; they are past the end readers use.
		if terr := q.hooks.truncate(q.wf, q.woff); terr != nil {
			q.wtorn = true
			q.log.Error("disk queue: truncating after a failed write", "segment", segName(q.wseq), "err", terr)
		}
		return fail(fmt.Errorf("disk queue: writing %s: %w", segName(q.wseq), err))
	}
	q.woff += size
	q.mu.Lock()
	q.resEvents -= n
	q.resBytes -= size
	q.events += n
	act := q.segs[len(q.segs)-1]
	act.size = q.woff
	act.records += n
	q.records += n
	q.diskBytes += size
	q.writtenL = act.end()
	r := q.pendingRound()
	r.addFile(q.wf)
	r.end = q.writtenL
	r.events += n
	r.ndjson += ndjson
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
	return r, nil
}

// pendingRound returns the round writes join now. Called with mu held.
func (q *Disk) pendingRound() *round {
	if q.round == nil {
		q.round = &round{done: make(chan struct{})}
	}
	return q.round
}

// rotate starts a new active segment. The old one is fsynced, and the
// directory too, by the round the next write joins. Called with wmu held.
func (q *Disk) rotate() error {
	seq := q.wseq + 1
	f, err := os.OpenFile(filepath.Join(q.dir, segName(seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("disk queue: creating a segment: %w", err)
	}
	if q.wtorn {
		if err := q.hooks.truncate(q.wf, q.woff); err != nil {
			q.log.Error("disk queue: truncating a segment after a failed write", "segment", segName(q.wseq), "err", err)
		}
		q.wtorn = false // past the segment's size: never read
	}
	q.mu.Lock()
	r := q.pendingRound()
	r.addFile(q.wf)
	r.retire = append(r.retire, q.wf)
	r.dir = true
	old := q.segs[len(q.segs)-1]
	q.segs = append(q.segs, &segment{seq: seq, base: old.end()})
	q.mu.Unlock()
	q.wf, q.wseq, q.woff = f, seq, 0
	return nil
}

// syncLoop is the fsync goroutine: it runs a round whenever pushes wrote,
// flushes the position at most once a second or before deleting acked
// segments, and finishes the rounds left when the Disk closes.
func (q *Disk) syncLoop() {
	defer close(q.syncerDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-q.kick:
		case <-tick.C:
		case <-q.stop:
			if q.abandoned.Load() {
				return
			}
			for q.syncRound() {
			}
			q.flushPosition(true)
			return
		}
		q.syncRound()
		q.flushPosition(false)
	}
}

// syncRound fsyncs what the pending round wrote and releases its pushes.
// It reports whether there was a round.
func (q *Disk) syncRound() bool {
	q.mu.Lock()
	r := q.round
	q.round = nil
	q.mu.Unlock()
	if r == nil {
		return false
	}
	var err error
	for _, f := range r.files {
		if e := q.hooks.sync(f); e != nil && err == nil {
			err = fmt.Errorf("disk queue: fsync %s: %w", f.Name(), e)
		}
	}
	if err == nil && r.dir {
		if e := q.env.syncDir(q.dir); e != nil {
			err = fmt.Errorf("disk queue: fsync %s: %w", q.dir, e)
		}
	}
	for _, f := range r.retire {
		f.Close()
	}
	q.mu.Lock()
	if err == nil {
		q.syncedL = max(q.syncedL, r.end)
		q.ready += r.events + q.carryEv
		q.readyB += r.ndjson + q.carryB
		q.carryEv, q.carryB = 0, 0
		q.notify()
	} else {
		// The records are in the file; the pushers are told they may not
		// be durable and will retry. They become readable with the next
		// successful round (duplicates rather than loss).
		q.carryEv += r.events
		q.carryB += r.ndjson
		q.log.Error("disk queue: fsync failed; pushes in this round report the error", "err", err)
	}
	q.mu.Unlock()
	r.err = err
	close(r.done)
	return true
}

// flushPosition fsyncs the position file when it changed (at most once a
// second unless force) and deletes the segments it passes, after the fsync.
func (q *Disk) flushPosition(force bool) {
	q.mu.Lock()
	f := q.posF
	var del []*segment
	for i := 0; i < len(q.segs)-1 && q.segs[i].end() <= q.ackL; i++ {
		del = append(del, q.segs[i])
	}
	due := q.posDirty && (force || time.Since(q.posSynced) >= time.Second)
	if f == nil || (!due && len(del) == 0) {
		q.mu.Unlock()
		return
	}
	q.posDirty = false
	q.posSynced = time.Now()
	q.mu.Unlock()
	if err := q.hooks.sync(f); err != nil {
		q.log.Error("disk queue: fsync of the position file failed; acked segments are kept", "err", err)
		q.mu.Lock()
		q.posDirty = true
		q.mu.Unlock()
		return
	}
	if len(del) == 0 {
		return
	}
	for _, s := range del {
		if err := os.Remove(filepath.Join(q.dir, segName(s.seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Error("disk queue: deleting an acked segment", "err", err)
		}
	}
	q.mu.Lock()
	for _, s := range del {
		q.records -= s.records
		q.diskBytes -= s.size
	}
	q.segs = append(q.segs[:0:0], q.segs[len(del):]...)
	q.mu.Unlock()
}

// Pop implements queue.Queue. Records are read from the segment files
// through a buffer, never whole segments. MaxEvents or MaxBytes <= 0 mean no
// limit. A damaged record found while reading is skipped, counted in
// Detail().Corrupt and logged. An I/O error reading is returned; the next
// Pop tries again from the same place.
func (q *Disk) Pop(ctx context.Context, lim queue.Limits) (*queue.Lease, error) {
	maxEv, maxB := lim.MaxEvents, int64(lim.MaxBytes)
	if maxEv <= 0 {
		maxEv = math.MaxInt
	}
	if maxB <= 0 {
		maxB = math.MaxInt64
	}
	var deadline <-chan time.Time
	for {
		q.mu.Lock()
		ready, finished := q.ready, q.finished
		take := ready > 0 && (ready >= maxEv || q.readyB >= maxB || finished)
		wait := q.changed
		q.mu.Unlock()
		if !take && ready == 0 && finished {
			q.closeReader()
			return nil, io.EOF
		}
		if take {
			l, err := q.take(maxEv, maxB)
			if l != nil || err != nil {
				return l, err
			}
			continue // only damaged records were there
		}
		if ready > 0 && deadline == nil {
			t := time.NewTimer(lim.Linger)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-wait:
		case <-deadline:
			l, err := q.take(maxEv, maxB)
			if l != nil || err != nil {
				return l, err
			}
			deadline = nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// segFrom returns a copy of segment seq, or of the first one after it
// when it is gone. Called with mu held.
func (q *Disk) segFrom(seq uint64) (segment, bool) {
	for _, s := range q.segs {
		if s.seq >= seq {
			return *s, true
		}
	}
	return segment{}, false
}

// take reads up to maxEv records (maxB NDJSON bytes, at least one record)
// below the synced end. It returns a nil lease when it found only damaged
// records.
func (q *Disk) take(maxEv int, maxB int64) (*queue.Lease, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	rd := &q.rd
	q.mu.Lock()
	synced := q.syncedL
	cur, ok := q.segFrom(rd.seq)
	q.mu.Unlock()
	if !ok {
		return nil, nil
	}
	if cur.seq != rd.seq {
		q.moveTo(cur)
	}
	out := q.batches.Get() // pooled: keeps the capacity earlier takes grew it to
	var n, skipped int
	var bytes, skippedB int64
	var readErr error // stops the loop; returned only if nothing was read
	for n < maxEv && rd.base+rd.off < synced {
		limit := min(cur.end(), synced) - cur.base
		if rd.off >= limit {
			q.mu.Lock()
			next, ok := q.segFrom(rd.seq + 1)
			q.mu.Unlock()
			if !ok {
				break
			}
			cur = next
			q.moveTo(cur)
			continue
		}
		if rd.f == nil {
			f, err := os.Open(filepath.Join(q.dir, segName(rd.seq)))
			if errors.Is(err, os.ErrNotExist) {
				if rd.missing != rd.seq {
					q.log.Error("disk queue: segment missing; its records are lost", "segment", segName(rd.seq))
					rd.missing = rd.seq
				}
				skipped++
				skippedB += limit - rd.off
				rd.off = limit
				continue
			}
			if err != nil {
				readErr = fmt.Errorf("disk queue: %w", err)
				break
			}
			rd.f = f
			rd.w.reset(q.hooks.reader(f))
		}
		plen, _, st, err := rd.w.check(rd.off, limit)
		if err != nil {
			readErr = fmt.Errorf("disk queue: reading %s: %w", segName(rd.seq), err)
			break
		}
		if st == recOK {
			if n > 0 && bytes+int64(plen)+1 > maxB {
				break
			}
			p, err := rd.w.payload(rd.off, plen, limit)
			if err != nil {
				readErr = fmt.Errorf("disk queue: reading %s: %w", segName(rd.seq), err)
				break
			}
			out.Append(p)
			n++
			bytes += int64(plen) + 1
			rd.off += headerSize + int64(plen)
			continue
		}
		budget := resyncBudget(limit - rd.off)
		next, err := rd.w.resync(rd.off+1, limit, &budget)
		if err != nil && !errors.Is(err, errBudget) {
			readErr = fmt.Errorf("disk queue: reading %s: %w", segName(rd.seq), err)
			break
		}
		if next < 0 {
			next = limit
		}
		q.log.Error("disk queue: skipping damaged records", "segment", segName(rd.seq), "offset", rd.off, "bytes", next-rd.off)
		skipped++
		skippedB += next - rd.off
		rd.off = next
	}
	if readErr != nil {
		q.closeReaderLocked() // the next take reopens and retries
		if n == 0 && skipped == 0 {
			return nil, readErr
		}
		q.log.Error("disk queue: read error; handing out what was read before it", "err", readErr)
	}
	end := rd.base + rd.off
	ent := &leaseEnt{start: rd.leaseEnd, end: end, pos: Position{Seq: rd.seq, Offset: rd.off}, events: n + skipped}
	rd.leaseEnd = end
	q.mu.Lock()
	defer q.mu.Unlock()
	q.corrupt += int64(skipped)
	q.ready = max(q.ready-n-skipped, 0)
	q.readyB = max(q.readyB-bytes-skippedB, 0)
	if end >= q.syncedL {
		q.ready, q.readyB = 0, 0 // exact again, whatever the damage hid
	}
	if ent.end == ent.start {
		out.Release()
		return nil, nil
	}
	q.leases = append(q.leases, ent)
	if n == 0 {
		ent.done = true // only damage: nothing to deliver
		q.advance()
		out.Release()
		return nil, nil
	}
	return queue.NewLease(out, func() { q.ack(ent); out.Release() }), nil
}

// moveTo points the reader at the start of segment s. Called with rmu held.
func (q *Disk) moveTo(s segment) {
	q.closeReaderLocked()
	q.rd.seq, q.rd.base, q.rd.off = s.seq, s.base, 0
}

func (q *Disk) closeReaderLocked() {
	if q.rd.f != nil {
		q.rd.f.Close()
		q.rd.f = nil
	}
	q.rd.w.reset(nil)
}

func (q *Disk) closeReader() {
	q.rmu.Lock()
	q.closeReaderLocked()
	q.rmu.Unlock()
}

func (q *Disk) ack(e *leaseEnt) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e.done = true
	q.advance()
}

// advance moves the position over the acked leases at the head and writes
// it. Called with mu held.
func (q *Disk) advance() {
	moved := false
	for len(q.leases) > 0 && q.leases[0].done {
		e := q.leases[0]
		q.leases[0] = nil
		q.leases = q.leases[1:]
		q.ackL, q.ackPos = e.end, e.pos
		q.events = max(q.events-e.events, 0)
		moved = true
	}
	if !moved {
		return
	}
	if q.ackL >= q.writtenL {
		q.events = 0 // exact again, whatever the damage hid
	}
	q.writePosition()
	if len(q.segs) > 1 && q.segs[0].end() <= q.ackL {
		select { // the syncer deletes it
		case q.kick <- struct{}{}:
		default:
		}
	}
	q.notify()
}

// writePosition writes the position into the next slot of the position
// file, without fsync: the syncer fsyncs it. After Close it writes and
// fsyncs at once. Called with mu held.
func (q *Disk) writePosition() {
	q.posGen++
	var err error
	if q.posF != nil {
		_, err = q.posF.WriteAt(encodeSlot(q.ackPos, q.posGen), slotOffset(q.posGen))
		q.posDirty = true
	} else if !q.abandoned.Load() {
		err = writePositionFile(filepath.Join(q.dir, posName), q.ackPos, q.posGen, q.hooks.sync)
	}
	if err != nil && !q.posErr {
		q.log.Error("disk queue: writing the position failed; acked records may be delivered again after a restart", "err", err)
	}
	q.posErr = err != nil
}

// Close implements queue.Queue: it stops new pushes, waits for the pushes
// under way, fsyncs, stops the fsync goroutine and closes the files and the
// lock. Pop then returns what is left, then io.EOF. Leases may still be
// acked after Close (each Ack then fsyncs the position), but not once the
// directory has been opened again. Close is idempotent.
func (q *Disk) Close() error {
	q.closeOnce.Do(func() { q.closeErr = q.close() })
	return q.closeErr
}

func (q *Disk) close() error {
	q.mu.Lock()
	q.closed = true
	q.notify()
	q.mu.Unlock()
	q.pushes.Wait()
	close(q.stop)
	<-q.syncerDone

	var errs []error
	q.wmu.Lock()
	err := q.hooks.sync(q.wf)
	if q.wtorn {
		q.hooks.truncate(q.wf, q.woff)
	}
	if cerr := q.wf.Close(); err == nil {
		err = cerr
	}
	q.wmu.Unlock()
	q.mu.Lock()
	if err == nil {
		// Records of a failed round are durable now.
		q.syncedL = q.writtenL
		q.ready += q.carryEv
		q.readyB += q.carryB
		q.carryEv, q.carryB = 0, 0
	} else {
		errs = append(errs, fmt.Errorf("disk queue: closing the active segment: %w", err))
	}
	if q.posDirty {
		if err := q.hooks.sync(q.posF); err != nil {
			errs = append(errs, fmt.Errorf("disk queue: fsync of the position file: %w", err))
		}
	}
	if err := q.posF.Close(); err != nil {
		errs = append(errs, fmt.Errorf("disk queue: %w", err))
	}
	q.posF = nil
	q.posDirty = false
	q.finished = true
	q.notify()
	q.mu.Unlock()
	q.closeReader()
	q.lock.Close()
	return errors.Join(errs...)
}

// abandon simulates a crash for tests: it stops everything and closes the
// files without any fsync or final position write. No Push may be under way.
func (q *Disk) abandon() {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed, q.finished = true, true
		q.notify()
		q.mu.Unlock()
		q.pushes.Wait()
		q.abandoned.Store(true)
		close(q.stop)
		<-q.syncerDone
		q.wmu.Lock()
		q.wf.Close()
		q.wmu.Unlock()
		q.mu.Lock()
		q.posF.Close()
		q.posF = nil
		q.mu.Unlock()
		q.closeReader()
		q.lock.Close()
	})
}

// Stats reports the records stored (or being stored) and not yet acked, and
// their bytes on disk. It only reads counters.
func (q *Disk) Stats() queue.Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queue.Stats{Events: q.events + q.resEvents, Bytes: q.writtenL - q.ackL + q.resBytes}
}

// Detail reports more than Stats, as cheaply: see Detail.
func (q *Disk) Detail() Detail {
	q.mu.Lock()
	d := Detail{
		Segments:     len(q.segs),
		DiskBytes:    q.diskBytes,
		Records:      q.records,
		Pending:      q.events + q.resEvents,
		PendingBytes: q.writtenL - q.ackL + q.resBytes,
		Ready:        q.ready,
		Corrupt:      q.corrupt,
	}
	at := q.ackL
	var path string
	var off int64
	if at < q.writtenL {
		if at == q.oldL {
			d.Oldest = q.oldTs
		} else {
			for _, s := range q.segs {
				if s.end() > at {
					path, off = filepath.Join(q.dir, segName(s.seq)), at-s.base
					break
				}
			}
		}
	}
	q.mu.Unlock()
	if path == "" {
		return d
	}
	f, err := os.Open(path)
	if err != nil {
		return d
	}
	defer f.Close()
	var h [headerSize]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return d
	}
	d.Oldest = time.Unix(0, int64(le.Uint64(h[8:])))
	q.mu.Lock()
	q.oldL, q.oldTs = at, d.Oldest
	q.mu.Unlock()
	return d
}

// Dir is the queue's directory.
func (q *Disk) Dir() string { return q.dir }
