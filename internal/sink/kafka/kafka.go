// Package kafka implements a sink that produces every event as one record
// to Apache Kafka (`type: kafka`), with github.com/twmb/franz-go: the
// idempotent producer, acks=all, lz4 compression by default, SASL
// (PLAIN, SCRAM-SHA-256/512) and TLS (custom CA, mutual TLS).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// maxKeptBuffer bounds the copy buffer a pooled flight keeps.
const maxKeptBuffer = 32 << 20

// throttleLogEvery limits the throttling warnings to one per interval.
const throttleLogEvery = time.Minute

// Sink produces batches to Kafka. It implements pipeline.Sink and
// pipeline.Checker.
//
// Records. Every document of a batch becomes one record: key = event.id (so
// that a compacted topic or a consumer can deduplicate by key, and the
// events of one id keep their order on one partition), value = the document
// bytes as they are, timestamp = @timestamp (the time of production when it
// is absent or not RFC 3339), header "dataset" = event.dataset (omitted
// when absent) followed by the static Config.Headers. The topic is
// Config.Topic with {source} and {dataset} expanded. The partition is
// chosen by franz-go's default partitioner: murmur2 of the key, as Kafka's
// Java client does, so that both place one key on one partition.
//
// Write hands every record to the client at once and waits until each has
// been acknowledged or failed, at most Config.Timeout (and ctx). Within
// that time franz-go retries what Kafka calls retriable (leader changes,
// broker restarts, NOT_ENOUGH_REPLICAS, throttling...) on its own; with
// the idempotent producer (acks=all) those retries cannot duplicate a
// record. What remains is mapped:
//
//   - every record acknowledged: nil.
//   - MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_RECORD,
//     INVALID_TIMESTAMP, INVALID_TOPIC_EXCEPTION, or a topic template that
//     expands to an invalid name: that record is Permanent (dead-lettered).
//   - authentication (SASL) and authorization (ACL) failures, a missing
//     topic, timeouts, network and TLS errors, anything else: retryable,
//     with a message that says what to check.
//
// When no record was acknowledged and none failed permanently, Write
// returns one error for the whole batch (wrapping the first record's
// cause). Otherwise it returns a *pipeline.PartialError naming the records
// that failed, by index, with their Permanent flag; acknowledged records
// are not named and are not sent again. Kafka has no Retry-After: broker
// quota throttling is honoured inside the client (KIP-219) and logged, so
// Write never returns a *pipeline.RetryAfterError.
//
// At-least-once. A Write that times out while a produce request is in
// flight cannot know whether Kafka stored it; the delivery loop sends those
// events again, so a consumer can see an event.id twice: deduplicate by
// key. franz-go cannot fail idempotent records whose request was sent, so
// the next Write first waits (within its own timeout) for such records to
// finish rather than queueing new copies behind them: an outage costs at
// most one extra copy of a batch, not one per retry.
//
// Memory. Write copies the batch into a buffer of its own before producing
// (one memcpy per batch), and the records point into that copy. When Write
// returns on a timeout while requests are still in flight, the copy stays
// with those records until their outcome arrives, then goes back to a
// pool: the caller may release or reuse the batch as soon as Write returns.
//
// Secrets. The SASL password is given to the client only; it never appears
// in a log line or an error.
type Sink struct {
	client   *kgo.Client
	tpl      *topicTemplate
	timeout  time.Duration
	statics  []kgo.RecordHeader
	brokers  string // for errors and logs
	autoTopc bool
	sasl     bool
	log      *slog.Logger

	mu       sync.Mutex    // serialises Write and guards tpl and prevDone
	flights  sync.Pool     // *flight
	prevDone chan struct{} // closed when the flight a timed-out Write left behind is over

	closed       atomic.Bool
	lastThrottle atomic.Int64          // unix nanoseconds of the last throttling warning
	connErr      atomic.Pointer[error] // the last failed connection attempt; nil after a success
}

// New returns a sink for cfg, which must have been through SetDefaults;
// New returns an error if it fails Validate or if a TLS file cannot be
// loaded. It does not connect: use Check for that. deps.Log may be nil.
//
// On error New returns a nil *Sink, on which Close is a harmless no-op.
func New(cfg Config, deps pipeline.Deps) (*Sink, error) {
	return newSink(cfg, deps)
}

// newSink is New with extra franz-go options, appended last (tests use it
// to shorten the client's metadata and retry back-offs).
func newSink(cfg Config, deps pipeline.Deps, extra ...kgo.Opt) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kafka sink: invalid config: %w", errors.Join(errs...))
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		tpl:      newTopicTemplate(cfg.Topic),
		timeout:  cfg.Timeout,
		brokers:  strings.Join(cfg.Brokers, ","),
		autoTopc: cfg.AutoCreateTopics,
		sasl:     cfg.SASL != nil,
	}
	s.log = log.With("component", "sink", "type", "kafka", "brokers", s.brokers)
	for _, k := range slices.Sorted(maps.Keys(cfg.Headers)) {
		s.statics = append(s.statics, kgo.RecordHeader{Key: k, Value: []byte(cfg.Headers[k])})
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ProducerBatchCompression(codec(cfg.Compression)),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes)),
		// A Write hands over a whole batch already assembled by the
		// delivery loop: lingering would only add latency.
		kgo.ProducerLinger(0),
		// No RecordDeliveryTimeout: franz-go measures it from the record
		// timestamp, which is the event's (often older than any timeout).
		// Write's context bounds every record instead.
		kgo.ProduceRequestTimeout(min(cfg.Timeout, 10*time.Second)),
		kgo.WithLogger(slogAdapter{s.log}),
		kgo.WithHooks(throttleHook{s}, connHook{s}),
	}
	if !hasPlaceholder(cfg.Topic) {
		opts = append(opts, kgo.DefaultProduceTopic(cfg.Topic))
	}
	if cfg.Acks == AcksLeader {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		s.log.Warn("kafka sink: acks: leader turns the idempotent producer off: " +
			"retries inside the client can duplicate records and a leader failover can lose acknowledged ones")
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.Build()
		if err != nil {
			return nil, fmt.Errorf("kafka sink: %w", err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
		cfg.TLS.WarnInsecure(s.log)
	}
	if a := cfg.SASL; a != nil {
		opts = append(opts, kgo.SASL(mechanism(a)))
		if cfg.TLS == nil && strings.EqualFold(a.Mechanism, SASLPlain) {
			s.log.Warn("kafka sink: sasl PLAIN without tls sends the password in clear text")
		}
	}
	client, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	s.client = client
	s.flights.New = func() any { return &flight{s: s} }

	auth := "none"
	if cfg.SASL != nil {
		auth = strings.ToUpper(cfg.SASL.Mechanism)
	}
	s.log.Info("kafka sink ready", "topic", cfg.Topic, "compression", cfg.Compression, "acks", cfg.Acks,
		"sasl", auth, "tls", cfg.TLS != nil, "max_message_bytes", cfg.MaxMessageBytes, "timeout", cfg.Timeout)
	return s, nil
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case CompressionGzip:
		return kgo.GzipCompression()
	case CompressionSnappy:
		return kgo.SnappyCompression()
	case CompressionLZ4:
		return kgo.Lz4Compression()
	case CompressionZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func mechanism(a *SASLConfig) sasl.Mechanism {
	user, pass := a.Username, a.Password.Reveal()
	switch strings.ToUpper(a.Mechanism) {
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}

// flight is the state of one Write that the client's promises share: the
// copy of the batch, the records and their outcomes. It returns to the pool
// once Write has returned and every promise has fired.
type flight struct {
	s        *Sink
	buf      []byte
	recs     []kgo.Record
	hdrs     []kgo.RecordHeader
	topics   []string
	promises []func(*kgo.Record, error)

	mu        sync.Mutex
	errs      []error
	done      []bool
	pending   int
	abandoned bool          // Write returned before every promise fired
	allDone   chan struct{} // closed when pending reaches 0
}

// grow sizes the flight for n records.
func (f *flight) grow(n, hdrsPer int) {
	if cap(f.recs) < n {
		f.recs = make([]kgo.Record, n)
		f.errs = make([]error, n)
		f.done = make([]bool, n)
		f.topics = make([]string, n)
	}
	f.recs, f.errs, f.done, f.topics = f.recs[:n], f.errs[:n], f.done[:n], f.topics[:n]
	clear(f.recs)
	clear(f.errs)
	clear(f.done)
	clear(f.topics)
	if cap(f.hdrs) < n*hdrsPer {
		f.hdrs = make([]kgo.RecordHeader, n*hdrsPer)
	}
	f.hdrs = f.hdrs[:n*hdrsPer]
	for i := len(f.promises); i < n; i++ {
		f.promises = append(f.promises, func(_ *kgo.Record, err error) { f.complete(i, err) })
	}
}

// complete records the outcome of record i; it runs on the client's
// promise goroutine.
func (f *flight) complete(i int, err error) {
	f.mu.Lock()
	f.errs[i], f.done[i] = err, true
	f.pending--
	last := f.pending == 0
	release := last && f.abandoned
	if last {
		close(f.allDone)
	}
	f.mu.Unlock()
	if release {
		f.s.putFlight(f)
	}
}

func (s *Sink) putFlight(f *flight) {
	if cap(f.buf) > maxKeptBuffer {
		f.buf = nil
	}
	clear(f.recs) // drop references to topics and header slices
	s.flights.Put(f)
}

// Write produces b: see the type's documentation for the records and for
// how outcomes map to errors. After Close it returns an error wrapping
// ErrClosed.
func (s *Sink) Write(ctx context.Context, b *event.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("kafka sink: %w", ErrClosed)
	}
	n := b.Len()
	if n == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeoutCause(ctx, s.timeout,
		fmt.Errorf("no acknowledgement within the timeout (%s): %w", s.timeout, context.DeadlineExceeded))
	defer cancel()

	// Records of a Write that timed out may still be in flight, and
	// franz-go cannot fail the records queued behind them on the same
	// partition (the idempotent sequence would break): new records would
	// only pile up behind them and each retry would add one more copy.
	// Wait for that flight to end first, within this Write's time.
	if s.prevDone != nil {
		select {
		case <-s.prevDone:
			s.prevDone = nil
		case <-wctx.Done():
			return describe(s.withConnErr(fmt.Errorf("records of an earlier write are still in flight: %w",
				context.Cause(wctx))), "", s.sasl)
		}
	}

	f := s.flights.Get().(*flight)
	hdrsPer := 1 + len(s.statics)
	f.grow(n, hdrsPer)
	f.buf = append(f.buf[:0], b.NDJSON()...)
	f.allDone = make(chan struct{})
	f.abandoned = false

	// Build every record before producing any, so that pending is final
	// before the first promise can fire.
	valid := 0
	off := 0
	for i := range n {
		size := len(b.Doc(i))
		doc := f.buf[off : off+size : off+size]
		off += size + 1
		m, _ := event.ReadRouting(doc) // a malformed document still goes, keyless
		topic, ok := s.tpl.expand(m.Provider, m.Dataset)
		if !ok {
			f.errs[i], f.done[i] = errInvalidTopic, true
			continue
		}
		r := &f.recs[i]
		r.Topic = topic
		f.topics[i] = topic // also marks the record as produced
		r.Value = doc
		if m.ID != nil {
			r.Key = text(m.ID)
		}
		if ts, ok := parseTimestamp(m.Timestamp); ok {
			r.Timestamp = ts
		}
		h := f.hdrs[i*hdrsPer : i*hdrsPer : (i+1)*hdrsPer]
		if m.Dataset != nil {
			h = append(h, kgo.RecordHeader{Key: HeaderDataset, Value: text(m.Dataset)})
		}
		r.Headers = append(h, s.statics...)
		r.Context = wctx
		valid++
	}
	f.pending = valid
	if valid == 0 {
		close(f.allDone)
	}
	for i := range n {
		if f.topics[i] != "" { // f.done may change under us: read what only Write writes
			s.client.Produce(wctx, &f.recs[i], f.promises[i])
		}
	}

	select {
	case <-f.allDone:
	case <-wctx.Done():
	}

	f.mu.Lock()
	err := s.outcome(f, context.Cause(wctx))
	release := f.pending == 0
	f.abandoned = !release
	if !release {
		s.prevDone = f.allDone
	}
	f.mu.Unlock()
	if release {
		s.putFlight(f)
	}
	return err
}

// outcome maps the records' results to Write's error; f.mu is held.
// stop is why the wait ended early (nil when every record completed).
func (s *Sink) outcome(f *flight, stop error) error {
	n := len(f.errs)
	var items []pipeline.ItemError
	var firstRetry error
	permanent := 0
	for i := range n {
		err := f.errs[i]
		if !f.done[i] {
			err = stop
			if err == nil {
				err = errors.New("no outcome")
			}
		}
		if err == nil {
			continue
		}
		err = s.withConnErr(err)
		perm := isPermanent(err)
		err = describe(err, f.topics[i], s.sasl)
		if perm {
			permanent++
			err = pipeline.Permanent(err)
		} else if firstRetry == nil {
			firstRetry = err
		}
		items = append(items, pipeline.ItemError{Index: i, Err: err, Permanent: perm})
	}
	switch {
	case len(items) == 0:
		return nil
	case len(items) == n && permanent == 0:
		// Nothing was delivered: retry the whole batch.
		if n == 1 {
			return firstRetry
		}
		return fmt.Errorf("none of the %d events was delivered: %w", n, firstRetry)
	}
	return &pipeline.PartialError{Items: items}
}

// withConnErr adds the last connection error to a timeout, whose own
// message says nothing of why the brokers could not be reached (a TLS
// handshake or SASL failure, a refused connection).
func (s *Sink) withConnErr(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrRecordTimeout) {
		return err
	}
	if ce := s.connErr.Load(); ce != nil && !errors.Is(err, *ce) {
		return fmt.Errorf("%w; last connection error: %w", err, *ce)
	}
	return err
}

// Check verifies that a broker answers with the configured security
// settings (a metadata request) and, when the topic has no placeholder,
// that it exists and is visible to the user: a missing topic is an error
// unless auto_create_topics is set. It never produces a record.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("kafka sink: %w", ErrClosed)
	}
	if err := s.client.Ping(ctx); err != nil {
		return describe(s.withConnErr(err), "", s.sasl)
	}
	if s.tpl.segs != nil {
		return nil
	}
	topic := s.tpl.static
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, s.client)
	if err != nil {
		return describe(err, topic, s.sasl)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		if errors.Is(err, kerr.UnknownTopicOrPartition) && s.autoTopc {
			s.log.Info("kafka sink: the topic does not exist yet; the brokers will be asked to create it on the first write",
				"topic", topic)
			return nil
		}
		if err != nil {
			return describe(err, topic, s.sasl)
		}
		return nil
	}
	return fmt.Errorf("kafka sink (topic %q): the metadata response does not mention the topic", topic)
}

// Close stops the client: records still buffered from a Write that timed
// out are failed (their events were already reported as not delivered),
// requests in flight are waited for, at most until ctx is done or for
// Config.Timeout, and the connections are closed. Write and Check fail
// with ErrClosed afterwards. Close is idempotent and safe on a nil *Sink.
func (s *Sink) Close(ctx context.Context) error {
	if s == nil || s.closed.Swap(true) {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_ = s.client.AbortBufferedRecords(actx) // only ever returns actx's error
	s.client.Close()
	s.log.Debug("kafka sink closed")
	return nil
}

// throttleHook logs broker quota throttling, at most once a minute.
type throttleHook struct{ s *Sink }

func (h throttleHook) OnBrokerThrottle(meta kgo.BrokerMetadata, interval time.Duration, _ bool) {
	now := time.Now().UnixNano()
	last := h.s.lastThrottle.Load()
	if now-last < int64(throttleLogEvery) || !h.s.lastThrottle.CompareAndSwap(last, now) {
		return
	}
	h.s.log.Warn("kafka sink: a broker throttles this client (quota exceeded); the client waits as asked",
		"broker", meta.NodeID, "throttle", interval)
}

// connHook remembers the outcome of the last connection attempt.
type connHook struct{ s *Sink }

func (h connHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		h.s.connErr.Store(nil)
		return
	}
	h.s.connErr.Store(&err)
}

// slogAdapter sends franz-go's log lines to slog. Its info level is too
// chatty for a daemon: only warnings and errors pass.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	}
	a.log.Log(context.Background(), l, "franz-go: "+msg, keyvals...)
}
