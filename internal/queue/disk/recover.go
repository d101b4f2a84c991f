package disk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report describes a queue directory: what Verify found, or what Open or
// Repair found and fixed.
type Report struct {
	Dir string
	// Position is the read position: as found by Verify; as written by
	// Repair and Open, where it is the oldest unacked record (or, with
	// nothing pending, the start of the next segment).
	Position Position
	// PositionMissing: there were segments but no position file.
	PositionMissing bool
	// PositionInvalid: the position file was unreadable, torn or failed its
	// CRC. Repair and Open move it to quarantine/ and hand out every
	// retained record again.
	PositionInvalid bool
	// PositionMoved: the position pointed into damaged or truncated data,
	// not at a record; reading resumes at the next good record after it.
	PositionMoved bool

	Segments []SegmentReport // in sequence order

	// Totals over Segments.
	Records      int   // good records
	Bytes        int64 // their bytes, 16-byte headers included
	Pending      int   // good records not acked
	PendingBytes int64
	Corrupt      int   // damaged regions followed by good records; each hid at least one record
	CorruptBytes int64 // their bytes
	TornBytes    int64 // damaged bytes at segment ends (truncated by Repair and Open)

	Quarantined []string // copies or files moved to quarantine/
	Removed     []string // segment files deleted: fully acked, or empty after repair
	Ignored     []string // directory entries that are not part of the queue, left alone
	// Problems lists repairs that failed (I/O errors) and what was done
	// instead. The queue still works: damage left in place is skipped when
	// read.
	Problems []string
}

// Damaged reports whether anything was wrong: damaged or torn records, a
// missing, invalid or misplaced position, or a repair that failed.
func (r *Report) Damaged() bool {
	return r.Corrupt > 0 || r.TornBytes > 0 || r.PositionMissing || r.PositionInvalid || r.PositionMoved || len(r.Problems) > 0
}

// SegmentReport describes one segment file.
type SegmentReport struct {
	Path         string
	Seq          uint64
	Size         int64 // file size found
	Records      int   // good records (not counted for a segment Repair or Open deleted unread as fully acked)
	Bytes        int64 // their bytes
	Pending      int   // good records not acked
	PendingBytes int64
	Corrupt      int // damaged regions followed by good records
	CorruptBytes int64
	TornBytes    int64     // damaged bytes at the end
	Oldest       time.Time // push times of its good records; zero without any
	Newest       time.Time
	// Action is what Repair or Open did: "" (nothing), "truncated" (torn
	// tail removed), "rewritten" (damaged records dropped, original in
	// quarantine/), "removed" (fully acked or empty), or "quarantined" (moved
	// to quarantine/ whole: unreadable, or not one good record in it).
	Action string
}

// Recovery is what Open found in the queue directory and fixed; it is the
// Report that Repair would have returned.
type Recovery = Report

// Verify reads every segment of the queue in dir and reports what it finds,
// changing nothing. It is meant for a queue no process has open (the lock is
// not taken, so a concurrent writer's last records may show up as a torn
// tail). The error is for a directory that cannot be listed; damage is
// reported, not returned.
func Verify(dir string) (Report, error) {
	r, _, err := recoverDir(dir, defaultEnv(), false)
	return r, err
}

// Repair does what Open does to a damaged queue, without opening it:
// truncates torn tails, rewrites segments with damaged records (keeping
// every good record, the original copied to quarantine/), deletes fully
// acked segments, and rewrites the position file. It takes the queue's lock,
// so it fails while a process has the queue open.
func Repair(dir string) (Report, error) {
	e := defaultEnv()
	lock, err := lockDir(dir, e)
	if err != nil {
		return Report{Dir: dir}, err
	}
	defer lock.Close()
	r, st, err := recoverDir(dir, e, true)
	if err != nil {
		return r, err
	}
	r.Position = st.first
	if st.pending == 0 {
		r.Position = Position{Seq: st.nextSeq}
	}
	if err := writePositionFile(filepath.Join(dir, posName), r.Position, st.gen+1, e.sync); err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("writing the position: %v", err))
	}
	return r, nil
}

// env is what recovery needs from its caller.
type env struct {
	log  *slog.Logger
	sync func(*os.File) error
	now  func() time.Time
}

func defaultEnv() env {
	return env{log: slog.New(slog.DiscardHandler), sync: (*os.File).Sync, now: time.Now}
}

// syncDir fsyncs a directory, making renames, creations and deletions in it
// durable.
func (e *env) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = e.sync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// recovered is the state Open starts from.
type recovered struct {
	segs    []*segment // retained, in order, each with pending records
	first   Position   // the oldest pending record, when pending > 0
	pending int
	pendB   int64  // bytes of pending records
	nextSeq uint64 // above every segment seen and the position's
	gen     uint64 // the position file's generation
}

// recoverDir scans the queue in dir; with repair it also fixes what it finds.
func recoverDir(dir string, e env, repair bool) (Report, *recovered, error) {
	rep := Report{Dir: dir}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return rep, nil, err
	}
	type segFile struct {
		seq  uint64
		name string
	}
	var files []segFile
	var maxSeq uint64
	for _, de := range ents {
		name := de.Name()
		if seq, ok := parseSegName(name); ok {
			maxSeq = max(maxSeq, seq)
			if de.Type().IsRegular() {
				files = append(files, segFile{seq, name})
				continue
			}
		}
		switch {
		case name == posName || name == lockName:
			continue // checked where they are used
		case name == quarName && de.IsDir():
			continue
		case strings.HasSuffix(name, segSuffix+tmpSuffix) && de.Type().IsRegular() && repair:
			// Left by a rewrite that did not reach its rename: the
			// segment itself is still the original.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("removing %s: %v", name, err))
			}
			continue
		}
		rep.Ignored = append(rep.Ignored, name)
		e.log.Warn("disk queue: ignoring an unknown entry in the queue directory", "dir", dir, "name", name)
	}
	slices.SortFunc(files, func(a, b segFile) int { return cmpUint(a.seq, b.seq) })

	posPath := filepath.Join(dir, posName)
	pos, gen, perr := readPosition(posPath)
	posOK := perr == nil
	switch {
	case posOK:
	case errors.Is(perr, errNoPosition):
		rep.PositionMissing = len(files) > 0
		pos = Position{}
	default:
		rep.PositionInvalid = true
		pos = Position{}
		e.log.Warn("disk queue: position file invalid; every retained record will be delivered again", "dir", dir, "err", perr)
		if repair {
			if q, err := e.quarantineMove(dir, posName); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("moving the invalid position file to quarantine: %v", err))
			} else {
				rep.Quarantined = append(rep.Quarantined, q)
			}
		}
	}
	rep.Position = pos
	st := &recovered{gen: gen, nextSeq: max(maxSeq, pos.Seq) + 1}

	// Segments are deleted below on the strength of the position: make it
	// durable first (its writer may have died before fsyncing it).
	canDelete := repair && posOK
	if canDelete && len(files) > 0 {
		if err := syncPath(posPath, e.sync); err != nil {
			canDelete = false
			rep.Problems = append(rep.Problems, fmt.Sprintf("fsyncing the position file (no segment deleted): %v", err))
		}
	}

	for _, sf := range files {
		path := filepath.Join(dir, sf.name)
		if canDelete && sf.seq < pos.Seq {
			sr := SegmentReport{Path: path, Seq: sf.seq, Action: "removed"}
			if fi, err := os.Stat(path); err == nil {
				sr.Size = fi.Size()
			}
			if err := os.Remove(path); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("removing acked %s: %v", sf.name, err))
				sr.Action = ""
			} else {
				rep.Removed = append(rep.Removed, path)
			}
			rep.Segments = append(rep.Segments, sr)
			continue
		}
		sr, seg, first, err := e.recoverSegment(dir, sf.name, sf.seq, pos, posOK, repair, &rep, &st.gen)
		if err != nil {
			return rep, nil, err
		}
		rep.Segments = append(rep.Segments, sr)
		rep.Records += sr.Records
		rep.Bytes += sr.Bytes
		rep.Pending += sr.Pending
		rep.PendingBytes += sr.PendingBytes
		rep.Corrupt += sr.Corrupt
		rep.CorruptBytes += sr.CorruptBytes
		rep.TornBytes += sr.TornBytes
		if seg != nil {
			if len(st.segs) == 0 {
				st.first = Position{Seq: sf.seq, Offset: first}
			}
			st.segs = append(st.segs, seg)
			st.pending += sr.Pending
			st.pendB += sr.PendingBytes
		}
	}
	if repair {
		level := slog.LevelInfo
		if rep.Damaged() {
			level = slog.LevelWarn
		}
		e.log.Log(context.Background(), level, "disk queue: recovered", "dir", dir, "segments", len(rep.Segments), "pending", rep.Pending,
			"corrupt", rep.Corrupt, "corrupt_bytes", rep.CorruptBytes, "torn_bytes", rep.TornBytes,
			"quarantined", rep.Quarantined, "removed", len(rep.Removed), "position_missing", rep.PositionMissing,
			"position_invalid", rep.PositionInvalid, "position_moved", rep.PositionMoved, "problems", rep.Problems)
	}
	return rep, st, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// recoverSegment scans one segment and, with repair, fixes it. It returns
// the segment to retain (nil when it holds nothing pending or repair is
// off) and the offset of its first pending record.
func (e *env) recoverSegment(dir, name string, seq uint64, pos Position, posOK, repair bool, rep *Report, gen *uint64) (SegmentReport, *segment, int64, error) {
	path := filepath.Join(dir, name)
	sr := SegmentReport{Path: path, Seq: seq}
	problem := func(format string, args ...any) {
		msg := name + ": " + fmt.Sprintf(format, args...)
		rep.Problems = append(rep.Problems, msg)
		e.log.Error("disk queue: recovery problem", "dir", dir, "problem", msg)
	}
	f, err := os.Open(path)
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	first := int64(-1)
	onBoundary := pos.Offset == 0
	var sc segScan
	if err == nil {
		defer f.Close()
		sr.Size = fi.Size()
		sc, err = scanSegment(f, fi.Size(), func(off int64, rec []byte) error {
			end := off + int64(len(rec))
			if end == pos.Offset {
				onBoundary = true
			}
			if !pos.acks(seq, end) {
				if first < 0 {
					first = off
				}
				sr.Pending++
				sr.PendingBytes += end - off
			}
			return nil
		})
	}
	if err != nil {
		// Unreadable (EIO, permissions): set it aside whole so that the
		// queue can start; its records are reported lost.
		problem("unreadable: %v", err)
		if !repair {
			return sr, nil, 0, nil
		}
		q, qerr := e.quarantineMove(dir, name)
		if qerr != nil {
			return sr, nil, 0, fmt.Errorf("disk queue: %s is unreadable (%v) and cannot be moved to quarantine: %w", path, err, qerr)
		}
		sr.Action = "quarantined"
		rep.Quarantined = append(rep.Quarantined, q)
		return sr, nil, 0, nil
	}
	sr.Records, sr.Bytes = sc.records, sc.bytes
	sr.Corrupt, sr.CorruptBytes = sc.corrupt, sc.corruptBytes
	if sc.tornFrom >= 0 {
		sr.TornBytes = sc.size - sc.tornFrom
	}
	if sc.records > 0 {
		sr.Oldest, sr.Newest = time.Unix(0, sc.oldest), time.Unix(0, sc.newest)
	}
	if posOK && seq == pos.Seq && !onBoundary {
		rep.PositionMoved = true
	}
	if sc.corrupt > 0 || sc.tornFrom >= 0 {
		e.log.Warn("disk queue: damaged segment", "path", path, "records", sc.records, "corrupt", sc.corrupt,
			"corrupt_bytes", sc.corruptBytes, "first_damage", sc.firstBad, "torn_bytes", sr.TornBytes, "gave_up", sc.gaveUp)
	}
	if !repair {
		return sr, nil, 0, nil
	}

	keep := sc.dataEnd()
	switch {
	case sr.Pending == 0:
		// Nothing to rewrite or truncate: it goes.
	case sc.corrupt > 0:
		q, size, newFirst, err := e.rewrite(dir, name, f, sc, seq, pos, posOK, gen)
		if err != nil {
			problem("rewriting without its damaged records: %v (left as it is; the damaged records are skipped when read)", err)
			break
		}
		rep.Quarantined = append(rep.Quarantined, q)
		sr.Action = "rewritten"
		keep, first = size, newFirst
	case sc.tornFrom >= 0:
		if err := e.truncate(path, sc.tornFrom); err != nil {
			problem("truncating the torn tail: %v (left in place; it is never read)", err)
			break
		}
		sr.Action = "truncated"
	}
	if sr.Pending == 0 && sc.records == 0 && sr.Size > 0 {
		// Not one readable record: keep it for inspection rather than
		// delete something that may not even be a segment.
		q, err := e.quarantineMove(dir, name)
		if err != nil {
			problem("moving to quarantine: %v", err)
			return sr, nil, 0, nil
		}
		sr.Action = "quarantined"
		rep.Quarantined = append(rep.Quarantined, q)
		return sr, nil, 0, nil
	}
	if sr.Pending == 0 {
		if err := os.Remove(path); err != nil {
			problem("removing: %v", err)
		} else {
			sr.Action = "removed"
			rep.Removed = append(rep.Removed, path)
		}
		return sr, nil, 0, nil
	}
	return sr, &segment{seq: seq, size: keep, records: sc.records}, first, nil
}

// truncate cuts a segment to size and fsyncs it.
func (e *env) truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = e.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewrite copies the segment to quarantine/, then replaces it with a copy
// holding only its good records. It returns the quarantined copy, the new
// size and the new offset of the first record pos does not ack.
func (e *env) rewrite(dir, name string, f *os.File, sc segScan, seq uint64, pos Position, posOK bool, gen *uint64) (string, int64, int64, error) {
	path := filepath.Join(dir, name)
	q, err := e.quarantineCopy(dir, name, f, sc.size)
	if err != nil {
		return "", 0, 0, fmt.Errorf("copying to quarantine: %w", err)
	}
	tmp := path + tmpSuffix
	t, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return q, 0, 0, err
	}
	bw := bufio.NewWriterSize(t, 1<<20)
	var n int64
	first := int64(-1)
	_, err = scanSegment(f, sc.size, func(off int64, rec []byte) error {
		if first < 0 && !pos.acks(seq, off+int64(len(rec))) {
			first = n
		}
		n += int64(len(rec))
		_, err := bw.Write(rec)
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = e.sync(t)
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil && posOK && pos.Seq == seq && pos.Offset > sc.firstBad {
		// Between the rename and the final position write, the position
		// on disk must be right for the old file and the new one alike:
		// records before the first damage are at the same offsets in both.
		*gen++
		err = writePositionFile(filepath.Join(dir, posName), Position{Seq: seq, Offset: sc.firstBad}, *gen, e.sync)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return q, 0, 0, err
	}
	if err := e.syncDir(dir); err != nil {
		return q, 0, 0, err
	}
	return q, n, first, nil
}

// quarantineDir returns dir/quarantine, creating it if needed.
func (e *env) quarantineDir(dir string) (string, error) {
	qdir := filepath.Join(dir, quarName)
	fi, err := os.Lstat(qdir)
	if err == nil && fi.IsDir() {
		return qdir, nil
	}
	if err == nil {
		// Something else has the name: move it aside.
		if err := os.Rename(qdir, qdir+".invalid."+strconv.FormatInt(e.now().UnixNano(), 10)); err != nil {
			return "", err
		}
	}
	if err := os.Mkdir(qdir, dirPerm); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return qdir, e.syncDir(dir)
}

// quarantineName returns a fresh path in the quarantine directory for name.
func (e *env) quarantineName(qdir, name string) string {
	base := filepath.Join(qdir, name+"."+strconv.FormatInt(e.now().UnixNano(), 10))
	p := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
		p = base + "-" + strconv.Itoa(i)
	}
}

// quarantineCopy copies the first size bytes of f into the quarantine
// directory, durably.
func (e *env) quarantineCopy(dir, name string, f *os.File, size int64) (string, error) {
	qdir, err := e.quarantineDir(dir)
	if err != nil {
		return "", err
	}
	dst := e.quarantineName(qdir, name)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, 0, size))
	if err == nil {
		err = e.sync(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = e.syncDir(qdir)
	}
	if err != nil {
		os.Remove(dst)
		return "", err
	}
	return dst, nil
}

// quarantineMove moves dir/name into the quarantine directory.
func (e *env) quarantineMove(dir, name string) (string, error) {
	qdir, err := e.quarantineDir(dir)
	if err != nil {
		return "", err
	}
	dst := e.quarantineName(qdir, name)
	if err := os.Rename(filepath.Join(dir, name), dst); err != nil {
		return "", err
	}
	if err := e.syncDir(qdir); err != nil {
		return dst, err
	}
	return dst, e.syncDir(dir)
}

// syncPath fsyncs the file at path.
func syncPath(path string, sync func(*os.File) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = sync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writePositionFile writes p into its slot of the position file and fsyncs
// it.
func writePositionFile(path string, p Position, gen uint64, sync func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(encodeSlot(p, gen), slotOffset(gen))
	if err == nil {
		err = sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockDir takes the queue's lock (flock on dir/lock), held until the
// returned file is closed.
func lockDir(dir string, e env) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		if _, err := e.quarantineMove(dir, lockName); err != nil {
			return nil, fmt.Errorf("disk queue: %s is not a regular file and cannot be moved aside: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("disk queue: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("disk queue %s is in use (locked by another process or another open Disk)", dir)
		}
		return nil, fmt.Errorf("disk queue: locking %s: %w", path, err)
	}
	return f, nil
}
