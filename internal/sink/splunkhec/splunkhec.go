// Package splunkhec implements a sink that delivers batches to a Splunk
// HTTP Event Collector (`type: splunkhec`): JSON envelopes to
// /services/collector/event or lines to /services/collector/raw, with the
// token in the Authorization header, optional gzip, TLS (custom CA, mutual
// TLS), per-source index/sourcetype/source, static indexed fields, and
// optional indexer acknowledgement.
package splunkhec

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"sort"
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

// HEC paths, relative to Config.URL.
const (
	PathEvent  = "/services/collector/event"
	PathRaw    = "/services/collector/raw"
	PathAck    = "/services/collector/ack"
	PathHealth = "/services/collector/health"
)

// maxKeptBuffer bounds the scratch buffers kept between batches.
const maxKeptBuffer = 32 << 20

// Sink sends batches to Splunk HEC. It implements pipeline.Sink and
// pipeline.Checker.
//
// Requests. With endpoint event, every document becomes one envelope,
//
//	{"time":1740816065.123,"host":..,"source":..,"sourcetype":..,"index":..,"fields":{..},"event":<document>}
//
// and the envelopes are concatenated, one per line, in batch order (time
// comes from @timestamp and is left out when missing; host and index are
// left out when not configured). With endpoint raw, every document
// becomes one line, the text of event.original when present, else the
// JSON document; the batch is grouped by (index, sourcetype, source),
// which go in the query string of one request per group. In both cases a
// request body stays under max_body_bytes (before compression): larger
// batches are split into several requests, sent in order (with gzip, they
// are compressed in parallel first). Every request
// carries "Authorization: Splunk <token>" and, when a channel is in use,
// X-Splunk-Request-Channel. Redirects are not followed.
//
// Outcomes. HEC answers {"text":..,"code":N} (and ackId,
// invalid-event-number); each request maps to:
//
//   - 2xx: accepted (with ack enabled: accepted once acknowledged, below).
//   - 401, 403, codes 1-4 and 16: retryable "authentication failed"
//     error, so the events stay queued while the token is fixed.
//   - codes 10, 11 (channel missing/invalid) and 14 (ACK disabled):
//     retryable, with a message naming the setting to fix.
//   - 429, 503 and codes 9, 18-20: retryable; a Retry-After header (at
//     most MaxRetryAfter) gives a *pipeline.RetryAfterError.
//   - other 5xx, code 8, 408, 404, 405, 3xx, network and TLS errors,
//     timeouts: retryable (404/405 say to check url).
//   - 413: retryable when the request held several events (lower
//     max_body_bytes), permanent for a single event.
//   - other 4xx (400 with codes 5, 6, 7, 12, 13, 15...): permanent, with
//     a short excerpt of the reply. When HEC names the offending event
//     (invalid-event-number, endpoint event) only that event is
//     permanent, and for code 7 (incorrect index) every event of the
//     request bound for the same index; the other events of the request
//     are retryable. HEC does not say whether the events before the
//     offending one were indexed, so they are sent again: at-least-once,
//     duplicates possible.
//
// A batch sent in one request returns the request's error as it is (or
// pipeline.Permanent(err)). A split batch whose first request fails with a
// retryable error returns that error (the whole batch is retried);
// otherwise failures give a *pipeline.PartialError naming only the failed
// documents, by index in the batch: after a retryable failure the
// documents of that request and of every later request are named
// retryable and nothing more is sent; permanently rejected requests do
// not stop the following ones. With a Retry-After, errors.As also finds a
// *pipeline.RetryAfterError.
//
// Acknowledgement. With ack.enabled, every accepted request carries an
// ackId; after the last request Write polls POST /services/collector/ack
// every ack.poll_interval until every ackId is true or ack.timeout passed.
// Write returns nil only when every request is acknowledged; the documents
// of requests not acknowledged in time are named retryable in a
// *pipeline.PartialError, so only they are sent again. An event acked
// after the timeout is indexed twice. If ctx ends while waiting, Write
// returns ctx's error and the whole batch is retried.
//
// Secrets. The token never appears in logs or errors (reply excerpts have
// it replaced by [redacted]); errors name the target as scheme://host.
type Sink struct {
	cfg       Config
	eventURL  string
	rawURL    string
	ackURL    string
	healthURL string
	target    string // "splunkhec sink https://host:port": safe to log
	raw       bool
	maxBody   int64
	channel   string

	header      http.Header // data requests
	ackHeader   http.Header // acknowledgement polls
	checkHeader http.Header // Check
	secrets     [][]byte    // redacted from reply excerpts
	client      *http.Client
	now         func() time.Time
	log         *slog.Logger

	mu       sync.Mutex // serialises Write and guards the scratch state below
	routes   map[string]*route
	keyBuf   []byte
	buf      []byte   // encoded events, in send order
	ends     []int    // ends[k]: offset in buf just past the k-th encoded event
	order    []int    // order[k]: batch index of the k-th encoded event
	docRoute []*route // per batch index
	origs    [][]byte // raw: event.original per batch index
	groups   []string // raw: distinct queries of this batch
	docGroup []int    // raw: group per batch index
	parts    []part
	gzip     bool
	gz       []*httpclient.Gzip // compressors (one per part compressed in parallel), reused
	zbodies  [][]byte           // compressed body of each part, when compressed ahead
	ackBody  []byte

	warnedNoAckID atomic.Bool
	closed        atomic.Bool
}

// part is one request: the events order[lo:hi], whose body is buf[start:end].
type part struct {
	lo, hi, start, end int
	query              string // raw endpoint: the request's query string
}

// New returns a sink for cfg, which must have been through SetDefaults.
// It returns an error if cfg fails Validate or a TLS file cannot be
// loaded. It does not connect: use Check for that. With
// tls.insecure_skip_verify it logs a warning. deps.Log and deps.Now may be
// nil. On error it returns a nil *Sink, on which Close is a no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("splunkhec sink: invalid config: %w", errors.Join(errs...))
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
	base := strings.TrimRight(cfg.URL, "/")
	s := &Sink{
		cfg:       cfg,
		eventURL:  base + PathEvent,
		rawURL:    base + PathRaw,
		healthURL: base + PathHealth,
		target:    "splunkhec sink " + u.Scheme + "://" + u.Host,
		raw:       cfg.Endpoint == EndpointRaw,
		maxBody:   cfg.MaxBodyBytes,
		channel:   cfg.Channel,
		now:       now,
		routes:    map[string]*route{},
	}
	s.log = log.With("component", "sink", "type", "splunkhec", "endpoint", u.Scheme+"://"+u.Host)

	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.target, err)
	}
	if s.channel == "" && (cfg.Ack.Enabled || s.raw) {
		s.channel = newGUID()
	}
	s.ackURL = base + PathAck
	if s.channel != "" {
		s.ackURL += "?channel=" + url.QueryEscape(s.channel)
	}

	tok := cfg.Token.Reveal()
	s.secrets = [][]byte{[]byte(tok)}
	common := http.Header{}
	common.Set("User-Agent", "alertrelay")
	common.Set("Authorization", "Splunk "+tok)
	if s.channel != "" {
		common.Set("X-Splunk-Request-Channel", s.channel)
	}
	s.checkHeader = common.Clone()
	s.ackHeader = common.Clone()
	s.ackHeader.Set("Content-Type", "application/json")
	s.header = common.Clone()
	if s.raw {
		s.header.Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		s.header.Set("Content-Type", "application/json")
	}
	if cfg.Compression == CompressionGzip {
		s.header.Set("Content-Encoding", "gzip")
		s.gzip = true
	}
	s.client = httpclient.New(cfg.Timeout, tc)

	cfg.TLS.WarnInsecure(s.log)
	s.log.Info("splunkhec sink ready", "hec_endpoint", cfg.Endpoint, "compression", cfg.Compression,
		"index", cfg.Index, "ack", cfg.Ack.Enabled, "channel", s.channel != "",
		"max_body_bytes", cfg.MaxBodyBytes, "timeout", cfg.Timeout)
	return s, nil
}

// newGUID returns a random (version 4) GUID.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// Channel is the X-Splunk-Request-Channel the sink sends, or "" if none.
func (s *Sink) Channel() string { return s.channel }

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
	if s.raw {
		s.encodeRaw(b)
	} else {
		s.encodeEvents(b)
	}
	parts := s.plan()
	if s.gzip {
		s.compress(parts)
	}
	return s.deliver(ctx, parts)
}

// encodeEvents encodes every document of b as an event envelope, in order.
func (s *Sink) encodeEvents(b *event.Batch) {
	n := b.Len()
	s.docRoute = resize(s.docRoute, n)
	order, ends, buf := s.order[:0], s.ends[:0], s.buf[:0]
	for i := range n {
		doc := b.Doc(i)
		m, _ := event.ReadRouting(doc)
		r := s.routeFor(m.Provider, m.Dataset)
		s.docRoute[i] = r
		buf = appendEnvelope(buf, r, m.Timestamp, doc)
		order = append(order, i)
		ends = append(ends, len(buf))
	}
	s.order, s.ends, s.buf = order, ends, buf
	s.docGroup = s.docGroup[:0]
}

// encodeRaw encodes every document of b as a raw line, grouped by query
// (index, sourcetype, source, host), groups in order of first appearance.
func (s *Sink) encodeRaw(b *event.Batch) {
	n := b.Len()
	s.docRoute = resize(s.docRoute, n)
	s.origs = resize(s.origs, n)
	s.docGroup = resize(s.docGroup, n)
	groups := s.groups[:0]
	for i := range n {
		m, _ := event.ReadMeta(b.Doc(i))
		r := s.routeFor(m.Provider, m.Dataset)
		s.docRoute[i], s.origs[i] = r, m.Original
		g := -1
		for j, q := range groups {
			if q == r.query {
				g = j
				break
			}
		}
		if g < 0 {
			g = len(groups)
			groups = append(groups, r.query)
		}
		s.docGroup[i] = g
	}
	s.groups = groups
	order, ends, buf := s.order[:0], s.ends[:0], s.buf[:0]
	for g := range groups {
		for i := range n {
			if s.docGroup[i] != g {
				continue
			}
			buf = appendRaw(buf, s.origs[i], b.Doc(i))
			order = append(order, i)
			ends = append(ends, len(buf))
		}
	}
	clear(s.origs) // do not pin the batch
	s.order, s.ends, s.buf = order, ends, buf
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// plan splits the encoded events into requests: a new request starts at a
// change of group (raw) or when the body would exceed maxBody.
func (s *Sink) plan() []part {
	parts := s.parts[:0]
	cur := part{}
	group := -1
	for k, i := range s.order {
		start := 0
		if k > 0 {
			start = s.ends[k-1]
		}
		g := -1
		if s.raw {
			g = s.docGroup[i]
		}
		if k > cur.lo && (g != group || (s.maxBody > 0 && int64(s.ends[k]-cur.start) > s.maxBody)) {
			cur.hi, cur.end = k, start
			parts = append(parts, cur)
			cur = part{lo: k, start: start}
		}
		if k == cur.lo && s.raw {
			cur.query = s.groups[g]
		}
		group = g
	}
	cur.hi, cur.end = len(s.order), len(s.buf)
	parts = append(parts, cur)
	s.parts = parts
	return parts
}

// pendingAck is an accepted request awaiting acknowledgement.
type pendingAck struct {
	id   int64
	part int
}

// deliver sends parts in order, waits for acknowledgements, and maps the
// outcomes to Write's result.
func (s *Sink) deliver(ctx context.Context, parts []part) error {
	var (
		items      []pipeline.ItemError
		retryAfter *pipeline.RetryAfterError
		pending    []pendingAck
	)
	for pi, p := range parts {
		out := s.sendPart(ctx, pi, p)
		if out.err == nil {
			if out.ackID >= 0 {
				pending = append(pending, pendingAck{out.ackID, pi})
			}
			continue
		}
		if ctx.Err() != nil {
			return out.err
		}
		if !out.permanent {
			if pi == 0 {
				return out.err // nothing accepted: retry the whole batch
			}
			for _, q := range parts[pi:] {
				items = s.appendItems(items, q.lo, q.hi, out.err, false)
			}
			errors.As(out.err, &retryAfter)
			break
		}
		if len(parts) == 1 && out.badEvent < 0 {
			return pipeline.Permanent(out.err)
		}
		items = s.appendRejected(items, p, out)
	}
	if len(pending) > 0 {
		unacked, pollErr, err := s.awaitAcks(ctx, pending)
		if err != nil {
			return err // ctx ended
		}
		if len(unacked) > 0 {
			ackErr := fmt.Errorf("%s: %d of %d requests not acknowledged as indexed within ack.timeout (%s); their events will be sent again",
				s.target, len(unacked), len(pending), s.cfg.Ack.Timeout)
			if pollErr != nil {
				ackErr = fmt.Errorf("%w (last poll: %v)", ackErr, pollErr)
			}
			for _, pi := range unacked {
				items = s.appendItems(items, parts[pi].lo, parts[pi].hi, ackErr, false)
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	sort.Slice(items, func(a, b int) bool { return items[a].Index < items[b].Index })
	pe := &pipeline.PartialError{Items: items}
	if retryAfter != nil {
		return &partialRetry{partial: pe, retry: retryAfter}
	}
	return pe
}

// appendItems names the events order[lo:hi].
func (s *Sink) appendItems(items []pipeline.ItemError, lo, hi int, err error, permanent bool) []pipeline.ItemError {
	for k := lo; k < hi; k++ {
		items = append(items, pipeline.ItemError{Index: s.order[k], Err: err, Permanent: permanent})
	}
	return items
}

// appendRejected names the events of a permanently rejected request: all
// of them, or, when HEC named one, that one (and for an incorrect index,
// every event bound for the same index) as permanent and the others as
// retryable.
func (s *Sink) appendRejected(items []pipeline.ItemError, p part, out outcome) []pipeline.ItemError {
	if out.badEvent < 0 {
		return s.appendItems(items, p.lo, p.hi, out.err, true)
	}
	bad := s.order[p.lo+out.badEvent]
	badIndex := s.docRoute[bad].index
	retryErr := fmt.Errorf("%s: request rejected because of another event in it: %w", s.target, out.err)
	for k := p.lo; k < p.hi; k++ {
		i := s.order[k]
		perm := i == bad || (out.sameIndex && s.docRoute[i].index == badIndex)
		if perm {
			items = append(items, pipeline.ItemError{Index: i, Err: out.err, Permanent: true})
		} else {
			items = append(items, pipeline.ItemError{Index: i, Err: retryErr})
		}
	}
	return items
}

// partialRetry is a *pipeline.PartialError whose retryable part came with a
// Retry-After: errors.As finds both.
type partialRetry struct {
	partial *pipeline.PartialError
	retry   *pipeline.RetryAfterError
}

func (e *partialRetry) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.partial, e.retry.Delay)
}

func (e *partialRetry) Unwrap() []error { return []error{e.partial, e.retry} }

// maxCompressors bounds the requests of one batch compressed in parallel
// (a 4 MiB batch is five 1 MB requests; each compressor keeps its writer
// and output buffer, a few hundred KB).
const maxCompressors = 16

// compress gzips the bodies of a batch of 2 to maxCompressors requests in
// parallel, into s.zbodies, on goroutines that end before it returns:
// compression is most of the sink's CPU, and with the default
// max_body_bytes a batch of 1000 events is two requests. Other batches
// (one request, more than maxCompressors, or GOMAXPROCS 1) are compressed
// one request at a time as they are sent, by body.
func (s *Sink) compress(parts []part) {
	clear(s.zbodies)
	s.zbodies = s.zbodies[:0]
	n := len(parts)
	if n < 2 || n > maxCompressors || runtime.GOMAXPROCS(0) < 2 {
		return
	}
	for len(s.gz) < n {
		s.gz = append(s.gz, &httpclient.Gzip{})
	}
	s.zbodies = resize(s.zbodies, n)
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.zbodies[i] = s.gz[i].Compress(s.buf[p.start:p.end])
		}()
	}
	wg.Wait()
}

// body returns the request body of part i: compressed if configured. It
// aliases the sink's scratch buffers.
func (s *Sink) body(i int, p part) []byte {
	raw := s.buf[p.start:p.end]
	if !s.gzip {
		return raw
	}
	if i < len(s.zbodies) {
		return s.zbodies[i]
	}
	if len(s.gz) == 0 {
		s.gz = append(s.gz, &httpclient.Gzip{})
	}
	return s.gz[0].Compress(raw)
}

// sendPart sends one request and classifies the reply.
func (s *Sink) sendPart(ctx context.Context, i int, p part) outcome {
	u := s.eventURL
	if s.raw {
		u = s.rawURL + p.query
	}
	body := httpclient.NewBody(s.body(i, p))
	// The transport may read a body after Do returns; Release cuts it off
	// before the buffer is reused.
	defer body.Release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return outcome{err: fmt.Errorf("%s: %w", s.target, err), ackID: -1, badEvent: -1}
	}
	req.Header = s.header.Clone()
	body.Attach(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return outcome{err: s.transportError(ctx, err), ackID: -1, badEvent: -1}
	}
	return s.classify(resp, p.hi-p.lo)
}

// Check verifies that HEC is up and the token valid, without indexing
// anything: GET /services/collector/health must answer 200 (503 means
// HEC's queues are full), then an empty POST to the configured endpoint,
// with the token and channel, must answer HEC code 5 "No data" (or 2xx):
// the token was accepted. 401/403 give an "authentication failed" error,
// codes 10/11 a channel error. Network and TLS errors are returned.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.target, ErrClosed)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.healthURL, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", s.target, err)
	}
	req.Header = http.Header{"User-Agent": {"alertrelay"}}
	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, err)
	}
	status, raw, _ := s.readReply(resp)
	if status != http.StatusOK {
		msg := httpclient.StatusText(status)
		if ex := httpclient.Excerpt(raw, s.secrets); ex != "" {
			msg += ": " + ex
		}
		if status == http.StatusNotFound {
			return fmt.Errorf("%s: HEC health endpoint not found (%s): check url (HEC port, usually 8088) and that HEC is enabled", s.target, msg)
		}
		return fmt.Errorf("%s: HEC is not healthy (%s)", s.target, msg)
	}

	u := s.eventURL
	if s.raw {
		u = s.rawURL
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
	if err != nil {
		return fmt.Errorf("%s: %w", s.target, err)
	}
	req.Header = s.checkHeader.Clone()
	resp, err = s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, err)
	}
	status, raw, rep := s.readReply(resp)
	if (status == http.StatusBadRequest && rep.code() == CodeNoData) || (status >= 200 && status < 300) {
		return nil
	}
	return s.interpret(status, resp.Header, raw, rep, 0).err
}

// Close closes the sink's idle connections. Write and Check fail with
// ErrClosed afterwards. It is idempotent and safe on a nil *Sink.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if !s.closed.Swap(true) {
		s.log.Debug("splunkhec sink closed")
	}
	s.client.CloseIdleConnections()
	return nil
}

func (s *Sink) trimBuffers() {
	if cap(s.buf) > maxKeptBuffer {
		s.buf = nil
	}
	clear(s.zbodies)
	s.zbodies = s.zbodies[:0]
	if s.closed.Load() {
		s.client.CloseIdleConnections()
	}
}

// transportError wraps an error of Client.Do without the URL.
func (s *Sink) transportError(ctx context.Context, err error) error {
	return httpclient.TransportError(ctx, s.target, err)
}
