package event

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// IDGen hands out event IDs that are unique across processes and restarts
// without coordination: a random 64-bit prefix drawn at start-up followed by a
// counter. IDs are fixed-length (24 characters), URL- and filename-safe, and
// sort in issue order within one process. They serve as the Elasticsearch
// _id and Kafka key, so a retried delivery overwrites instead of duplicating.
//
// IDGen is safe for concurrent use.
type IDGen struct {
	prefix [11]byte
	n      atomic.Uint64
}

// NewIDGen returns a generator with a fresh random prefix.
func NewIDGen() *IDGen {
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		panic("event: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return NewIDGenSeed(binary.BigEndian.Uint64(seed[:]))
}

// NewIDGenSeed returns a generator with a fixed prefix, for tests and
// reproducible output.
func NewIDGenSeed(seed uint64) *IDGen {
	g := &IDGen{}
	encode64(g.prefix[:], seed)
	return g
}

// idAlphabet is Crockford-like base32 (lower case), sortable in ASCII order.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// encode64 writes v in base32, most significant first, into the 11 bytes of
// dst (13 digits would be needed for 64 bits at 5 bits each; 11 digits keep
// 55 bits, plenty for a per-process random prefix).
func encode64(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = idAlphabet[v&31]
		v >>= 5
	}
}

// Append appends the next ID to dst.
func (g *IDGen) Append(dst []byte) []byte {
	n := g.n.Add(1)
	dst = append(dst, g.prefix[:]...)
	var c [13]byte
	encode64(c[:], n)
	return append(dst, c[:]...)
}

// Next returns the next ID as a string.
func (g *IDGen) Next() string { return string(g.Append(make([]byte, 0, 24))) }
