package deadletter

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Record is one dead-letter record as read back.
type Record struct {
	Time      string          `json:"time"`
	Component string          `json:"component"`
	Reason    string          `json:"reason"`
	Event     json.RawMessage `json:"event,omitempty"` // sink records
	Line      *string         `json:"line,omitempty"`  // source records
}

// Read calls fn for every record in r, in order. A line that is not a
// record (a torn last line after a crash) is reported to bad and skipped.
func Read(r io.Reader, fn func(Record) error, bad func(lineNo int, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			if bad != nil {
				bad(n, err)
			}
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	return nil
}
