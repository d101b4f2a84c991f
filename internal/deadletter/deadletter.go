// Package deadletter keeps what alertrelay could not parse or deliver, so
// that nothing is silently lost: one NDJSON file per source or sink under
// <state_dir>/deadletter/, each record carrying the time, the reason and the
// data.
package deadletter

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// File appends dead-letter records to one file. It is safe for concurrent
// use. Records are written with one write(2) each and fsynced on Close.
//
// A record is {"time":..., "component":..., "reason":..., "line":"..."} for
// a source (the raw line, as a string) or {..., "event":{...}} for a sink
// (the canonical document, as JSON).
type File struct {
	path      string
	component string
	isEvent   bool
	now       func() time.Time

	mu  sync.Mutex
	f   *os.File
	buf []byte
	n   int64
}

// Open opens (creating) the dead-letter file for component ("source ct",
// "sink siem") at path. With events, data is a JSON document and is embedded
// as such; otherwise it is a raw line.
func Open(path, component string, events bool, now func() time.Time) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("dead-letter file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("dead-letter file: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &File{path: path, component: component, isEvent: events, now: now, f: f}, nil
}

// Path is the file's path.
func (d *File) Path() string { return d.path }

// Count is how many records this File wrote since it was opened.
func (d *File) Count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// DeadLetter appends one record.
func (d *File) DeadLetter(reason string, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return os.ErrClosed
	}
	b := append(d.buf[:0], `{"time":"`...)
	b = d.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","component":`...)
	b = event.AppendJSONStr(b, d.component)
	b = append(b, `,"reason":`...)
	b = event.AppendJSONStr(b, reason)
	if d.isEvent && json.Valid(data) {
		b = append(b, `,"event":`...)
		b = append(b, data...)
	} else {
		b = append(b, `,"line":`...)
		b = event.AppendJSONString(b, data)
	}
	b = append(b, '}', '\n')
	d.buf = b
	if err := d.reopenIfMoved(); err != nil {
		return err
	}
	if _, err := d.f.Write(b); err != nil {
		return fmt.Errorf("dead-letter file %s: %w", d.path, err)
	}
	d.n++
	return nil
}

// reopenIfMoved starts a new file when the current one was renamed or
// removed (by `alertrelay deadletter replay`, or an operator), so records
// never go to a file nobody will read. Dead letters are rare; the stat per
// record is cheap. Called with mu held.
func (d *File) reopenIfMoved() error {
	cur, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("dead-letter file %s: %w", d.path, err)
	}
	if onDisk, err := os.Stat(d.path); err == nil && os.SameFile(cur, onDisk) {
		return nil
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("dead-letter file %s: %w", d.path, err)
	}
	d.f.Sync()
	d.f.Close()
	d.f = f
	return nil
}

// Close fsyncs and closes the file. It is idempotent.
func (d *File) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Sync()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	return err
}
