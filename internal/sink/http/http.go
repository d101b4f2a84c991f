// Package http implements a sink that delivers batches to an HTTP(S)
// endpoint: a generic webhook (`type: http`). Each batch is sent as one
// request, or several when its body would exceed max_body_bytes, as NDJSON
// or as a JSON array, optionally gzip-compressed, with bearer or basic
// authentication, custom headers and TLS (custom CA, mutual TLS).
//
// The package is named after its directory; import it under another name
// (httpsink) next to net/http.
package http

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// ErrClosed is returned (wrapped) by Write and Check after Close.
var ErrClosed = errors.New("sink is closed")

// maxKeptBuffer bounds the scratch buffers kept between batches.
const maxKeptBuffer = 32 << 20

// Sink sends batches to an HTTP endpoint. It implements pipeline.Sink and
// pipeline.Checker.
//
// Requests. Every batch goes to Config.URL with Config.Method. With format
// ndjson the body is the batch's bytes as they are (every document followed
// by '\n', no copy unless compressed); with json_array it is [doc,doc,...].
// When the body would exceed MaxBodyBytes (measured before compression) the
// batch is split, in order, into several requests. Redirects are not
// followed (a 301/302 would turn a POST into a body-less GET).
//
// Outcomes. Write maps each response:
//
//   - 2xx: accepted.
//   - 408, 429, 5xx: retryable. A 429 or 503 with a Retry-After header
//     (seconds or HTTP-date, at most MaxRetryAfter) gives a
//     *pipeline.RetryAfterError.
//   - 401, 403: retryable, so that the events stay buffered while the
//     operator fixes the credentials; the message says "authentication
//     failed (401): check auth settings".
//   - 3xx: retryable (wrong URL; the events stay buffered).
//   - other 4xx (400, 404, 413, 422...): pipeline.Permanent, with a short
//     printable excerpt (at most 256 bytes) of the response body.
//   - network errors, TLS errors and timeouts: retryable.
//
// A split batch whose first request fails with a retryable error returns
// that error (the whole batch is retried). Otherwise, if any request fails,
// Write returns a *pipeline.PartialError naming the documents of the failed
// requests by their index in the batch: a request rejected permanently
// marks its documents Permanent and the following requests are still sent;
// a retryable failure marks the documents of that request and of every
// request not yet sent as retryable, and stops. Documents of requests that
// succeeded are not named, so they are not sent again. When that retryable
// failure carried a Retry-After, the returned error is also a
// *pipeline.RetryAfterError (errors.As finds both).
//
// Secrets. Credentials, header values and the URL's path and query never
// appear in logs or errors: errors name the endpoint as "METHOD
// scheme://host", and response excerpts have any configured secret or
// header value replaced by [redacted].
type Sink struct {
	url     string
	method  string
	target  string // "POST https://host:port": safe to log
	array   bool
	maxBody int64

	header      nethttp.Header // cloned into every request
	checkHeader nethttp.Header // header minus the body's Content-*, for Check
	secrets     [][]byte       // redacted from response excerpts
	client      *nethttp.Client
	now         func() time.Time
	log         *slog.Logger

	mu    sync.Mutex // serialises Write and guards its scratch state
	parts []part
	buf   bytes.Buffer     // json_array body
	gz    *httpclient.Gzip // nil without compression

	closed atomic.Bool
}

// part is the documents [lo, hi) of a batch, at bytes [start, end) of its
// NDJSON.
type part struct{ lo, hi, start, end int }

// New returns a sink for cfg, which must have been through SetDefaults;
// New returns an error if it fails Validate or if a TLS file cannot be
// loaded. It does not connect: use Check for that. The sink has its own
// http.Client and Transport (TLS 1.2 or later, the system roots plus
// tls.ca_file, keep-alives, HTTP/2 when the server offers it, proxies from
// HTTPS_PROXY/HTTP_PROXY/NO_PROXY). With tls.insecure_skip_verify it logs a
// warning. deps.Log and deps.Now may be nil.
//
// On error New returns a nil *Sink, on which Close is a harmless no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("http sink: invalid config: %w", errors.Join(errs...))
	}
	u, _ := url.Parse(cfg.URL) // validated
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	s := &Sink{
		url:     cfg.URL,
		method:  strings.ToUpper(cfg.Method),
		array:   cfg.Format == FormatJSONArray,
		maxBody: cfg.MaxBodyBytes,
		now:     now,
	}
	s.target = s.method + " " + u.Scheme + "://" + u.Host
	s.log = log.With("component", "sink", "type", "http", "endpoint", u.Scheme+"://"+u.Host)

	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("http sink %s: %w", s.target, err)
	}
	s.header, s.secrets = buildHeader(cfg)
	s.checkHeader = s.header.Clone()
	s.checkHeader.Del("Content-Type")
	s.checkHeader.Del("Content-Encoding")
	if cfg.Compression == CompressionGzip {
		s.gz = &httpclient.Gzip{}
	}

	s.client = httpclient.New(cfg.Timeout, tc)

	cfg.TLS.WarnInsecure(s.log)
	authKind := "none"
	if a := cfg.Auth; a != nil {
		authKind = "bearer"
		if a.Basic != nil {
			authKind = "basic"
		}
	}
	s.log.Info("http sink ready", "method", s.method, "format", cfg.Format,
		"compression", cfg.Compression, "auth", authKind, "max_body_bytes", cfg.MaxBodyBytes,
		"timeout", cfg.Timeout)
	return s, nil
}

// buildHeader returns the headers of every request and the strings to
// redact from response excerpts.
func buildHeader(cfg Config) (nethttp.Header, [][]byte) {
	h := nethttp.Header{}
	h.Set("User-Agent", "alertrelay")
	if cfg.Format == FormatJSONArray {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	if cfg.Compression == CompressionGzip {
		h.Set("Content-Encoding", "gzip")
	}
	var secrets [][]byte
	addSecret := func(s string, minLen int) {
		if len(s) >= minLen {
			secrets = append(secrets, []byte(s))
		}
	}
	if a := cfg.Auth; a != nil {
		switch {
		case a.Basic != nil:
			cred := base64.StdEncoding.EncodeToString([]byte(a.Basic.Username + ":" + a.Basic.Password.Reveal()))
			h.Set("Authorization", "Basic "+cred)
			addSecret(cred, 1)
			addSecret(a.Basic.Password.Reveal(), 1)
		default:
			h.Set("Authorization", "Bearer "+a.BearerToken.Reveal())
			addSecret(a.BearerToken.Reveal(), 1)
		}
	}
	for k, v := range cfg.Headers {
		h.Set(k, v)
		// Short values ("1", "json") are unlikely secrets and would
		// garble excerpts.
		addSecret(v, 4)
	}
	return h, secrets
}

// Write sends b: see the type's documentation for how responses map to
// errors. After Close it returns an error wrapping ErrClosed.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("http sink %s: %w", s.target, ErrClosed)
	}
	defer s.trimBuffers()
	if b.Len() == 0 {
		return nil
	}
	parts := s.plan(b)
	if len(parts) == 1 {
		return s.sendPart(ctx, b, parts[0])
	}

	var items []pipeline.ItemError
	var retryAfter *pipeline.RetryAfterError
	for i, p := range parts {
		err := s.sendPart(ctx, b, p)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		if pipeline.IsPermanent(err) {
			items = appendItems(items, p.lo, p.hi, err, true)
			continue
		}
		if i == 0 {
			return err // nothing delivered: retry the whole batch
		}
		items = appendItems(items, p.lo, b.Len(), err, false)
		errors.As(err, &retryAfter)
		break
	}
	if len(items) == 0 {
		return nil
	}
	pe := &pipeline.PartialError{Items: items}
	if retryAfter != nil {
		return &partialRetry{partial: pe, retry: retryAfter}
	}
	return pe
}

func appendItems(items []pipeline.ItemError, lo, hi int, err error, permanent bool) []pipeline.ItemError {
	for i := lo; i < hi; i++ {
		items = append(items, pipeline.ItemError{Index: i, Err: err, Permanent: permanent})
	}
	return items
}

// partialRetry is a *pipeline.PartialError whose retryable part came with a
// Retry-After: errors.As finds both the PartialError and the
// *pipeline.RetryAfterError.
type partialRetry struct {
	partial *pipeline.PartialError
	retry   *pipeline.RetryAfterError
}

func (e *partialRetry) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.partial, e.retry.Delay)
}

func (e *partialRetry) Unwrap() []error { return []error{e.partial, e.retry} }

// plan splits b into parts whose bodies fit in maxBody. It reuses s.parts.
func (s *Sink) plan(b *event.Batch) []part {
	parts := s.parts[:0]
	// NDJSON body: every document + '\n'. JSON array: '[' + every document
	// + ',' (or the final ']').
	base := int64(0)
	if s.array {
		base = 1
	}
	cur := part{}
	size := base
	off := 0
	for i, n := 0, b.Len(); i < n; i++ {
		add := int64(len(b.Doc(i))) + 1
		if s.maxBody > 0 && i > cur.lo && size+add > s.maxBody {
			cur.hi, cur.end = i, off
			parts = append(parts, cur)
			cur = part{lo: i, start: off}
			size = base
		}
		size += add
		off += int(add)
	}
	cur.hi, cur.end = b.Len(), off
	parts = append(parts, cur)
	s.parts = parts
	return parts
}

// body returns the request body of p, compressed if configured. It aliases
// b or the sink's scratch buffers.
func (s *Sink) body(b *event.Batch, p part) []byte {
	var raw []byte
	if s.array {
		s.buf.Reset()
		s.buf.WriteByte('[')
		for i := p.lo; i < p.hi; i++ {
			if i > p.lo {
				s.buf.WriteByte(',')
			}
			s.buf.Write(b.Doc(i))
		}
		s.buf.WriteByte(']')
		raw = s.buf.Bytes()
	} else {
		raw = b.NDJSON()[p.start:p.end]
	}
	if s.gz == nil {
		return raw
	}
	return s.gz.Compress(raw)
}

func (s *Sink) trimBuffers() {
	if s.buf.Cap() > maxKeptBuffer {
		s.buf = bytes.Buffer{}
	}
	if s.closed.Load() {
		s.client.CloseIdleConnections()
	}
}

// sendPart sends the documents of p in one request.
func (s *Sink) sendPart(ctx context.Context, b *event.Batch, p part) error {
	body := httpclient.NewBody(s.body(b, p))
	// The transport may still read a request body after Do returns (a
	// server that answers before reading everything); release cuts it off
	// before the buffer is reused or the batch released.
	defer body.Release()
	req, err := nethttp.NewRequestWithContext(ctx, s.method, s.url, nil)
	if err != nil {
		return fmt.Errorf("http sink %s: %w", s.target, err)
	}
	req.Header = s.header.Clone() // net/http does not promise to leave it alone
	body.Attach(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, err)
	}
	return s.classify(resp)
}

// Check sends an OPTIONS request to the URL, with the configured headers
// and credentials and no body, so that no receiver records an event. Any
// HTTP response proves the endpoint reachable (many webhooks answer
// OPTIONS with 404 or 405, which is fine) except 401 and 403, which give an
// "authentication failed" error. Network and TLS errors are returned.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("http sink %s: %w", s.target, ErrClosed)
	}
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodOptions, s.url, nil)
	if err != nil {
		return fmt.Errorf("http sink %s: %w", s.target, err)
	}
	req.Header = s.checkHeader.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, err)
	}
	defer httpclient.DrainClose(resp)
	if resp.StatusCode == nethttp.StatusUnauthorized || resp.StatusCode == nethttp.StatusForbidden {
		return s.authError(resp.StatusCode)
	}
	return nil
}

// Close closes the sink's idle connections. Write and Check fail with
// ErrClosed afterwards. It is idempotent and safe on a nil *Sink.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if !s.closed.Swap(true) {
		s.log.Debug("http sink closed")
	}
	s.client.CloseIdleConnections()
	return nil
}

// transportError wraps an error of Client.Do without the URL (whose path
// or query may hold a token).
func (s *Sink) transportError(ctx context.Context, err error) error {
	return httpclient.TransportError(ctx, "http sink "+s.target, err)
}

func (s *Sink) authError(code int) error {
	return fmt.Errorf("http sink %s: authentication failed (%d): check auth settings", s.target, code)
}
