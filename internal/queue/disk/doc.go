// Package disk is the crash-safe queue.Queue: a directory of append-only
// segment files with group-committed fsyncs, so that events a source has
// handed over survive a crash of alertrelay, of the kernel or of the power,
// and are delivered at least once.
//
// # Guarantees
//
// Push returns nil only after the fsync that covers the batch (and, for a
// batch that opened a new segment, the fsync of the directory). Concurrent
// pushes share fsyncs (group commit): each writes its records with one
// write(2) and waits for the next fsync round of a background goroutine.
// A Push that returns an error may still have stored the batch (the write
// succeeded but the fsync failed, or ctx ended while waiting for it): the
// caller retries and the batch may then be delivered twice. Acked records are
// never handed out again by the same Disk; after a crash the records after
// the last persisted position are handed out again (duplicates, never loss).
// The position is written on every Ack but fsynced at most once a second,
// before any segment is deleted, and on Close.
//
// # Capacity
//
// Options.MaxBytes bounds the unacked records as they are stored: each
// document plus its 16-byte header (a memory queue counts the document and
// its newline). Stats().Bytes is in the same measure. The directory can hold
// more than MaxBytes: the acked records of the oldest segment (up to
// SegmentBytes), acked segments not yet deleted (deletion follows the
// position's fsync, within a second), and whatever is in quarantine/.
//
// # Directory layout
//
// One directory per queue (the caller chooses it, e.g.
// <state_dir>/queue/<sink>):
//
//	00000000000000000007.seg  segment files: the queue's records
//	00000000000000000008.seg  (sequence number, 20 decimal digits)
//	position                  the read position: where the oldest unacked record is
//	lock                      flock(2)ed by the process that has the queue open
//	quarantine/               copies of segments found damaged, for inspection
//
// Other entries are ignored (and logged). Nothing in quarantine/ is read
// again or deleted by alertrelay: an operator removes it after inspection.
// Open starts a new segment every time, with a sequence number above every
// existing one, and the writer rotates to a new segment before a batch would
// take the active one past Options.SegmentBytes (a batch never spans two
// segments; a batch larger than SegmentBytes gets a segment of its own).
// Segments whose records are all acked are deleted.
//
// # Segment format
//
// A segment is a sequence of records, nothing else (no file header). One
// record per document, all integers little-endian:
//
//	offset  size  field
//	0       4     payload length N (at most MaxDocBytes)
//	4       4     CRC-32C (Castagnoli) of bytes [8, 16+N): timestamp and payload
//	8       8     timestamp: Unix nanoseconds of the Push that stored the record
//	16      N     payload: the document, without its trailing '\n'
//
// The records of one Push are contiguous and share their timestamp. To look
// at a segment by hand:
//
//	xxd 00000000000000000007.seg | head   # 16-byte headers, JSON after each
//
// or run Verify on the directory, which reports every record it cannot read.
//
// # Position format
//
// The position file has two 32-byte slots, at offsets 0 and 512 (distinct
// disk sectors), written alternately so that a torn write leaves the other,
// older slot intact:
//
//	offset  size  field
//	0       4     magic "AQP1"
//	4       8     generation (each write increments it; the valid slot with the highest wins)
//	12      8     segment sequence number
//	20      8     byte offset in that segment
//	28      4     CRC-32C of bytes [0, 28)
//
// A record at (segment, offset .. end) is acked when its segment is below the
// position's, or it is the position's and end <= the position's offset. A
// missing or unreadable position file means "nothing acked": every retained
// record is handed out again.
//
// # Recovery
//
// Open scans every segment that holds unacked records, verifying every
// record, and repairs what it finds; it never fails because of the contents
// of the directory:
//
//   - Damage at the end of a segment with no valid record after it (a torn
//     write: short header, short payload, CRC mismatch, zeros) is truncated
//     away. Such records were never acknowledged to a pusher. This applies
//     to every segment, not only the last: a crash just after a rotation
//     can tear the end of the previous one. A file named like a segment
//     without a single good record is moved to quarantine/ whole.
//   - A damaged record with valid records after it (bit rot, a misdirected
//     write) is skipped: the segment is copied to quarantine/, then rewritten
//     with every good record (temporary file, fsync, rename, directory
//     fsync). The length field of a damaged record is not trusted: the scan
//     resynchronises by looking, byte by byte, for the next offset where a
//     complete record with a valid CRC starts. The CRC work this may cost
//     is bounded; past the bound the rest of the segment counts as damaged.
//     If the rewrite fails (disk full) the segment is left as it is and Pop
//     skips its damaged records.
//   - A missing, torn or invalid position file falls back to the oldest
//     retained record (an invalid one is moved to quarantine/); a position
//     that points into a removed or rewritten region moves to the next good
//     record at or after it, and one inside a record leaves that record
//     unacked.
//   - Segments below the position are deleted unread; left-over temporary
//     files of an interrupted rewrite (*.seg.tmp) are deleted.
//
// Damage that appears while the queue is open is skipped by Pop (counted in
// Detail().Corrupt and logged).
//
// # Offline tools
//
// Verify reports on a directory without changing it; Repair performs Open's
// recovery without opening the queue. Both are meant for a queue that no
// process has open: Repair takes the lock and fails while the queue is open;
// Verify takes no lock, and records being written meanwhile may show up as a
// torn tail.
package disk
