// Package cybertrace is the source for Kaspersky CyberTrace output: a TCP
// (optionally TLS or mTLS) listener that CyberTrace connects to and sends one
// event per LF-terminated line.
//
// Each connection is served by its own goroutine that frames lines in a
// bounded buffer, parses and normalises them in place and hands batches to
// the pipeline. When the pipeline blocks (a full queue), the goroutine stops
// reading and TCP pushes back on CyberTrace; nothing is buffered beyond one
// read buffer and one batch per connection.
package cybertrace

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/format/kv"
	"github.com/alertrelay/alertrelay/internal/normalize"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// Source listens for CyberTrace connections.
type Source struct {
	name    string
	cfg     Config
	log     *slog.Logger
	dl      pipeline.DeadLetterer
	m       *telemetry.SourceMetrics
	now     func() time.Time
	allow   []netip.Prefix
	tls     *tls.Config
	parse   parseFunc
	norm    *normalize.CyberTrace
	limiter *telemetry.LogLimiter
	batches *event.BatchPool

	mu   sync.Mutex
	addr net.Addr
	up   chan struct{} // closed once listening
}

// New builds the source. name is the source's config key; dl receives lines
// that cannot be parsed.
func New(name string, cfg Config, deps pipeline.Deps, dl pipeline.DeadLetterer, m *telemetry.SourceMetrics) (*Source, error) {
	cfg.SetDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	loc, _ := time.LoadLocation(cfg.TimeZone)
	s := &Source{
		name: name, cfg: cfg, dl: dl, m: m, now: deps.Now,
		log:     deps.Log.With("component", "source", "source", name),
		limiter: telemetry.NewLogLimiter(10 * time.Second),
		norm: normalize.NewCyberTrace(normalize.Options{Source: name,
			IncludeOriginal: cfg.IncludeOriginal, Location: loc, TimeLayouts: cfg.TimeLayouts,
		}, deps.IDs),
		up:      make(chan struct{}),
		batches: event.NewBatchPool(cfg.Batch.MaxEvents, 1200, 32),
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, c := range cfg.AllowCIDRs {
		p, _ := parseCIDR(c)
		s.allow = append(s.allow, p)
	}
	var err error
	if s.parse, err = newParser(cfg); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		if s.tls, err = serverTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Addr returns the bound address once the source is listening, blocking
// until then or until ctx ends.
func (s *Source) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.up:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run listens until ctx ends, then stops accepting, lets every connection
// hand over what it has read, and returns.
func (s *Source) Run(ctx context.Context, w pipeline.BatchWriter) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cybertrace source %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	close(s.up)
	s.log.Info("listening", "addr", ln.Addr().String(), "tls", s.tls != nil, "format", s.cfg.Format)

	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	slots := make(chan struct{}, s.cfg.MaxConnections)
	var tempDelay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				wg.Wait()
				return fmt.Errorf("cybertrace source %s: listener closed: %w", s.name, err)
			}
			// Out of file descriptors, buffers or memory: back off and keep
			// serving the connections already open, as net/http does.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			s.logLimited("accept", "accept failed; retrying", "err", err, "delay", tempDelay)
			select {
			case <-time.After(tempDelay):
			case <-ctx.Done():
			}
			continue
		}
		tempDelay = 0
		peer := remoteAddr(conn)
		if !s.allowed(peer) {
			s.m.ConnDenied.Inc()
			s.logLimited("denied", "refused connection from a peer outside allow_cidrs", "peer", peer.String())
			conn.Close()
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			s.m.ConnRefused.Inc()
			s.logLimited("full", "refused connection: max_connections reached", "peer", peer.String(), "max_connections", s.cfg.MaxConnections)
			conn.Close()
			continue
		}
		if s.tls != nil {
			conn = tls.Server(conn, s.tls)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.serve(ctx, conn, peer, w)
		}()
	}
	wg.Wait()
	s.log.Info("stopped")
	return nil
}

func (s *Source) allowed(peer netip.Addr) bool {
	if len(s.allow) == 0 {
		return true
	}
	for _, p := range s.allow {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// logLimited logs msg at most once per interval per key, with the number of
// occurrences that were not logged.
func (s *Source) logLimited(key, msg string, args ...any) {
	if n, ok := s.limiter.Allow(key); ok {
		s.log.Warn(msg, append(args, "suppressed", n)...)
	}
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func serverTLS(c *TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no certificate in %s", c.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}

// newParser picks the line parser for cfg.Format.
func newParser(cfg Config) (parseFunc, error) {
	p, err := kv.NewParser(cfg.TemplateKeys)
	if err != nil {
		return nil, err
	}
	switch cfg.Format {
	case "kv":
		return p.Parse, nil
	case "cef":
		return parseCEF, nil
	case "template":
		t, err := kv.NewTemplate(cfg.Template.EventFormat, cfg.Template.RecordFieldContextFormat)
		if err != nil {
			return nil, err
		}
		return t.Parse, nil
	}
	return autoParser(p), nil
}
