package disk

import (
	"errors"
	"io"
)

// segScan is what verifying every record of a segment found.
type segScan struct {
	size         int64 // bytes scanned (the file size)
	records      int   // good records
	bytes        int64 // their bytes, headers included
	corrupt      int   // damaged regions with good records after them; each hides at least one record
	corruptBytes int64
	firstBad     int64 // offset of the first damaged region, or -1
	tornFrom     int64 // start of the damaged tail with no good record after it, or -1
	oldest       int64 // smallest and largest timestamps of good records
	newest       int64
	gaveUp       bool // resynchronisation ran out of budget: the rest counts as one damaged region
}

// dataEnd is where the data worth keeping ends: before the torn tail.
func (s *segScan) dataEnd() int64 {
	if s.tornFrom >= 0 {
		return s.tornFrom
	}
	return s.size
}

// scanSegment verifies the records of a segment of size bytes. good, when
// not nil, is called for each good record in order with its offset and its
// bytes (header and payload, valid during the call); an error from it stops
// the scan.
//
// A record that fails (short header, length above MaxDocBytes, short
// payload, CRC mismatch) starts a damaged region that ends where the next
// good record starts, found by trying every following offset; the length
// field of a damaged record is not trusted, since a flipped bit in it could
// otherwise skip good records. When no good record follows, the region is
// the torn tail.
func scanSegment(f io.ReaderAt, size int64, good func(off int64, rec []byte) error) (segScan, error) {
	s := segScan{size: size, firstBad: -1, tornFrom: -1}
	w := window{f: f}
	budget := resyncBudget(size)
	for off := int64(0); off < size; {
		n, ts, st, err := w.check(off, size)
		if err != nil {
			return s, err
		}
		if st == recOK {
			end := off + headerSize + int64(n)
			if good != nil {
				rec, err := w.bytes(off, headerSize+n, size)
				if err != nil {
					return s, err
				}
				if err := good(off, rec); err != nil {
					return s, err
				}
			}
			if s.records == 0 || ts < s.oldest {
				s.oldest = ts
			}
			if s.records == 0 || ts > s.newest {
				s.newest = ts
			}
			s.records++
			s.bytes += end - off
			off = end
			continue
		}
		next, err := w.resync(off+1, size, &budget)
		if errors.Is(err, errBudget) {
			s.gaveUp = true
			next = size
		} else if err != nil {
			return s, err
		}
		if next < 0 {
			s.tornFrom = off
			break
		}
		if s.firstBad < 0 {
			s.firstBad = off
		}
		s.corrupt++
		s.corruptBytes += next - off
		off = next
	}
	return s, nil
}
