// Package syslog is a syslog receiver that stands in for rsyslog, syslog-ng
// or a SIEM's syslog collector in tests, demos and benchmarks of
// alertrelay's syslog sink.
//
// A Server listens on TCP (RFC 6587: octet-counted and LF-terminated
// frames, told apart per frame as rsyslog does), TLS (RFC 5425, any
// tls.Config, mutual TLS included) or UDP (RFC 5426, one message per
// datagram). It parses RFC 5424 and RFC 3164 messages, records them with
// their event.id (from the structured-data parameter eventId, the CEF
// extension externalId or the JSON document's event.id) so that tests can
// check every field and count duplicates, and counts what it could not
// parse.
//
// Syslog has no replies: a receiver can only accept, drop or disconnect.
// The faults it injects are those: SetDown stops listening and closes every
// connection (after reading what the clients already sent, as a receiver
// that shuts down cleanly does) and comes back on the same address;
// DropConnections cuts every connection without reading further, as a
// receiver that crashes does.
package syslog

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/tally"
	"github.com/alertrelay/alertrelay/internal/event"
)

// DefaultMaxFrameBytes is Options.MaxFrameBytes when zero.
const DefaultMaxFrameBytes = 1 << 20

// Drain timing of SetDown(true) and Close: a connection is closed once it
// has been quiet for drainQuiet, or after drainMax at most.
const (
	drainQuiet = 50 * time.Millisecond
	drainMax   = 250 * time.Millisecond
)

// Options configures a Server. The zero value keeps every message.
type Options struct {
	// MaxFrameBytes is the largest message accepted on a stream; a
	// larger octet count or line closes the connection (and counts as
	// malformed). Default DefaultMaxFrameBytes.
	MaxFrameBytes int
	// DiscardDocs counts messages without keeping them or reading their
	// IDs, for benchmarks and long demos: Messages and IDs stay empty.
	DiscardDocs bool
	// IDsOnly records each message's event.id (IDs) but not the message
	// (Messages stays empty): duplicate and loss checks over millions of
	// events without holding them in memory.
	IDsOnly bool
}

// Received is one message as recorded.
type Received struct {
	Message
	Raw       []byte // the message as received, without framing
	Transport string // "tcp", "tls" or "udp"
	Framing   string // FramingOctetCounting, FramingLF or FramingDatagram
	EventID   string // "" when none was found
}

// Server is the receiver. Its methods are safe for concurrent use.
type Server struct {
	opt Options

	mu      sync.Mutex
	network string      // tcp, tls, udp; fixed by the first Start
	addr    string      // host:port, fixed by the first Start
	tlsCfg  *tls.Config // tls only
	ln      net.Listener
	pc      net.PacketConn
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup // accept loop, UDP loop and connection goroutines
	started bool
	down    bool
	closed  bool

	draining  atomic.Bool
	drainStop atomic.Int64 // unix nanos: hard end of the current drain

	msgs       []Received
	malformed  int
	conns2     int // connections accepted (and datagram "connections": 0)
	handshakes int // failed TLS handshakes
	lastErr    string

	// got counts messages, IDs and bytes (syslog has no requests nor
	// headers). Where it is updated together with msgs, mu is held first.
	got tally.Tally
}

// New returns a server that is not listening yet: call Start, StartTLS or
// StartUDP.
func New(opt Options) *Server {
	if opt.MaxFrameBytes <= 0 {
		opt.MaxFrameBytes = DefaultMaxFrameBytes
	}
	return &Server{opt: opt, conns: map[net.Conn]struct{}{}}
}

// Start listens on addr ("127.0.0.1:0" picks a free port) for plain TCP.
func (s *Server) Start(addr string) error { return s.start("tcp", addr, nil) }

// StartTLS listens on addr for TLS with cfg, which must hold the server
// certificate; set cfg.ClientAuth and cfg.ClientCAs to require client
// certificates.
func (s *Server) StartTLS(addr string, cfg *tls.Config) error {
	if cfg == nil {
		return errors.New("syslog emulator: StartTLS needs a tls.Config")
	}
	return s.start("tls", addr, cfg.Clone())
}

// StartUDP listens on addr for UDP datagrams.
func (s *Server) StartUDP(addr string) error { return s.start("udp", addr, nil) }

func (s *Server) start(network, addr string, cfg *tls.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("syslog emulator: already started")
	}
	s.network, s.tlsCfg = network, cfg
	if err := s.listenLocked(addr); err != nil {
		return err
	}
	s.started = true
	return nil
}

func (s *Server) listenLocked(addr string) error {
	if s.network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("syslog emulator: %w", err)
		}
		if u, ok := pc.(*net.UDPConn); ok {
			_ = u.SetReadBuffer(8 << 20)
		}
		s.pc, s.addr = pc, pc.LocalAddr().String()
		s.wg.Add(1)
		go s.serveUDP(pc)
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("syslog emulator: %w", err)
	}
	s.ln, s.addr = ln, ln.Addr().String()
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// stopLocked stops listening, drains and closes every connection, and
// waits for every goroutine. s.mu is released while waiting.
//
// A TCP listener keeps accepting for drainQuiet first: a connection the
// kernel completed but the server never accepted would otherwise be reset
// with data its kernel had already acknowledged to the client.
func (s *Server) stopLocked() {
	s.draining.Store(true)
	s.drainStop.Store(time.Now().Add(drainMax).UnixNano())
	if s.ln != nil {
		if tl, ok := s.ln.(*net.TCPListener); ok {
			_ = tl.SetDeadline(time.Now().Add(drainQuiet))
		} else {
			_ = s.ln.Close()
		}
		s.ln = nil
	}
	if s.pc != nil {
		_ = s.pc.Close()
		s.pc = nil
	}
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now().Add(drainQuiet))
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	s.draining.Store(false)
}

// Addr is the host:port the server listens on; it stays the same across
// SetDown.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops the server for good, after draining its connections. It is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.stopLocked()
}

// SetDown(true) stops listening and closes every connection once it has
// read what the clients had sent (new connections are refused, and a
// client still writing gets a reset). SetDown(false) listens again on the
// same address. It returns an error if the server was not started, is
// closed, or cannot listen again.
func (s *Server) SetDown(down bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.started:
		return errors.New("syslog emulator: not started")
	case s.closed:
		return errors.New("syslog emulator: closed")
	case down == s.down:
		return nil
	}
	if down {
		s.down = true
		s.stopLocked()
		return nil
	}
	if err := s.listenLocked(s.addr); err != nil {
		return err
	}
	s.down = false
	return nil
}

// DropConnections closes every open connection at once, without reading
// what is still buffered: what a crashing receiver does. Data the
// receiver's kernel had acknowledged is lost, as it would be.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if tc, ok := c.(*tls.Conn); ok {
			_ = tc.NetConn().Close()
			continue
		}
		_ = c.Close()
	}
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	defer func() { _ = ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed, or the drain deadline of stopLocked
		}
		transport := "tcp"
		if s.tlsCfg != nil {
			c = tls.Server(c, s.tlsCfg)
			transport = "tls"
		}
		if s.draining.Load() {
			_ = c.SetReadDeadline(time.Now().Add(drainQuiet))
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.conns2++
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, transport)
	}
}

// connReader counts bytes and, while the server drains, extends the read
// deadline as long as data keeps coming (up to drainMax).
type connReader struct {
	s *Server
	c net.Conn
}

func (r *connReader) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	if n > 0 {
		r.s.got.AddBytes(int64(n))
		if r.s.draining.Load() {
			d := time.Now().Add(drainQuiet)
			if stop := time.Unix(0, r.s.drainStop.Load()); d.After(stop) {
				d = stop
			}
			_ = r.c.SetReadDeadline(d)
		}
	}
	return n, err
}

func (s *Server) serveConn(c net.Conn, transport string) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			s.mu.Lock()
			s.handshakes++
			s.lastErr = "TLS handshake: " + err.Error()
			s.mu.Unlock()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		if s.draining.Load() {
			_ = tc.SetReadDeadline(time.Now().Add(drainQuiet))
		}
	} else if s.draining.Load() {
		_ = c.SetReadDeadline(time.Now().Add(drainQuiet))
	}
	br := bufio.NewReaderSize(&connReader{s: s, c: c}, 64<<10)
	var buf []byte
	for {
		frame, framing, err := ReadFrame(br, buf, s.opt.MaxFrameBytes)
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				s.mu.Lock()
				s.malformed++
				s.lastErr = err.Error()
				s.mu.Unlock()
			}
			return
		}
		if cap(frame) > cap(buf) {
			buf = frame[:0]
		}
		if len(frame) == 0 && framing == FramingLF {
			continue // an empty line
		}
		s.record(frame, transport, framing)
	}
}

func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		s.got.AddBytes(int64(n))
		msg := buf[:n]
		if n > 0 && msg[n-1] == '\n' { // some senders end datagrams with LF
			msg = msg[:n-1]
		}
		s.record(msg, "udp", FramingDatagram)
	}
}

// record parses raw and records it; raw is copied when kept.
func (s *Server) record(raw []byte, transport, framing string) {
	m, err := Parse(raw)
	if err != nil {
		s.mu.Lock()
		s.malformed++
		s.lastErr = err.Error()
		s.mu.Unlock()
		return
	}
	if s.opt.DiscardDocs {
		s.got.Add(1)
		return
	}
	id := EventID(&m)
	var r Received
	if !s.opt.IDsOnly {
		r.Raw = bytes.Clone(raw)
		m2, _ := Parse(r.Raw) // aliases the copy
		r.Message, r.Transport, r.Framing, r.EventID = m2, transport, framing, id
	}
	s.mu.Lock()
	s.got.Add(1, id)
	if !s.opt.IDsOnly {
		s.msgs = append(s.msgs, r)
	}
	s.mu.Unlock()
}

// EventID returns the event.id a message carries: the structured-data
// parameter eventId, else the CEF extension externalId, else the JSON
// body's event.id; "" when there is none.
func EventID(m *Message) string {
	if v, ok := m.Param("", "eventId"); ok {
		return v
	}
	body := m.Msg
	if bytes.HasPrefix(body, []byte("CEF:")) {
		return cefExternalID(body)
	}
	if len(body) > 0 && body[0] == '{' {
		if meta, _ := event.ReadMeta(body); meta.ID != nil {
			return string(event.Unquote(nil, meta.ID))
		}
	}
	return ""
}

// cefExternalID returns the value of the extension externalId, unescaped,
// or "". Values end at the next space (event IDs have none).
func cefExternalID(body []byte) string {
	key := []byte("externalId=")
	for off := 0; ; {
		i := bytes.Index(body[off:], key)
		if i < 0 {
			return ""
		}
		i += off
		if i > 0 && body[i-1] != ' ' && body[i-1] != '|' {
			off = i + len(key)
			continue
		}
		v := body[i+len(key):]
		var out []byte
		for j := 0; j < len(v) && v[j] != ' '; j++ {
			if v[j] == '\\' && j+1 < len(v) {
				j++
			}
			out = append(out, v[j])
		}
		return string(out)
	}
}

// Messages returns every message recorded, in order of receipt (per
// connection). The messages must not be modified.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count is the number of messages recorded, duplicates included.
func (s *Server) Count() int { return s.got.Count() }

// IDs maps each event.id recorded to the number of times it was received.
func (s *Server) IDs() map[string]int { return s.got.IDs() }

// Distinct is the number of different event.ids received.
func (s *Server) Distinct() int { return s.got.Distinct() }

// Malformed is the number of frames or messages that did not parse.
func (s *Server) Malformed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.malformed
}

// Connections is the number of TCP or TLS connections accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns2
}

// HandshakeErrors is the number of TLS handshakes that failed.
func (s *Server) HandshakeErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes
}

// LastError describes the last malformed message or failed handshake.
func (s *Server) LastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// BytesOnWire is the number of bytes received (framing included; for TLS,
// the decrypted stream).
func (s *Server) BytesOnWire() int64 { return s.got.BytesOnWire() }

// Reset forgets every recorded message and zeroes the counters.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs, s.malformed, s.conns2, s.handshakes, s.lastErr = nil, 0, 0, 0, ""
	s.got.Reset()
}

// WaitCount waits until at least n messages are recorded or timeout
// passes, and reports whether they were. It polls: UDP and the server's
// reading goroutines are asynchronous to the sender.
func (s *Server) WaitCount(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if s.Count() >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}
