// Package elasticsearch implements a sink that writes batches to
// Elasticsearch or OpenSearch with the _bulk API (`type: elasticsearch`),
// into a data stream (default) or into date-named indices, with API key or
// basic authentication, gzip, TLS (custom CA, mutual TLS) and idempotent
// re-sends: every document's _id is its event.id.
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// ErrClosed is returned (wrapped) by Write and Check after Close.
var ErrClosed = errors.New("sink is closed")

// maxKeptBuffer bounds the scratch buffers kept between batches.
const maxKeptBuffer = 32 << 20

// maxIDBytes is Elasticsearch's limit on _id.
const maxIDBytes = 512

// filterPath keeps the bulk reply small (no took, _index, _id, _shards,
// _seq_no...) while every item keeps its status, so that positions in
// items still match positions in the request: Elasticsearch drops array
// entries that the filter leaves empty.
const filterPath = "errors,items.*.status,items.*.error"

// Sink writes batches with the _bulk API. It implements pipeline.Sink and
// pipeline.Checker.
//
// Requests. Write sends POST <url>/_bulk?filter_path=errors,items.*.status,
// items.*.error[&pipeline=P] with Content-Type application/x-ndjson,
// gzip-compressed unless compression is none. For every document of the
// batch the body holds an action line and the document:
//
//	{"create":{"_index":"logs-alertrelay-default","_id":"<event.id>"}}   (mode data_stream)
//	{"index":{"_index":"alertrelay-2025.03.01","_id":"<event.id>"}}      (mode index)
//	<the document, unchanged>
//
// The _id makes re-sends idempotent: in a data stream a re-sent create is
// answered 409 (already there), which counts as written; in an index the
// re-sent document overwrites itself (and a later version of a Cynet alert
// with the same event.id replaces the earlier one). The index name's date
// comes from the event's own @timestamp, so a retry after midnight still
// targets the day the first attempt did. A document without event.id gets
// no _id (Elasticsearch draws one; a re-send then duplicates it); one
// longer than 512 bytes gets the hex SHA-256 of it. When the body would
// exceed MaxBodyBytes (before compression) the batch is sent in several
// requests, in order; a 413 reply splits the request in two and sends both
// halves (repeatedly, down to one document, which is then dead-lettered).
//
// Outcomes. A 2xx reply whose "errors" is false means every document was
// written; the reply is scanned for that flag, not decoded. With errors
// true each item is classified (see itemErrors): written, retryable, or
// permanent; Write returns a *pipeline.PartialError naming the documents
// that were not written. Whole-request replies:
//
//   - 401, 403: retryable, "authentication failed (401): check auth
//     settings" (the events stay queued while the operator fixes it).
//   - 413: split in halves as above.
//   - 408, 429, 5xx: retryable; 429 or 503 with Retry-After gives a
//     *pipeline.RetryAfterError.
//   - 3xx: retryable (wrong URL; redirects are not followed).
//   - other 4xx: pipeline.Permanent with an excerpt of the reply.
//   - 2xx that is not a bulk reply, network, TLS and timeout errors:
//     retryable. With several urls a connection error moves the sink to
//     the next one.
//
// When one whole-request failure covers every document of the batch (the
// usual case: one request per batch), Write returns that error itself, so
// that the whole batch is retried or dead-lettered. Once a request has
// failed with a retryable error, the documents of the later requests are
// reported retryable without being sent.
//
// Secrets. The API key, password, basic credentials and header values
// never appear in logs or errors: errors name the node as
// "scheme://host", and reply excerpts have every secret replaced by
// [redacted].
type Sink struct {
	bulkURLs []string // one per node
	infoURLs []string
	targets  []string // "https://host:port": safe to log
	cur      atomic.Int32

	dataStream bool
	opPrefix   []byte // data_stream: `{"create":{"_index":"<ds>"`
	index      indexPattern
	maxBody    int64

	header      http.Header
	checkHeader http.Header
	secrets     [][]byte
	client      *http.Client
	now         func() time.Time
	log         *slog.Logger

	mu     sync.Mutex       // serialises Write and guards the scratch state
	buf    []byte           // bulk body of the current batch
	ends   []int            // ends[i]: offset in buf after document i's '\n'
	gz     *httpclient.Gzip // nil without compression
	warned bool             // 413 warning logged

	closed atomic.Bool
}

// New returns a sink for cfg, which must have been through SetDefaults;
// it returns an error if cfg fails Validate or a TLS file cannot be
// loaded. It does not connect: Check does. deps.Log and deps.Now may be
// nil. On error New returns a nil *Sink, on which Close is a no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("elasticsearch sink: invalid config: %w", errors.Join(errs...))
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
		dataStream: cfg.Mode == ModeDataStream,
		maxBody:    cfg.MaxBodyBytes,
		now:        now,
	}
	q := "?filter_path=" + filterPath
	if cfg.Pipeline != "" {
		q += "&pipeline=" + url.QueryEscape(cfg.Pipeline)
	}
	for _, raw := range cfg.bases() {
		u, _ := url.Parse(raw) // validated
		base := strings.TrimRight(raw, "/")
		s.bulkURLs = append(s.bulkURLs, base+"/_bulk"+q)
		s.infoURLs = append(s.infoURLs, base+"/")
		s.targets = append(s.targets, u.Scheme+"://"+u.Host)
	}
	s.log = log.With("component", "sink", "type", "elasticsearch")
	target := cfg.DataStream
	if s.dataStream {
		s.opPrefix = []byte(`{"create":{"_index":"` + cfg.DataStream + `"`)
	} else {
		s.index, _ = parseIndexPattern(cfg.Index) // validated
		target = cfg.Index
	}

	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch sink %s: %w", s.targets[0], err)
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
		authKind = "basic"
		if a.APIKey.IsSet() {
			authKind = "api_key"
		}
	}
	s.log.Info("elasticsearch sink ready", "nodes", strings.Join(s.targets, ","), "mode", cfg.Mode,
		"target", target, "pipeline", cfg.Pipeline, "compression", cfg.Compression, "auth", authKind,
		"max_body_bytes", cfg.MaxBodyBytes, "timeout", cfg.Timeout)
	return s, nil
}

// buildHeader returns the headers of every bulk request and the strings to
// redact from reply excerpts.
func buildHeader(cfg Config) (http.Header, [][]byte) {
	h := http.Header{}
	h.Set("User-Agent", "alertrelay")
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Accept", "application/json")
	if cfg.Compression == CompressionGzip {
		h.Set("Content-Encoding", "gzip")
	}
	var secrets [][]byte
	add := func(s string, minLen int) {
		if len(s) >= minLen {
			secrets = append(secrets, []byte(s))
		}
	}
	if a := cfg.Auth; a != nil {
		if a.APIKey.IsSet() {
			key := a.APIKey.Reveal()
			add(key, 1)
			if _, k, ok := strings.Cut(key, ":"); ok { // id:api_key, not yet encoded
				add(k, 1)
				key = base64.StdEncoding.EncodeToString([]byte(key))
				add(key, 1)
			}
			h.Set("Authorization", "ApiKey "+key)
		} else {
			cred := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password.Reveal()))
			h.Set("Authorization", "Basic "+cred)
			add(cred, 1)
			add(a.Password.Reveal(), 1)
		}
	}
	for k, v := range cfg.Headers {
		h.Set(k, v)
		add(v, 4) // short values are unlikely secrets and would garble excerpts
	}
	return h, secrets
}

// what names the sink and its current node in errors.
func (s *Sink) what() string {
	return "elasticsearch sink " + s.targets[int(s.cur.Load())%len(s.targets)]
}

// Write sends b: see the type's documentation. After Close it returns an
// error wrapping ErrClosed.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.what(), ErrClosed)
	}
	defer s.trimBuffers()
	n := b.Len()
	if n == 0 {
		return nil
	}
	s.encode(b)

	st := sendState{}
	lo := 0
	for lo < n {
		hi := s.nextPart(lo)
		s.sendRange(ctx, lo, hi, &st)
		lo = hi
	}
	if len(st.items) == 0 {
		return nil
	}
	if st.wholes == 1 && st.itemFails == 0 && len(st.items) == n {
		// One whole-request failure covers the batch: nothing was
		// written; retry or dead-letter it whole.
		return st.items[0].Err
	}
	pe := &pipeline.PartialError{Items: st.items}
	if st.retry != nil {
		return &partialRetry{partial: pe, retry: st.retry}
	}
	return pe
}

// sendState accumulates the outcome of a batch's requests.
type sendState struct {
	items []pipeline.ItemError
	stop  error // first whole-request retryable failure: later ranges are not sent
	retry *pipeline.RetryAfterError
	// wholes counts whole-request failures, itemFails the failed items
	// of bulk replies.
	wholes, itemFails int
}

// sendRange sends documents [lo, hi) in one request, or in halves after a
// 413, and records the outcome in st.
func (s *Sink) sendRange(ctx context.Context, lo, hi int, st *sendState) {
	if st.stop != nil {
		st.items = appendItems(st.items, lo, hi, st.stop, false)
		return
	}
	items, err := s.post(ctx, lo, hi)
	switch {
	case err == nil:
		st.items = append(st.items, items...)
		st.itemFails += len(items)
	case errors.Is(err, errTooLarge):
		if !s.warned {
			s.warned = true
			s.log.Warn("the cluster refused a bulk request as too large (413): splitting it; lower max_body_bytes below the cluster's http.max_content_length",
				"request_bytes", s.ends[hi-1]-s.start(lo), "documents", hi-lo)
		}
		mid := lo + (hi-lo)/2
		s.sendRange(ctx, lo, mid, st)
		s.sendRange(ctx, mid, hi, st)
	case pipeline.IsPermanent(err):
		st.items = appendItems(st.items, lo, hi, err, true)
		st.wholes++
	default:
		st.stop = err
		errors.As(err, &st.retry)
		st.items = appendItems(st.items, lo, hi, err, false)
		st.wholes++
	}
}

func appendItems(items []pipeline.ItemError, lo, hi int, err error, permanent bool) []pipeline.ItemError {
	for i := lo; i < hi; i++ {
		items = append(items, pipeline.ItemError{Index: i, Err: err, Permanent: permanent})
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

// encode writes the bulk body of b into s.buf: an action line and the
// document for each event, each followed by '\n'.
func (s *Sink) encode(b *event.Batch) {
	buf, ends := s.buf[:0], s.ends[:0]
	var idScratch []byte
	for i, n := 0, b.Len(); i < n; i++ {
		doc := b.Doc(i)
		m, _ := event.ReadRouting(doc) // what it found is usable even if !ok
		if s.dataStream {
			buf = append(buf, s.opPrefix...)
		} else {
			buf = append(buf, `{"index":{"_index":"`...)
			buf = s.index.appendName(buf, m.Timestamp, s.now)
			buf = append(buf, '"')
		}
		if m.ID != nil {
			buf = append(buf, `,"_id":`...)
			buf, idScratch = appendID(buf, m.ID, idScratch)
		}
		buf = append(buf, "}}\n"...)
		buf = append(buf, doc...)
		buf = append(buf, '\n')
		ends = append(ends, len(buf))
	}
	s.buf, s.ends = buf, ends
}

// appendID appends the JSON string for _id from the raw (escaped) body of
// event.id. Plain printable ASCII, the usual case, is copied as is;
// anything else is unescaped and re-encoded, so that a malformed escape
// cannot break the action line (which would fail the whole request). An
// ID over 512 bytes is replaced by its hex SHA-256.
func appendID(dst, raw, scratch []byte) ([]byte, []byte) {
	plain := len(raw) <= maxIDBytes
	for _, c := range raw {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, raw...)
		return append(dst, '"'), scratch
	}
	scratch = event.Unquote(scratch[:0], raw)
	if !utf8.Valid(scratch) {
		// Elasticsearch would see U+FFFD: measure what it would store.
		scratch = bytes.ToValidUTF8(scratch, []byte("\uFFFD"))
	}
	if len(scratch) > maxIDBytes {
		sum := sha256.Sum256(scratch)
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, sum[:])
		return append(dst, '"'), scratch
	}
	return appendString(dst, scratch), scratch
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func (s *Sink) start(lo int) int {
	if lo == 0 {
		return 0
	}
	return s.ends[lo-1]
}

// nextPart returns hi such that documents [lo, hi) fit in maxBody (at least
// one document).
func (s *Sink) nextPart(lo int) int {
	n := len(s.ends)
	if s.maxBody <= 0 {
		return n
	}
	base := s.start(lo)
	hi := lo + 1
	for hi < n && int64(s.ends[hi]-base) <= s.maxBody {
		hi++
	}
	return hi
}

// body returns the request body of documents [lo, hi), compressed if
// configured. It aliases the sink's scratch buffers.
func (s *Sink) body(lo, hi int) []byte {
	raw := s.buf[s.start(lo):s.ends[hi-1]]
	if s.gz == nil {
		return raw
	}
	return s.gz.Compress(raw)
}

// post sends documents [lo, hi) in one request.
func (s *Sink) post(ctx context.Context, lo, hi int) ([]pipeline.ItemError, error) {
	node := int(s.cur.Load()) % len(s.bulkURLs)
	body := httpclient.NewBody(s.body(lo, hi))
	defer body.Release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.bulkURLs[node], nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what(), err)
	}
	req.Header = s.header.Clone()
	body.Attach(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.transportError(ctx, node, err)
	}
	return s.classify(resp, lo, hi)
}

// transportError wraps an error of Client.Do without the URL and, with
// several nodes, moves to the next one.
func (s *Sink) transportError(ctx context.Context, node int, err error) error {
	e := httpclient.TransportError(ctx, "elasticsearch sink "+s.targets[node], err)
	if ctx.Err() == nil && len(s.targets) > 1 {
		next := (node + 1) % len(s.targets)
		if s.cur.CompareAndSwap(int32(node), int32(next)) {
			s.log.Warn("elasticsearch node unreachable, switching to the next url", "from", s.targets[node], "to", s.targets[next], "error", e)
		}
	}
	return e
}

func (s *Sink) authError(code int) error {
	return fmt.Errorf("%s: authentication failed (%d): check auth settings (api_key or username/password) and the role's privileges on the target", s.what(), code)
}

func (s *Sink) trimBuffers() {
	if cap(s.buf) > maxKeptBuffer {
		s.buf, s.ends = nil, nil
	}
	if s.closed.Load() {
		s.client.CloseIdleConnections() // Close ran during this Write
	}
}

// clusterInfo is what Check reads from GET /.
type clusterInfo struct {
	Name        string `json:"name"`
	ClusterName string `json:"cluster_name"`
	Version     struct {
		Number       string `json:"number"`
		Distribution string `json:"distribution"`
	} `json:"version"`
	Tagline string `json:"tagline"`
}

// Check sends GET / with the configured credentials: a reply with a
// version number proves the cluster reachable and the credentials valid;
// it logs, at debug level, the distribution (Elasticsearch or OpenSearch),
// version and cluster name. 401/403 give "authentication failed"; other
// replies, or one that is not cluster information (a wrong URL, Kibana's
// port), an error. No document is written.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.what(), ErrClosed)
	}
	node := int(s.cur.Load()) % len(s.infoURLs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.infoURLs[node], nil)
	if err != nil {
		return fmt.Errorf("%s: %w", s.what(), err)
	}
	req.Header = s.checkHeader.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, node, err)
	}
	code := resp.StatusCode
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		httpclient.DrainClose(resp)
		return s.authError(code)
	}
	if code < 200 || code >= 300 {
		return fmt.Errorf("%s: GET / answered %s: %s", s.what(), httpclient.StatusText(code), httpclient.ReadExcerpt(resp, s.secrets))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	httpclient.DrainClose(resp)
	if err != nil {
		return fmt.Errorf("%s: reading GET /: %w", s.what(), err)
	}
	var info clusterInfo
	if json.Unmarshal(raw, &info) != nil || info.Version.Number == "" {
		return fmt.Errorf("%s: GET / is not Elasticsearch or OpenSearch cluster information: %s", s.what(), httpclient.Excerpt(raw, s.secrets))
	}
	dist := info.Version.Distribution
	if dist == "" {
		dist = "elasticsearch"
	}
	s.log.Debug("elasticsearch sink connected", "node", s.targets[node], "distribution", dist,
		"version", info.Version.Number, "cluster_name", info.ClusterName)
	return nil
}

// Close closes the sink's idle connections. Write and Check fail with
// ErrClosed afterwards. It is idempotent and safe on a nil *Sink.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if !s.closed.Swap(true) {
		s.log.Debug("elasticsearch sink closed")
	}
	s.client.CloseIdleConnections()
	return nil
}
