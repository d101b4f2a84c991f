package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/alertrelay/alertrelay/internal/event"
)

// MaxDocBytes is the largest document the disk queue stores. A length field
// above it marks a corrupt record header.
const MaxDocBytes = 64 << 20

const (
	headerSize = 16
	segSuffix  = ".seg"
	seqDigits  = 20
	posName    = "position"
	lockName   = "lock"
	quarName   = "quarantine"
	tmpSuffix  = ".tmp"

	posMagic    = "AQP1"
	posSlotSize = 32
	posSlot1    = 512 // offset of the second slot: another disk sector
	posMaxSize  = 4096

	dirPerm  = 0o750
	filePerm = 0o640
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var le = binary.LittleEndian

// segName is the file name of segment seq.
func segName(seq uint64) string {
	s := strconv.FormatUint(seq, 10)
	return strings.Repeat("0", seqDigits-len(s)) + s + segSuffix
}

// parseSegName returns the sequence number of a segment file name.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != seqDigits {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// recordCRC is the checksum of a record: CRC-32C over the timestamp bytes
// and the payload.
func recordCRC(ts, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, ts), castagnoli, payload)
}

// appendRecords appends one record per document of b, stamped ts.
func appendRecords(dst []byte, ts int64, b *event.Batch) []byte {
	var tsb [8]byte
	le.PutUint64(tsb[:], uint64(ts))
	tsCRC := crc32.Update(0, castagnoli, tsb[:])
	for i := range b.Len() {
		d := b.Doc(i)
		var h [headerSize]byte
		le.PutUint32(h[0:], uint32(len(d)))
		le.PutUint32(h[4:], crc32.Update(tsCRC, castagnoli, d))
		copy(h[8:], tsb[:])
		dst = append(dst, h[:]...)
		dst = append(dst, d...)
	}
	return dst
}

// Position is a read position: the segment sequence number and the byte
// offset in it of the oldest record not yet acked. Records that end at or
// before it are acked.
type Position struct {
	Seq    uint64
	Offset int64
}

// acks reports whether the record of segment seq ending at end is acked by
// position p.
func (p Position) acks(seq uint64, end int64) bool {
	return seq < p.Seq || (seq == p.Seq && end <= p.Offset)
}

func (p Position) String() string { return fmt.Sprintf("%s@%d", segName(p.Seq), p.Offset) }

// encodeSlot encodes one position slot.
func encodeSlot(p Position, gen uint64) []byte {
	b := make([]byte, posSlotSize)
	copy(b, posMagic)
	le.PutUint64(b[4:], gen)
	le.PutUint64(b[12:], p.Seq)
	le.PutUint64(b[20:], uint64(p.Offset))
	le.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// decodeSlot decodes a slot; ok is false when it is not a valid slot.
func decodeSlot(b []byte) (p Position, gen uint64, ok bool) {
	if len(b) < posSlotSize || string(b[:4]) != posMagic || le.Uint32(b[28:]) != crc32.Checksum(b[:28], castagnoli) {
		return Position{}, 0, false
	}
	off := int64(le.Uint64(b[20:]))
	if off < 0 {
		return Position{}, 0, false
	}
	return Position{Seq: le.Uint64(b[12:]), Offset: off}, le.Uint64(b[4:]), true
}

// slotOffset is where the slot of generation gen is written.
func slotOffset(gen uint64) int64 {
	if gen%2 == 0 {
		return 0
	}
	return posSlot1
}

// errNoPosition reports a missing position file.
var errNoPosition = errors.New("no position file")

// readPosition returns the valid slot with the highest generation.
// It returns errNoPosition when the file does not exist, another error when
// it is not a readable position file.
func readPosition(path string) (Position, uint64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, 0, errNoPosition
	}
	if err != nil {
		return Position{}, 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, posMaxSize+1))
	if err != nil {
		return Position{}, 0, err
	}
	if len(b) > posMaxSize {
		return Position{}, 0, fmt.Errorf("%d bytes: too large", len(b))
	}
	var best Position
	var bestGen uint64
	found := false
	for _, at := range []int{0, posSlot1} {
		if len(b) < at+posSlotSize {
			continue
		}
		if p, g, ok := decodeSlot(b[at:]); ok && (!found || g > bestGen) {
			best, bestGen, found = p, g, true
		}
	}
	if !found {
		return Position{}, 0, fmt.Errorf("no valid slot in %d bytes", len(b))
	}
	return best, bestGen, nil
}

// status classifies the bytes at an offset of a segment.
type status int

const (
	recOK       status = iota
	recShort           // the header or the payload runs past the end of the data
	recTooLarge        // the length field is above MaxDocBytes
	recBadCRC          // complete, plausible length, checksum mismatch
)

// window reads a segment through a buffer, by offset (ReadAt), so that the
// scanner can go back and forth and several readers need no shared file
// offset. Bytes below the limit given when they were read never change
// (segments are append-only), so the buffer stays valid.
type window struct {
	f     io.ReaderAt
	buf   []byte
	start int64 // file offset of buf[0]
}

const windowSize = 1 << 20

// bytes returns the bytes [off, off+n) of the file, which must lie below
// limit. The slice is valid until the next call.
func (w *window) bytes(off int64, n int, limit int64) ([]byte, error) {
	if off >= w.start && off+int64(n) <= w.start+int64(len(w.buf)) {
		i := off - w.start
		return w.buf[i : i+int64(n)], nil
	}
	want := int64(max(n, windowSize))
	want = min(want, limit-off)
	if want < int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	if int64(cap(w.buf)) < want || (cap(w.buf) > windowSize && want <= windowSize) {
		w.buf = make([]byte, want) // shrinks again after an exceptional record
	}
	w.buf = w.buf[:want]
	m, err := w.f.ReadAt(w.buf, off)
	if m < int(want) && want > int64(n) && !errors.Is(err, io.EOF) {
		// A bad block further on must not hide the bytes asked for:
		// read just those.
		want = int64(n)
		w.buf = w.buf[:want]
		m, err = w.f.ReadAt(w.buf, off)
	}
	if m < int(want) {
		w.buf = w.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file is shorter than it was
		}
		return nil, err
	}
	w.start = off
	return w.buf[:n], nil
}

// reset forgets the buffered bytes (the file changed).
func (w *window) reset(f io.ReaderAt) {
	w.f = f
	w.buf = w.buf[:0]
	w.start = 0
}

// check classifies the record at off in the data [0, limit). For recOK and
// recBadCRC it returns the payload length and timestamp.
func (w *window) check(off, limit int64) (n int, ts int64, st status, err error) {
	if limit-off < headerSize {
		return 0, 0, recShort, nil
	}
	h, err := w.bytes(off, headerSize, limit)
	if err != nil {
		return 0, 0, 0, err
	}
	ln, sum, ts := le.Uint32(h[0:]), le.Uint32(h[4:]), int64(le.Uint64(h[8:]))
	if ln > MaxDocBytes {
		return 0, 0, recTooLarge, nil
	}
	n = int(ln)
	if limit-off-headerSize < int64(n) {
		return 0, 0, recShort, nil
	}
	rec, err := w.bytes(off, headerSize+n, limit)
	if err != nil {
		return 0, 0, 0, err
	}
	if recordCRC(rec[8:16], rec[headerSize:]) != sum {
		return n, ts, recBadCRC, nil
	}
	return n, ts, recOK, nil
}

// payload returns the payload of the record at off, which check found good.
// Valid until the next call.
func (w *window) payload(off int64, n int, limit int64) ([]byte, error) {
	rec, err := w.bytes(off, headerSize+n, limit)
	if err != nil {
		return nil, err
	}
	return rec[headerSize:], nil
}

// errBudget reports a resynchronisation that gave up.
var errBudget = errors.New("resynchronisation budget exhausted")

// resync returns the first offset in [from, limit) where a complete record
// with a valid CRC starts, or -1 when there is none.
//
// Every offset is tried, but checksumming a candidate costs its length, so
// candidates are taken in two passes. Most offsets are rejected by their
// length field alone (in JSON text the length's top byte is never below
// 0x04). A candidate whose end is followed by another plausible header (or
// by the limit) is "strong" and checked at once; in random bytes strong
// candidates are rare. The others, "weak" (up to maxWeak of them), are
// checked afterwards, in order, only before the first valid strong one: a
// good record followed by damage is weak. The checksum work draws on
// *budget; when it runs out, resync returns the strong record it found, or
// -1 with errBudget.
func (w *window) resync(from, limit int64, budget *int64) (int64, error) {
	const maxWeak = 4096
	var weak []int64
	found := int64(-1)
	for off := from; limit-off >= headerSize; off++ {
		h, err := w.bytes(off, headerSize, limit)
		if err != nil {
			return -1, err
		}
		ln := int64(le.Uint32(h))
		if ln > MaxDocBytes || ln > limit-off-headerSize {
			continue
		}
		strong, err := w.plausibleAt(off+headerSize+ln, limit)
		if err != nil {
			return -1, err
		}
		if !strong {
			if len(weak) < maxWeak {
				weak = append(weak, off)
			}
			continue
		}
		ok, err := w.valid(off, ln, limit, budget)
		if err != nil {
			return -1, err
		}
		if ok {
			found = off
			break
		}
	}
	for _, off := range weak {
		if found >= 0 && off > found {
			break
		}
		h, err := w.bytes(off, headerSize, limit)
		if err != nil {
			return -1, err
		}
		ok, err := w.valid(off, int64(le.Uint32(h)), limit, budget)
		if errors.Is(err, errBudget) && found >= 0 {
			return found, nil
		}
		if err != nil {
			return -1, err
		}
		if ok {
			return off, nil
		}
	}
	return found, nil
}

// valid checks the CRC of the candidate record at off, paying ln+8 from
// *budget.
func (w *window) valid(off, ln, limit int64, budget *int64) (bool, error) {
	if *budget < ln {
		return false, errBudget
	}
	*budget -= ln + 8
	_, _, st, err := w.check(off, limit)
	return st == recOK, err
}

// plausibleAt reports whether a record could start at off: off is the
// limit, or a header is there whose length fits. It reads 16 bytes past the
// window rather than move it.
func (w *window) plausibleAt(off, limit int64) (bool, error) {
	if off == limit {
		return true, nil
	}
	if limit-off < headerSize {
		return false, nil
	}
	var h []byte
	if off >= w.start && off+headerSize <= w.start+int64(len(w.buf)) {
		h = w.buf[off-w.start:]
	} else {
		var b [headerSize]byte
		if _, err := w.f.ReadAt(b[:], off); err != nil {
			return false, err
		}
		h = b[:]
	}
	ln := int64(le.Uint32(h))
	return ln <= MaxDocBytes && ln <= limit-off-headerSize, nil
}

// resyncBudget is the CRC work a resynchronisation over size bytes may do.
func resyncBudget(size int64) int64 { return 8*size + 2*MaxDocBytes }
