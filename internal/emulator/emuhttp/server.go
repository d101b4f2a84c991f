// Package emuhttp is the HTTP plumbing shared by the emulators of HTTP
// services (httpsink, splunkhec, sentinel, elasticsearch, cynet): a
// restartable server that serves an emulator's http.Handler on a fixed
// address, and small helpers for the handlers themselves.
//
// The emulators keep their own state, counters and fault injection; a
// Server only owns the listener, so that SetDown can refuse connections
// and come back on the same address, as a restarted service would.
package emuhttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// ReadHeaderTimeout is the http.Server.ReadHeaderTimeout of every Server.
const ReadHeaderTimeout = 10 * time.Second

// Server serves one http.Handler over plain HTTP or TLS on a TCP address
// that stays fixed for its life, across SetDown. Its methods are safe for
// concurrent use.
//
// Life cycle: New, then Start or StartTLS once; SetDown any number of
// times; Close once or more. A Server cannot be started again after Close.
//
// Errors are prefixed with the name given to New ("httpsink: not started"),
// so that an emulator can return them as its own.
type Server struct {
	name    string
	handler http.Handler

	mu      sync.Mutex
	addr    string      // host:port, fixed by Start
	tlsCfg  *tls.Config // nil: plain HTTP
	srv     *http.Server
	served  chan struct{} // closed when srv's Serve returns
	started bool
	down    bool
	closed  bool
}

// New returns a server of h that is not listening yet. name prefixes its
// error messages.
func New(name string, h http.Handler) *Server {
	return &Server{name: name, handler: h}
}

func (s *Server) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{s.name}, args...)...)
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves plain
// HTTP in the background. It fails if the server was already started or is
// closed, or if it cannot listen (the net error is wrapped).
func (s *Server) Start(addr string) error { return s.start(addr, nil) }

// StartTLS is Start over TLS with a clone of cfg, which must hold the server
// certificate; set cfg.ClientAuth and cfg.ClientCAs to require client
// certificates. HTTP/1.1 and HTTP/2 are offered. A nil cfg is an error.
func (s *Server) StartTLS(addr string, cfg *tls.Config) error {
	if cfg == nil {
		return s.errorf("StartTLS needs a tls.Config")
	}
	return s.start(addr, cfg.Clone())
}

func (s *Server) start(addr string, cfg *tls.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.started:
		return s.errorf("already started")
	case s.closed:
		return s.errorf("closed")
	}
	s.tlsCfg = cfg
	if err := s.listenLocked(addr); err != nil {
		return err
	}
	s.started = true
	return nil
}

// listenLocked listens on addr and serves on a new http.Server (one that
// was Closed cannot serve again).
func (s *Server) listenLocked(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return s.errorf("%w", err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		// Failed handshakes and dropped connections are what tests
		// provoke; keep them out of the test output.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	if s.tlsCfg != nil {
		srv.TLSConfig = s.tlsCfg.Clone()
		go func() { defer close(served); _ = srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { defer close(served); _ = srv.Serve(ln) }()
	}
	s.srv, s.served = srv, served
	return nil
}

// stopLocked closes the listener and every connection and waits for Serve
// to return. Handlers still running finish on their own: their
// connections are gone.
func (s *Server) stopLocked() {
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	<-s.served
	s.srv, s.served = nil, nil
}

// URL is "http://host:port", or "https://host:port" after StartTLS; it
// stays the same across SetDown. Before Start it has no host.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tlsCfg != nil {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// Addr is the host:port the server listens on, "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close closes the listener and every connection, for good, and waits for
// the server's Serve loop to return (not for handlers in flight). It is
// idempotent, and may be called before Start or while down.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.stopLocked()
}

// SetDown(true) closes the listener and every open connection, so that new
// connections are refused and requests in flight fail. SetDown(false)
// listens again on the same address. Setting the state the server is
// already in does nothing. It returns an error if the server was not
// started, is closed, or cannot listen again (the address was taken
// meanwhile; the server then stays down).
func (s *Server) SetDown(down bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.started:
		return s.errorf("not started")
	case s.closed:
		return s.errorf("closed")
	case down == s.down:
		return nil
	}
	if down {
		s.stopLocked()
		s.down = true
		return nil
	}
	if err := s.listenLocked(s.addr); err != nil {
		return err
	}
	s.down = false
	return nil
}

// ReadAll reads at most limit bytes of r into a buffer sized for about size
// bytes (a request's ContentLength; -1: unknown). A handler reads limit+1
// bytes to tell a body over the limit from one at it.
func ReadAll(r io.Reader, size, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(min(size, limit) + bytes.MinRead))
	}
	_, err := buf.ReadFrom(io.LimitReader(r, limit))
	return buf.Bytes(), err
}

// BufferPool recycles body buffers, for an emulator that copies whatever
// it keeps from a body: a fresh megabyte-sized buffer per request costs
// more CPU (clearing new memory, collecting it) than parsing the body.
// The zero value is ready; safe for concurrent use.
type BufferPool struct{ p sync.Pool }

// maxPooled bounds the buffers kept for reuse.
const maxPooled = 16 << 20

// Read is ReadAll into a pooled buffer. The data is valid until release,
// which the caller must call exactly once.
func (bp *BufferPool) Read(r io.Reader, size, limit int64) (data []byte, release func(), err error) {
	buf, _ := bp.p.Get().(*bytes.Buffer)
	if buf == nil {
		buf = &bytes.Buffer{}
	}
	buf.Reset()
	if size > 0 {
		buf.Grow(int(min(size, limit) + bytes.MinRead))
	}
	_, err = buf.ReadFrom(io.LimitReader(r, limit))
	return buf.Bytes(), func() {
		if buf.Cap() <= maxPooled {
			bp.p.Put(buf)
		}
	}, err
}

// Delay waits d, or until ctx is done (the client went away, or the server
// closed the connection). It reports whether the whole delay passed; d <= 0
// returns true at once. Emulators use it for injected latency:
//
//	if !emuhttp.Delay(r.Context(), latency) {
//		return // nobody to answer
//	}
func Delay(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
