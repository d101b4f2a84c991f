package event

import (
	"sync/atomic"
)

// Batch is an ordered group of encoded documents (canonical JSON objects)
// stored back to back in one buffer, each followed by '\n', so that a batch
// of thousands of events costs two allocations, not thousands, and the
// buffer is already NDJSON.
//
// Ownership. A batch is filled by one goroutine, then handed on and from
// then on only read, possibly by several queues and sinks at once. Who holds
// it holds a reference: Retain adds one, Release drops one, and when the
// last is dropped a pooled batch goes back to its BatchPool for reuse. A
// batch must not be modified after it has been handed on.
type Batch struct {
	data []byte
	ends []int // ends[i]: offset just past document i's '\n'

	refs atomic.Int32
	pool *BatchPool
}

// NewBatch returns an unpooled batch with room for n documents of about avg
// bytes. Its references are counted like a pooled one's, but the garbage
// collector reclaims it.
func NewBatch(n, avg int) *Batch {
	b := &Batch{data: make([]byte, 0, n*(avg+1)), ends: make([]int, 0, n)}
	b.refs.Store(1)
	return b
}

// Len is the number of documents.
func (b *Batch) Len() int { return len(b.ends) }

// Size is the number of bytes of the batch as NDJSON (documents and
// newlines).
func (b *Batch) Size() int { return len(b.data) }

// Doc returns document i, without its newline. The slice aliases the batch.
func (b *Batch) Doc(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	end := b.ends[i] - 1
	return b.data[start:end:end]
}

// NDJSON returns every document followed by '\n', as one slice aliasing the
// batch: what a file or a socket wants, without a copy.
func (b *Batch) NDJSON() []byte { return b.data }

// Append copies doc into the batch. doc must not contain '\n' (canonical
// JSON never does).
func (b *Batch) Append(doc []byte) {
	b.data = append(b.data, doc...)
	b.data = append(b.data, '\n')
	b.ends = append(b.ends, len(b.data))
}

// Buffer exposes the tail of the data buffer for encoders that append a
// document in place: append to the returned slice and pass it to Commit.
//
//	b.Commit(appendDoc(b.Buffer(), ev))
func (b *Batch) Buffer() []byte { return b.data }

// Commit records the document appended to the slice returned by Buffer. A
// Commit with no new bytes is ignored.
func (b *Batch) Commit(buf []byte) {
	if len(buf) <= len(b.data) {
		return
	}
	b.data = append(buf, '\n')
	b.ends = append(b.ends, len(b.data))
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.data = b.data[:0]
	b.ends = b.ends[:0]
}

// Slice returns a new, unpooled batch holding documents [i, j) of b. It
// copies.
func (b *Batch) Slice(i, j int) *Batch {
	start, end := 0, 0
	if i > 0 {
		start = b.ends[i-1]
	}
	if j > 0 {
		end = b.ends[j-1]
	}
	out := NewBatch(0, 0)
	out.data = append(out.data, b.data[start:end]...)
	for k := i; k < j; k++ {
		out.ends = append(out.ends, b.ends[k]-start)
	}
	return out
}

// AppendBatch appends every document of o to b.
func (b *Batch) AppendBatch(o *Batch) {
	base := len(b.data)
	b.data = append(b.data, o.data...)
	for _, e := range o.ends {
		b.ends = append(b.ends, base+e)
	}
}

// Retain adds a reference.
func (b *Batch) Retain() { b.refs.Add(1) }

// Release drops a reference. The last one returns a pooled batch to its
// pool; the batch must not be used afterwards.
func (b *Batch) Release() {
	switch n := b.refs.Add(-1); {
	case n == 0 && b.pool != nil:
		b.pool.put(b)
	case n < 0:
		panic("event: Batch released more often than retained")
	}
}

// BatchPool recycles batches, so that a steady stream allocates no new
// buffers. Unlike a sync.Pool it keeps its batches across garbage
// collections (a collection would otherwise throw away megabytes of buffers
// that are needed again a moment later), and it keeps at most a bounded
// number: beyond that, released batches are left to the collector. It is
// safe for concurrent use.
type BatchPool struct {
	free   chan *Batch
	n, avg int
}

// NewBatchPool returns a pool of batches sized for n documents of avg bytes
// that keeps at most keep idle batches.
func NewBatchPool(n, avg, keep int) *BatchPool {
	return &BatchPool{free: make(chan *Batch, keep), n: n, avg: avg}
}

// Get returns an empty batch holding one reference.
func (p *BatchPool) Get() *Batch {
	select {
	case b := <-p.free:
		b.refs.Store(1)
		return b
	default:
	}
	b := NewBatch(p.n, p.avg)
	b.pool = p
	return b
}

// maxPooled bounds the buffer a pooled batch may keep: one exceptional
// batch must not pin its memory.
const maxPooled = 16 << 20

func (p *BatchPool) put(b *Batch) {
	if cap(b.data) > maxPooled {
		return
	}
	b.Reset()
	select {
	case p.free <- b:
	default:
	}
}
