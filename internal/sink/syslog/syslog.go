// Package syslog implements a sink that sends every event as one syslog
// message (`type: syslog`) to a syslog receiver or SIEM collector: RFC 5424
// or RFC 3164 (BSD) messages, over TCP (RFC 6587, octet-counting or LF
// framing), TLS (RFC 5425) or UDP (RFC 5426), with a body in ArcSight CEF
// (mapped from the document), the JSON document, or the original vendor
// line.
//
// The package is named after its directory; import it under another name
// next to log/syslog.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// ErrClosed is returned (wrapped) by Write and Check after Close.
var ErrClosed = errors.New("sink is closed")

// maxKeptBuffer bounds the scratch buffer kept between batches.
const maxKeptBuffer = 32 << 20

// tlsVerdictWait is how long a new TLS 1.3 connection to a receiver that
// asked for a client certificate waits, after the handshake, for the
// receiver to reject it (with TLS 1.3 the client finishes its handshake
// before the server has checked the certificate). A receiver that accepts
// usually ends the wait within a round trip by sending a session ticket.
const tlsVerdictWait = 500 * time.Millisecond

// Sink sends batches to a syslog receiver. It implements pipeline.Sink and
// pipeline.Checker.
//
// Messages. Every document of a batch becomes one message (see
// docs/sinks/syslog.md for the fields): PRI from Config.Facility and the
// configured or per-event severity, the document's @timestamp, Hostname,
// AppName, MSGID (event.dataset unless MsgID is set) and, in RFC 5424, a
// structured-data element [SDID eventId="…" dataset="…" provider="…"];
// the body is CEF, the JSON document or event.original. A message longer
// than MaxMessageBytes is cut at that length (at a UTF-8 boundary) and
// counted in Truncated.
//
// TCP and TLS. The sink keeps one connection. A batch is encoded in memory
// and written with one write under a deadline (Timeout, or ctx's deadline
// if sooner; cancelling ctx aborts it). Syslog has no application-level
// acknowledgement, so on Linux Write then waits, within the same
// deadline, until the receiver's TCP stack has acknowledged every byte
// (SIOCOUTQ is 0) and checks that the receiver did not reset the
// connection; only then does it return nil. Before each batch it checks
// that the receiver has not closed the idle connection, and dials again if
// it has. What this cannot cover: bytes the receiver's kernel acknowledged
// but its process never read (the receiver crashed just then) are lost —
// use a receiver with a disk queue, or RELP, if that matters.
//
// Outcomes. Any dial, TLS, write, acknowledgement or reset error closes
// the connection and is returned as a retryable error: the delivery loop
// sends the whole batch again on a new connection, so after a failure
// in the middle of a batch the receiver may get some messages twice
// (at-least-once; event.id is in every message for deduplication). TLS
// certificate errors are retryable too (the events stay queued while the
// operator fixes the certificates) and say "TLS". A document that is not a
// JSON object cannot be encoded: it is reported in a *pipeline.PartialError
// as Permanent (dead-lettered) and the rest of the batch is sent. Write
// never returns a *pipeline.RetryAfterError: syslog has no throttling
// signal.
//
// UDP. Each message is one datagram, sent with one write; a send error
// (such as ECONNREFUSED reported after an ICMP port unreachable) is
// retryable and the whole batch is sent again. UDP offers no delivery
// guarantee at all: a receiver that is down or overloaded loses messages
// silently.
//
// Secrets. The sink holds none besides the TLS key file, which it never
// logs; errors name the receiver as "network://host:port".
type Sink struct {
	network string // tcp, tls, udp
	addr    string
	target  string // "tcp://host:port": safe to log
	octet   bool   // octet counting (stream only)
	tlsCfg  *tls.Config
	timeout time.Duration
	enc     encoder // uses deps.Now for events without a valid @timestamp
	log     *slog.Logger

	mu   sync.Mutex // serialises Write; guards buf and ends
	buf  []byte     // the batch's messages, framed for streams
	ends []int      // UDP: end of each message in buf

	connMu sync.Mutex // guards conn, so that Close can interrupt Write
	conn   net.Conn

	closed    atomic.Bool
	truncated atomic.Uint64
}

// New returns a sink for cfg, which must have been through SetDefaults;
// New returns an error if it fails Validate or if a TLS file cannot be
// loaded. It does not connect: the first Write or Check does. With
// tls.insecure_skip_verify it logs a warning. deps.Log and deps.Now may
// be nil.
//
// On error New returns a nil *Sink, on which Close is a harmless no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("syslog sink: invalid config: %w", errors.Join(errs...))
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	s := &Sink{
		network: cfg.Network,
		addr:    cfg.Address,
		target:  cfg.Network + "://" + cfg.Address,
		octet:   cfg.Network != NetworkUDP && cfg.Framing != FramingLF,
		timeout: cfg.Timeout,
	}
	s.log = log.With("component", "sink", "type", "syslog", "endpoint", s.target)
	if cfg.Network == NetworkTLS {
		tc, err := cfg.TLS.Build()
		if err != nil {
			return nil, fmt.Errorf("syslog sink %s: %w", s.target, err)
		}
		// A session cache makes TLS 1.3 servers send session tickets,
		// which end tlsVerdict's wait, and lets reconnections resume.
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		s.tlsCfg = tc
		cfg.TLS.WarnInsecure(s.log)
	}

	facility, _ := ParseFacility(cfg.Facility) // validated
	severity := -1
	if cfg.Severity != "" {
		severity, _ = ParseSeverity(cfg.Severity)
	}
	hostname := cfg.Hostname
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "-"
		}
		hostname = string(appendHeaderField(nil, []byte(h), 255))
	}
	max := cfg.MaxMessageBytes
	if max == 0 {
		max = DefaultMaxMessageBytesStream
		if cfg.Network == NetworkUDP {
			max = DefaultMaxMessageBytesUDP
		}
	}
	framing := cfg.Framing
	if framing == "" && cfg.Network != NetworkUDP {
		framing = FramingOctetCounting
	}
	s.enc = encoder{
		rfc3164:  cfg.Format == FormatRFC3164,
		facility: facility,
		severity: severity,
		hostname: hostname,
		appName:  cfg.AppName,
		msgID:    cfg.MsgID,
		sdID:     cfg.SDID,
		body:     cfg.Body,
		max:      max,
		noLF:     framing == FramingLF,
		now:      now,
	}
	s.log.Info("syslog sink ready", "format", cfg.Format, "framing", framing, "body", cfg.Body,
		"facility", cfg.Facility, "severity", cfg.Severity, "hostname", hostname,
		"max_message_bytes", max, "timeout", cfg.Timeout)
	return s, nil
}

// Truncated is the number of messages cut to max_message_bytes so far.
func (s *Sink) Truncated() uint64 { return s.truncated.Load() }

// Write sends b: see the type's documentation for how failures map to
// errors. After Close it returns an error wrapping ErrClosed.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("syslog sink %s: %w", s.target, ErrClosed)
	}
	defer s.trimBuffer()
	if b.Len() == 0 {
		return nil
	}
	bad := s.encode(b)
	if len(bad) == b.Len() {
		return &pipeline.PartialError{Items: bad}
	}
	if err := s.send(ctx); err != nil {
		return err
	}
	if len(bad) > 0 {
		return &pipeline.PartialError{Items: bad}
	}
	return nil
}

// encode fills s.buf (and s.ends for UDP) with the messages of b and
// returns the documents it could not encode, as permanent failures.
func (s *Sink) encode(b *event.Batch) []pipeline.ItemError {
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	var bad []pipeline.ItemError
	var msg []byte
	truncated := 0
	var firstID []byte
	for i, n := 0, b.Len(); i < n; i++ {
		var err error
		var cut bool
		if s.network == NetworkUDP {
			s.buf, cut, err = s.enc.appendMessage(s.buf, b.Doc(i))
			if err == nil {
				s.ends = append(s.ends, len(s.buf))
			}
		} else {
			msg, cut, err = s.enc.appendMessage(msg[:0], b.Doc(i))
			if err == nil {
				s.buf = appendFrame(s.buf, msg, s.octet)
			}
		}
		if err != nil {
			bad = append(bad, pipeline.ItemError{Index: i, Permanent: true,
				Err: pipeline.Permanent(fmt.Errorf("syslog sink %s: cannot encode event: %w", s.target, err))})
			continue
		}
		if cut {
			if truncated == 0 {
				m, _ := event.ReadMeta(b.Doc(i))
				firstID = m.ID
			}
			truncated++
		}
	}
	if truncated > 0 {
		s.truncated.Add(uint64(truncated))
		s.log.Warn("syslog messages truncated to max_message_bytes", "count", truncated,
			"max_message_bytes", s.enc.max, "first_event_id", string(firstID))
	}
	return bad
}

// send writes s.buf on the connection, dialling if needed.
func (s *Sink) send(ctx context.Context) error {
	conn, err := s.connection(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(s.timeout) // the wall clock, not deps.Now
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.network == NetworkUDP {
		start := 0
		for _, end := range s.ends {
			if _, err := conn.Write(s.buf[start:end]); err != nil {
				return s.fail(ctx, conn, "send", err)
			}
			start = end
		}
		return nil
	}
	if _, err := conn.Write(s.buf); err != nil {
		return s.fail(ctx, conn, "write", err)
	}
	if err := confirm(ctx, conn, deadline); err != nil {
		return s.fail(ctx, conn, "delivery", err)
	}
	return nil
}

// fail closes conn and returns the error of a failed send: ctx's error if
// ctx ended, else a retryable error naming the step.
func (s *Sink) fail(ctx context.Context, conn net.Conn, step string, err error) error {
	s.dropConn(conn)
	if ctx.Err() != nil {
		return fmt.Errorf("syslog sink %s: %s: %w", s.target, step, ctx.Err())
	}
	return fmt.Errorf("syslog sink %s: %s: %w (the batch will be sent again)", s.target, step, err)
}

// connection returns the open connection, or dials a new one when there is
// none or the receiver closed the one there was.
func (s *Sink) connection(ctx context.Context) (net.Conn, error) {
	s.connMu.Lock()
	conn := s.conn
	s.connMu.Unlock()
	if conn != nil {
		if s.network == NetworkUDP {
			return conn, nil
		}
		err := alive(conn)
		if err == nil {
			return conn, nil
		}
		s.log.Info("syslog receiver closed the connection; reconnecting", "error", err.Error())
		s.dropConn(conn)
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed.Load() {
		_ = conn.Close()
		return nil, fmt.Errorf("syslog sink %s: %w", s.target, ErrClosed)
	}
	s.conn = conn
	s.log.Info("syslog sink connected", "local", conn.LocalAddr().String())
	return conn, nil
}

// dial opens a new connection (TLS handshake included) within Timeout.
func (s *Sink) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	switch s.network {
	case NetworkTLS:
		cfg, requested := watchCertRequest(s.tlsCfg)
		td := &tls.Dialer{NetDialer: d, Config: cfg}
		conn, err = td.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return nil, s.dialError(ctx, "TLS connection failed (check the tls settings and the receiver's certificate)", err)
		}
		if requested.Load() && conn.(*tls.Conn).ConnectionState().Version >= tls.VersionTLS13 {
			if err := tlsVerdict(conn, min(tlsVerdictWait, s.timeout)); err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("syslog sink %s: the receiver closed the TLS connection after the handshake "+
					"(client certificate missing or rejected? check tls.cert_file): %w", s.target, err)
			}
		}
	default:
		conn, err = d.DialContext(ctx, s.network, s.addr)
		if err != nil {
			return nil, s.dialError(ctx, "connect", err)
		}
	}
	return conn, nil
}

// watchCertRequest returns a copy of cfg that records, in requested,
// whether the server asked for a client certificate during the handshake;
// it presents the same certificate (or none) as cfg would.
func watchCertRequest(cfg *tls.Config) (*tls.Config, *atomic.Bool) {
	requested := &atomic.Bool{}
	c := cfg.Clone()
	orig, certs := c.GetClientCertificate, c.Certificates
	c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		requested.Store(true)
		switch {
		case orig != nil:
			return orig(cri)
		case len(certs) > 0:
			return &certs[0], nil
		}
		return &tls.Certificate{}, nil
	}
	return c, requested
}

func (s *Sink) dialError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("syslog sink %s: %s: %w", s.target, what, ctx.Err())
	}
	return fmt.Errorf("syslog sink %s: %s: %w", s.target, what, err)
}

// dropConn closes conn and forgets it if it is the current connection.
func (s *Sink) dropConn(conn net.Conn) {
	s.connMu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	s.connMu.Unlock()
	_ = conn.Close()
}

func (s *Sink) trimBuffer() {
	if cap(s.buf) > maxKeptBuffer {
		s.buf = nil
	}
}

// Check opens a new connection (with the TLS handshake for network tls)
// and closes it; it sends nothing, so no receiver records an event. Over
// TLS 1.3 it also waits briefly for the receiver to reject the client
// certificate. Over UDP it can only check that the address resolves.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("syslog sink %s: %w", s.target, ErrClosed)
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	_ = conn.Close()
	return nil
}

// Close closes the connection; a Write in progress fails. Write and Check
// fail with ErrClosed afterwards. It is idempotent and safe on a nil
// *Sink.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if s.closed.Swap(true) {
		return nil
	}
	s.connMu.Lock()
	conn := s.conn
	s.conn = nil
	s.connMu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	s.log.Debug("syslog sink closed")
	return nil
}
