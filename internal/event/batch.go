package event

// Batch is an ordered group of encoded documents (canonical JSON objects,
// without a trailing newline) stored back to back in one buffer, so that a
// batch of thousands of events costs two allocations, not thousands.
//
// A Batch is not safe for concurrent mutation. Once handed to
// pipeline.BatchWriter.WriteBatch it must not be modified by the caller; the
// queues and sinks only read it.
type Batch struct {
	data []byte
	ends []int
}

// NewBatch returns a batch with room for n documents of about avg bytes.
func NewBatch(n, avg int) *Batch {
	return &Batch{data: make([]byte, 0, n*avg), ends: make([]int, 0, n)}
}

// Len is the number of documents.
func (b *Batch) Len() int { return len(b.ends) }

// Size is the total number of document bytes.
func (b *Batch) Size() int { return len(b.data) }

// Doc returns document i. The slice aliases the batch.
func (b *Batch) Doc(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start:b.ends[i]:b.ends[i]]
}

// Append copies doc into the batch.
func (b *Batch) Append(doc []byte) {
	b.data = append(b.data, doc...)
	b.ends = append(b.ends, len(b.data))
}

// Buffer exposes the tail of the data buffer for encoders that append a
// document in place: append to the returned slice and pass it to Commit.
//
//	buf := b.Buffer()
//	buf = appendDoc(buf, ev)
//	b.Commit(buf)
func (b *Batch) Buffer() []byte { return b.data }

// Commit records the document that was appended to the slice returned by
// Buffer. A Commit with no new bytes is ignored.
func (b *Batch) Commit(buf []byte) {
	if len(buf) <= len(b.data) {
		return
	}
	b.data = buf
	b.ends = append(b.ends, len(buf))
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.data = b.data[:0]
	b.ends = b.ends[:0]
}

// Slice returns a new batch holding documents [i, j) of b. It copies.
func (b *Batch) Slice(i, j int) *Batch {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	end := start
	if j > 0 {
		end = b.ends[j-1]
	}
	out := &Batch{data: append([]byte(nil), b.data[start:end]...), ends: make([]int, 0, j-i)}
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

// WriteNDJSON appends every document followed by '\n' to dst.
func (b *Batch) WriteNDJSON(dst []byte) []byte {
	start := 0
	for _, end := range b.ends {
		dst = append(dst, b.data[start:end]...)
		dst = append(dst, '\n')
		start = end
	}
	return dst
}
