// Package sentinel implements a sink (`type: sentinel`) that delivers events
// to Microsoft Sentinel through the Azure Monitor Logs Ingestion API,
// authenticating as a Microsoft Entra ID app registration with the OAuth 2.0
// client credentials grant.
//
// docs/sinks/sentinel.md has the configuration reference, the custom table
// and data collection rule (DCR) that the rows are made for, and the
// sources this package follows.
package sentinel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"slices"
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
const maxKeptBuffer = 8 << 20

// Sink sends batches to a DCR stream of the Logs Ingestion API. It
// implements pipeline.Sink and pipeline.Checker.
//
// Requests. Every document of a batch becomes one row (see appendRow in
// rows.go and docs/sinks/sentinel.md):
//
//	{"TimeGenerated":"<@timestamp>","EventId":"<event.id>","Dataset":"<event.dataset>",
//	 "SourceName":"<event.provider>","Kind":"<event.kind>","Event":<the document>}
//
// The rows go, as a JSON array, in
//
//	POST <endpoint>/dataCollectionRules/<dcr_immutable_id>/streams/<stream>?api-version=<api_version>
//	Authorization: Bearer <token>
//	Content-Type: application/json
//	Content-Encoding: gzip   (compression: gzip, unless gzip would not shrink the body)
//	x-ms-client-request-id: <random UUID>
//
// A batch whose rows would make a body (measured before compression)
// larger than MaxBodyBytes is split, in order, into several requests. A
// document that is not a JSON object, or whose row alone exceeds the
// limit, is never sent: it is reported as a permanent item error (dead
// letter). Redirects are not followed.
//
// Tokens. An access token is asked from <authority>/<tenant_id>/oauth2/v2.0/token
// (client_id, client_secret, scope, grant_type=client_credentials) when
// first needed, cached, and replaced ahead of expiry (5 minutes early, or
// at half its lifetime if it lives less than 10 minutes); one token request
// is in flight at a time. If a refresh fails while the cached token is
// still valid, the cached token is used.
//
// Outcomes. Write maps each reply of the ingestion endpoint:
//
//   - 2xx (the service answers 204): accepted.
//   - 401: the token is dropped, a new one fetched, and the request sent
//     once more, at most once per Write; a second 401 is an error wrapping
//     ErrAuthentication. Retryable: the events stay queued.
//   - 403 (OperationFailed: the app lacks the Monitoring Metrics Publisher
//     role on the DCR): ErrAuthentication, retryable.
//   - token request refused by Entra ID (400/401 invalid_client,
//     unauthorized_client, invalid_scope...): ErrAuthentication naming the
//     Entra error and AADSTS code, retryable. 429/5xx from Entra ID:
//     retryable.
//   - 408, 429, 5xx: retryable; a 429 or 503 with Retry-After gives a
//     *pipeline.RetryAfterError.
//   - 413 (ContentLengthLimitExceeded): the request's rows are split in
//     two halves and each sent again, in the same Write; a single row that
//     still gets 413 is a permanent item error.
//   - 404, and 400 with a configuration code (InvalidStream,
//     InvalidDcrImmutableId, NotFound, api-version and content-type
//     codes): retryable, logged at ERROR: the events stay queued while the
//     operator fixes the settings.
//   - other 400 (InvalidPayload, RecordsTimeRangeIsMoreThan30Minutes,
//     unknown codes): pipeline.Permanent: the rows were refused.
//   - other 3xx and 4xx: retryable (the endpoint is probably wrong).
//   - network errors, TLS errors and timeouts: retryable.
//
// A split batch whose first request fails with a retryable error returns
// that error (the whole batch is retried), unless some documents were
// already marked permanent. Otherwise, if any request fails, Write returns
// a *pipeline.PartialError naming the documents of the failed requests by
// batch index: a request rejected permanently marks its documents
// Permanent and the following requests are still sent; a retryable
// failure marks the documents of that request and of every request not
// yet sent as retryable, and stops. Documents of requests that succeeded
// are not named. When that retryable failure carried a Retry-After, the
// error is also a *pipeline.RetryAfterError (errors.As finds both).
//
// Secrets. The client secret and access tokens never appear in logs or
// errors; error replies are quoted as short excerpts with the secret
// redacted, and Entra ID error descriptions are cut before their trace
// lines.
type Sink struct {
	ingestURL string
	target    string // "sentinel sink https://host dcr-.../Custom-...": safe to log
	gzip      bool
	maxBody   int
	secrets   [][]byte

	client *nethttp.Client
	tokens *tokenSource
	now    func() time.Time
	log    *slog.Logger

	mu    sync.Mutex // serialises Write and guards its scratch state
	buf   []byte     // the rows of the current batch, separated by ','
	rows  []row
	spans []span
	gz    *httpclient.Gzip // nil without compression

	closed atomic.Bool
}

// New returns a sink for cfg, which must have been through SetDefaults;
// New returns an error if it fails Validate or if a TLS file cannot be
// loaded. It does not connect: use Check for that. With
// tls.insecure_skip_verify it logs a warning. deps.Log and deps.Now may be
// nil.
//
// On error New returns a nil *Sink, on which Close is a harmless no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("sentinel sink: invalid config: %w", errors.Join(errs...))
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	u, _ := url.Parse(endpoint) // validated
	s := &Sink{
		ingestURL: endpoint + "/dataCollectionRules/" + cfg.DCRImmutableID + "/streams/" + cfg.Stream +
			"?api-version=" + url.QueryEscape(cfg.APIVersion),
		target:  "sentinel sink " + u.Scheme + "://" + u.Host + " " + cfg.DCRImmutableID + "/" + cfg.Stream,
		gzip:    cfg.Compression == CompressionGzip,
		maxBody: cfg.MaxBodyBytes,
		now:     now,
	}
	s.log = log.With("component", "sink", "type", "sentinel", "endpoint", u.Scheme+"://"+u.Host,
		"dcr", cfg.DCRImmutableID, "stream", cfg.Stream)

	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.target, err)
	}
	s.client = httpclient.New(cfg.Timeout, tc)
	s.tokens = newTokenSource(cfg, s.client, now, s.log)
	s.secrets = s.tokens.secrets
	if s.gzip {
		s.gz = &httpclient.Gzip{}
	}
	cfg.TLS.WarnInsecure(s.log)
	a, _ := url.Parse(cfg.Authority) // validated
	s.log.Info("sentinel sink ready", "authority", a.Scheme+"://"+a.Host, "tenant_id", cfg.TenantID,
		"client_id", cfg.ClientID, "api_version", cfg.APIVersion, "compression", cfg.Compression,
		"max_body_bytes", cfg.MaxBodyBytes, "timeout", cfg.Timeout)
	return s, nil
}

// Write sends b: see the type's documentation for the requests and how
// replies map to errors. After Close it returns an error wrapping
// ErrClosed.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.target, ErrClosed)
	}
	defer s.trimBuffers()
	if b.Len() == 0 {
		return nil
	}
	items := s.encode(b)
	spans := s.plan()
	w := writeState{}
	var retryAfter *pipeline.RetryAfterError
	for i := 0; i < len(spans); i++ {
		sp := spans[i]
		err := s.send(ctx, sp, &w)
		if err == nil {
			w.delivered = true
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		var se *statusError
		if errors.As(err, &se) && se.status == nethttp.StatusRequestEntityTooLarge {
			if sp.hi-sp.lo > 1 {
				mid := sp.lo + (sp.hi-sp.lo)/2
				s.log.Warn("sentinel: request too large (413); sending its rows in two halves",
					"rows", sp.hi-sp.lo)
				spans = slices.Insert(spans, i+1, span{sp.lo, mid}, span{mid, sp.hi})
				continue
			}
			items = s.itemsFor(items, sp.lo, sp.hi, pipeline.Permanent(err), true)
			continue
		}
		if pipeline.IsPermanent(err) {
			if len(spans) == 1 && len(items) == 0 {
				return err // the batch was one request, and it was rejected
			}
			items = s.itemsFor(items, sp.lo, sp.hi, err, true)
			continue
		}
		if !w.delivered && len(items) == 0 {
			return err // nothing delivered, nothing dead-lettered: retry the whole batch
		}
		items = s.itemsFor(items, sp.lo, len(s.rows), err, false)
		errors.As(err, &retryAfter)
		break
	}
	s.spans = spans[:0]
	if len(items) == 0 {
		return nil
	}
	slices.SortFunc(items, func(a, b pipeline.ItemError) int { return a.Index - b.Index })
	pe := &pipeline.PartialError{Items: items}
	if retryAfter != nil {
		return &partialRetry{partial: pe, retry: retryAfter}
	}
	return pe
}

// writeState is what one Write remembers across its requests.
type writeState struct {
	delivered bool // some request was accepted
	refreshed bool // the token was already renewed after a 401
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

// send posts the rows of sp, renewing the token and sending again once per
// Write if the endpoint answers 401.
func (s *Sink) send(ctx context.Context, sp span, w *writeState) error {
	body := s.body(sp)
	defer s.restore(sp)
	payload, gzipped := s.compress(body)
	for {
		tok, err := s.tokens.token(ctx)
		if err != nil {
			return err
		}
		err = s.post(ctx, payload, gzipped, tok)
		var se *statusError
		if w.refreshed || !errors.As(err, &se) || se.status != nethttp.StatusUnauthorized {
			return err
		}
		w.refreshed = true
		s.tokens.invalidate(tok)
		s.log.Info("sentinel: the endpoint refused the access token (401); fetching a new one")
	}
}

// compress returns the payload for body: gzip-compressed when configured
// and smaller, else body itself.
func (s *Sink) compress(body []byte) ([]byte, bool) {
	if s.gz == nil {
		return body, false
	}
	z := s.gz.Compress(body)
	if len(z) >= len(body) {
		return body, false
	}
	return z, true
}

// post sends one request and classifies the reply.
func (s *Sink) post(ctx context.Context, payload []byte, gzipped bool, tok string) error {
	body := httpclient.NewBody(payload)
	// The transport may read a request body after Do returns; Release
	// cuts it off before the buffer is reused.
	defer body.Release()
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, s.ingestURL, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", s.target, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "alertrelay")
	req.Header.Set("x-ms-client-request-id", newRequestID())
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	body.Attach(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return httpclient.TransportError(ctx, s.target, err)
	}
	return s.classify(resp)
}

// wrap prefixes err with the sink's target.
func (s *Sink) wrap(err error) error { return fmt.Errorf("%s: %w", s.target, err) }

func (s *Sink) trimBuffers() {
	if cap(s.buf) > maxKeptBuffer {
		s.buf, s.rows = nil, nil
	}
	if s.closed.Load() {
		s.client.CloseIdleConnections()
	}
}

// Check gets an access token (from the cache if it is still fresh), which
// proves the authority reachable and the credentials valid. It sends
// nothing to the ingestion endpoint: the API documents no request that
// tests a DCR stream without ingesting (an empty body gets 500), so a
// wrong endpoint, DCR or stream shows at the first Write, as a retryable
// error logged at ERROR level.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.target, ErrClosed)
	}
	_, err := s.tokens.token(ctx)
	return err
}

// Close closes the sink's idle connections. Write and Check fail with
// ErrClosed afterwards. It is idempotent and safe on a nil *Sink.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if !s.closed.Swap(true) {
		s.log.Debug("sentinel sink closed")
	}
	s.client.CloseIdleConnections()
	return nil
}

// newRequestID returns a random (version 4) UUID for x-ms-client-request-id,
// which Microsoft support can use to find a request.
func newRequestID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read does not fail
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}
