// Package state keeps what a polling source must remember across restarts:
// a cursor per source and an index of the alert versions already delivered,
// in one embedded bbolt file (<state_dir>/state.db).
//
// The poller's loop is: read a page from the cursor (minus an overlap
// window), drop what Seen reports, hand the rest to the pipeline, and once
// WriteBatch has returned call Commit, which records the page's keys and
// moves the cursor in one transaction. A crash at any instant therefore
// leaves either the old cursor and the old records or the new cursor and
// the new records, never a mix; the overlap re-reads what might have been
// missed and the index removes what was already delivered.
//
// Every write transaction is fsynced before it returns (bbolt's default).
//
// Layout (schema version 1):
//
//	meta/version                      "1"
//	sources/<source>/cursor           Cursor as JSON
//	sources/<source>/seen/<key>       recorded-at (8 bytes)
//	sources/<source>/expiry/<at><key> empty: the same records ordered by time, so
//	                                  Expire walks only what it deletes
//
// <key> is 16 bytes: the alert ID (8 bytes, big-endian, sign bit flipped)
// and the 64-bit FNV-1a hash of its LastSeen string. <at> is the
// recording time in Unix nanoseconds, big-endian with the sign bit flipped
// so that byte order is time order.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DefaultTimeout is how long Open waits for another process to release the
// file when Options.Timeout is zero.
const DefaultTimeout = time.Second

const schemaVersion = "1"

var (
	bucketMeta    = []byte("meta")
	bucketSources = []byte("sources")
	bucketSeen    = []byte("seen")
	bucketExpiry  = []byte("expiry")
	keyVersion    = []byte("version")
	keyCursor     = []byte("cursor")
)

// Errors.
var (
	// ErrLocked: another process (or another Store in this one) has the
	// file open.
	ErrLocked = errors.New("state: store is in use by another process")
	// ErrNoSource: the source name is empty.
	ErrNoSource = errors.New("state: empty source name")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("state: store is closed")
)

// Options configure a Store.
type Options struct {
	// Now is the clock for record times and Cursor.Updated; nil means
	// time.Now.
	Now func() time.Time
	// Timeout bounds how long Open waits for the file lock; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// Cursor is where a source resumes. It is stored as JSON, so members can be
// added without a migration; unknown members are ignored on read.
type Cursor struct {
	// LastSeen is the lower bound of the next query (before the overlap
	// window is subtracted).
	LastSeen time.Time `json:"last_seen"`
	// Updated is when the cursor was stored; SetCursor and Commit fill it
	// in from the clock when it is zero.
	Updated time.Time `json:"updated"`
}

// DedupKey identifies one version of an alert: for Cynet, ClientDbId and
// the LastSeen string exactly as the API sent it. The same ID with another
// LastSeen is an update, a different key.
type DedupKey struct {
	ID       int64
	LastSeen string
}

// keyLen is the size of an encoded DedupKey.
const keyLen = 16

// encode writes k's 16-byte index key. LastSeen is hashed rather than
// stored: fixed-size keys keep pages dense, and a collision needs two
// versions of the same alert ID whose 64-bit hashes agree (for a handful of
// versions per ID, odds around 2^-60), in which case one update would be
// taken for a duplicate.
func (k DedupKey) encode(dst *[keyLen]byte) {
	binary.BigEndian.PutUint64(dst[:8], uint64(k.ID)^(1<<63))
	binary.BigEndian.PutUint64(dst[8:], fnv1a(k.LastSeen))
}

func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// encodeTime writes t as 8 bytes whose byte order is time order.
func encodeTime(dst []byte, t time.Time) {
	binary.BigEndian.PutUint64(dst, uint64(t.UnixNano())^(1<<63))
}

func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63)))
}

// Store is the state file. Its methods are safe for concurrent use; bbolt
// serialises writers.
type Store struct {
	db  *bolt.DB
	now func() time.Time

	// beforeCommit, when set (by tests), runs inside Commit's transaction
	// after all writes; an error aborts the transaction.
	beforeCommit func() error
}

// Open opens or creates the state file at path (its directory is created
// too). It fails with ErrLocked after opt.Timeout when another process
// holds the file.
func Open(path string, opt Options) (*Store, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opt.Timeout,
		FreelistType: bolt.FreelistMapType, // Expire frees pages steadily; the map freelist stays fast
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, opt.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyVersion); {
		case v == nil:
			if err := meta.Put(keyVersion, []byte(schemaVersion)); err != nil {
				return err
			}
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, this build reads %q", v, schemaVersion)
		}
		_, err = tx.CreateBucketIfNotExists(bucketSources)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	return &Store{db: db, now: opt.Now}, nil
}

// Close closes the file. It is safe to call more than once.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

// srcBuckets are one source's buckets within a transaction.
type srcBuckets struct {
	root, seen, expiry *bolt.Bucket
}

// source returns the source's buckets, creating them in a writable
// transaction; in a read-only one ok is false when the source has none yet.
func source(tx *bolt.Tx, name string) (b srcBuckets, ok bool, err error) {
	if name == "" {
		return b, false, ErrNoSource
	}
	sources := tx.Bucket(bucketSources)
	if sources == nil {
		return b, false, errors.New("state: sources bucket missing")
	}
	if !tx.Writable() {
		b.root = sources.Bucket([]byte(name))
		if b.root == nil {
			return b, false, nil
		}
		b.seen, b.expiry = b.root.Bucket(bucketSeen), b.root.Bucket(bucketExpiry)
		return b, b.seen != nil && b.expiry != nil, nil
	}
	if b.root, err = sources.CreateBucketIfNotExists([]byte(name)); err != nil {
		return b, false, err
	}
	if b.seen, err = b.root.CreateBucketIfNotExists(bucketSeen); err != nil {
		return b, false, err
	}
	if b.expiry, err = b.root.CreateBucketIfNotExists(bucketExpiry); err != nil {
		return b, false, err
	}
	// Expiry keys arrive in time order: fill pages fully instead of
	// splitting them in half.
	b.expiry.FillPercent = 0.95
	return b, true, nil
}

// Cursor returns the source's cursor; ok is false when none was stored.
func (s *Store) Cursor(src string) (c Cursor, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b, _, err := source(tx, src)
		if err != nil || b.root == nil {
			return err
		}
		v := b.root.Get(keyCursor)
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &c)
	})
	if err != nil {
		return Cursor{}, false, wrap("cursor", src, err)
	}
	return c, ok, nil
}

// SetCursor stores the source's cursor durably.
func (s *Store) SetCursor(src string, c Cursor) error {
	v, err := s.encodeCursor(c)
	if err != nil {
		return wrap("set cursor", src, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, _, err := source(tx, src)
		if err != nil {
			return err
		}
		return b.root.Put(keyCursor, v)
	})
	return wrap("set cursor", src, err)
}

func (s *Store) encodeCursor(c Cursor) ([]byte, error) {
	if c.Updated.IsZero() {
		c.Updated = s.now()
	}
	c.LastSeen, c.Updated = c.LastSeen.UTC(), c.Updated.UTC()
	return json.Marshal(c)
}

// Seen reports, for each key, whether it is recorded for the source.
func (s *Store) Seen(src string, keys []DedupKey) ([]bool, error) {
	seen := make([]bool, len(keys))
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok, err := source(tx, src)
		if err != nil || !ok {
			return err
		}
		// One cursor for all lookups: Bucket.Get makes a new one each time.
		c := b.seen.Cursor()
		var k [keyLen]byte
		for i := range keys {
			keys[i].encode(&k)
			got, _ := c.Seek(k[:])
			seen[i] = string(got) == string(k[:])
		}
		return nil
	})
	if err != nil {
		return nil, wrap("seen", src, err)
	}
	return seen, nil
}

// Record records keys for the source at time at. A key already recorded
// takes the new time (its TTL restarts).
func (s *Store) Record(src string, keys []DedupKey, at time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, _, err := source(tx, src)
		if err != nil {
			return err
		}
		return record(b, keys, at)
	})
	return wrap("record", src, err)
}

// Commit records keys (at the clock's now) and stores the cursor in one
// transaction: when it returns nil both are durable, when it fails neither
// happened. This is what a poller calls once a page has been handed on.
func (s *Store) Commit(src string, c Cursor, keys []DedupKey) error {
	v, err := s.encodeCursor(c)
	if err != nil {
		return wrap("commit", src, err)
	}
	at := s.now()
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, _, err := source(tx, src)
		if err != nil {
			return err
		}
		if err := record(b, keys, at); err != nil {
			return err
		}
		if err := b.root.Put(keyCursor, v); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			return s.beforeCommit()
		}
		return nil
	})
	return wrap("commit", src, err)
}

// record writes keys into both indexes. bbolt copies keys but keeps value
// slices until the commit, so every value here is the one shared atBuf.
func record(b srcBuckets, keys []DedupKey, at time.Time) error {
	atBuf := make([]byte, 8)
	encodeTime(atBuf, at)
	var k [keyLen]byte
	var ek [8 + keyLen]byte
	copy(ek[:8], atBuf)
	for i := range keys {
		keys[i].encode(&k)
		if old := b.seen.Get(k[:]); old != nil {
			if string(old) == string(atBuf) {
				continue
			}
			var oek [8 + keyLen]byte
			copy(oek[:8], old)
			copy(oek[8:], k[:])
			if err := b.expiry.Delete(oek[:]); err != nil {
				return err
			}
		}
		if err := b.seen.Put(k[:], atBuf); err != nil {
			return err
		}
		copy(ek[8:], k[:])
		if err := b.expiry.Put(ek[:], nil); err != nil {
			return err
		}
	}
	return nil
}

// expireChunk bounds the records one Expire transaction deletes, so a large
// backlog does not build one huge transaction.
const expireChunk = 10000

// Expire deletes the source's records made before olderThan and returns
// how many it deleted.
func (s *Store) Expire(src string, olderThan time.Time) (int, error) {
	var cutoff [8]byte
	encodeTime(cutoff[:], olderThan)
	total := 0
	for {
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			b, _, err := source(tx, src)
			if err != nil {
				return err
			}
			c := b.expiry.Cursor()
			for k, _ := c.First(); k != nil && n < expireChunk; k, _ = c.First() {
				if len(k) != 8+keyLen || string(k[:8]) >= string(cutoff[:]) {
					break
				}
				// The seen entry belongs to this expiry entry only if its
				// time matches (record deletes the old expiry entry when it
				// refreshes a key, so it always does; checked anyway).
				if v := b.seen.Get(k[8:]); v != nil && string(v) == string(k[:8]) {
					if err := b.seen.Delete(k[8:]); err != nil {
						return err
					}
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil {
			return total, wrap("expire", src, err)
		}
		if n < expireChunk {
			return total, nil
		}
	}
}

// Count returns the number of records the source holds.
func (s *Store) Count(src string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok, err := source(tx, src)
		if err != nil || !ok {
			return err
		}
		n = b.seen.Stats().KeyN
		return nil
	})
	return n, wrap("count", src, err)
}

// Oldest returns the recording time of the source's oldest record; ok is
// false when it has none.
func (s *Store) Oldest(src string) (t time.Time, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b, found, err := source(tx, src)
		if err != nil || !found {
			return err
		}
		if k, _ := b.expiry.Cursor().First(); len(k) >= 8 {
			t, ok = decodeTime(k[:8]), true
		}
		return nil
	})
	return t, ok, wrap("oldest", src, err)
}

func wrap(op, src string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if errors.Is(err, ErrNoSource) || errors.Is(err, ErrClosed) {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	return fmt.Errorf("state: %s %q: %w", op, src, err)
}
