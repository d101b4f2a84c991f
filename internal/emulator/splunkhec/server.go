// Package splunkhec is a Splunk HTTP Event Collector (HEC) that stands in
// for Splunk in tests, demos and benchmarks of alertrelay's splunkhec sink.
//
// A Server serves the HEC endpoints the sink uses, with Splunk's status
// codes and {"text":..,"code":N} reply bodies:
//
//   - POST /services/collector/event (also /services/collector and the
//     /1.0 forms): concatenated JSON envelopes
//     {"time","host","source","sourcetype","index","fields","event"}. A
//     malformed envelope rejects the request with 400 and code 6, 12, 13,
//     15 or (index not allowed) 7, with "invalid-event-number", its
//     position; an empty body gets code 5 "No data".
//   - POST /services/collector/raw: one event per non-blank line; index,
//     sourcetype, source and host from the query string.
//   - POST /services/collector/ack?channel=: {"acks":[ids]} →
//     {"acks":{"id":true|false}}; an ack reported true is forgotten, as in
//     Splunk. Code 14 when the token has no acknowledgement.
//   - GET /services/collector/health: 200 code 17, or 503 code 18 when
//     made unhealthy.
//
// Authentication is "Authorization: Splunk <token>" (401 code 2 without
// it, 401 code 3 with another scheme, 403 code 4 for a wrong token, 403
// code 1 when the token is disabled). With Options.Ack the token has
// indexer acknowledgement: data requests need an X-Splunk-Request-Channel
// (header or ?channel=) that is a GUID (code 10 missing, 11 invalid) and
// their replies carry an ackId that turns true after the indexing delay.
// Bodies may be gzip-encoded (Content-Encoding: gzip).
//
// A request is all or nothing, unless Options.IndexBeforeInvalid: then the
// events before an invalid one are recorded, as a streaming splunkd might.
// Faults are injected at run time: FailNext (status, HEC code,
// Retry-After), SetDown (stop and restart on the same address),
// SetTokenDisabled, SetUnhealthy, SetAckDelay and NeverAckNext.
package splunkhec

import (
	"crypto/tls"
	"net/http"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/emuhttp"
	"github.com/alertrelay/alertrelay/internal/emulator/tally"
)

// HEC reply codes and their texts, from Splunk's "Troubleshoot HTTP Event
// Collector" table.
const (
	CodeSuccess              = 0
	CodeTokenDisabled        = 1
	CodeTokenRequired        = 2
	CodeInvalidAuthorization = 3
	CodeInvalidToken         = 4
	CodeNoData               = 5
	CodeInvalidDataFormat    = 6
	CodeIncorrectIndex       = 7
	CodeInternalError        = 8
	CodeServerBusy           = 9
	CodeChannelMissing       = 10
	CodeInvalidChannel       = 11
	CodeEventRequired        = 12
	CodeEventBlank           = 13
	CodeAckDisabled          = 14
	CodeIndexedFields        = 15
	CodeQueryStringAuth      = 16
	CodeHealthy              = 17
	CodeUnhealthyQueues      = 18
)

// CodeText is the reply text of each code.
func CodeText(code int) string {
	switch code {
	case CodeSuccess:
		return "Success"
	case CodeTokenDisabled:
		return "Token disabled"
	case CodeTokenRequired:
		return "Token is required"
	case CodeInvalidAuthorization:
		return "Invalid authorization"
	case CodeInvalidToken:
		return "Invalid token"
	case CodeNoData:
		return "No data"
	case CodeInvalidDataFormat:
		return "Invalid data format"
	case CodeIncorrectIndex:
		return "Incorrect index"
	case CodeInternalError:
		return "Internal server error"
	case CodeServerBusy:
		return "Server is busy"
	case CodeChannelMissing:
		return "Data channel is missing"
	case CodeInvalidChannel:
		return "Invalid data channel"
	case CodeEventRequired:
		return "Event field is required"
	case CodeEventBlank:
		return "Event field cannot be blank"
	case CodeAckDisabled:
		return "ACK is disabled"
	case CodeIndexedFields:
		return "Error in handling indexed fields"
	case CodeQueryStringAuth:
		return "Query string authorization is not enabled"
	case CodeHealthy:
		return "HEC is healthy"
	case CodeUnhealthyQueues:
		return "HEC is unhealthy, queues are full"
	}
	return "Unknown error"
}

// DefaultMaxBodyBytes is Options.MaxBodyBytes when zero.
const DefaultMaxBodyBytes = 64 << 20

// Options configures a Server.
type Options struct {
	// Token is the HEC token requests must present as "Authorization:
	// Splunk <token>". Empty: no authentication.
	Token string
	// Ack gives the token indexer acknowledgement: data requests need a
	// channel, and their replies carry an ackId.
	Ack bool
	// AckDelay is the indexing delay: how long after a request its ackId
	// turns true. SetAckDelay changes it.
	AckDelay time.Duration
	// Indexes, if not empty, are the indexes the token may write to; an
	// event for another gets code 7 "Incorrect index". An event without an
	// index goes to the token's default index, always allowed.
	Indexes []string
	// MaxBodyBytes limits a body, as received and after decompression: a
	// larger one gets 413. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// IndexBeforeInvalid records the events before an invalid one of a
	// rejected /event request (Splunk parses a request as a stream and
	// does not say whether they were indexed). Default: none are.
	IndexBeforeInvalid bool
	// DiscardDocs counts events without keeping them or reading their
	// IDs, and checks envelopes structurally only: for benchmarks.
	DiscardDocs bool
	// IDsOnly records each event's event.id (IDs) but not the event
	// (Events stays empty), and checks envelopes structurally only: loss
	// and duplicate checks over millions of events.
	IDsOnly bool
}

// Event is one event received.
type Event struct {
	Endpoint   string // "event" or "raw"
	Channel    string // X-Splunk-Request-Channel, or ""
	Time       string // the envelope's time as sent (e.g. "1740816065.123"); "" when absent
	Host       string
	Source     string
	Sourcetype string
	Index      string
	Fields     string // the envelope's fields object as sent, or ""
	Event      string // the JSON of the envelope's event (event), or the line (raw)
	ID         string // event.id of Event when it is a JSON document that has one
}

// Server is the emulated HEC. Its methods are safe for concurrent use.
type Server struct {
	opt     Options
	indexes map[string]bool
	gzPool  sync.Pool
	bufs    emuhttp.BufferPool // request bodies, raw and decompressed

	web *emuhttp.Server

	// got counts events, IDs, requests, bytes and headers. Where it is
	// updated together with events, mu is held first.
	got tally.Tally

	mu       sync.Mutex
	failSkip int
	failN    int
	fail     fault
	disabled bool
	sick     bool
	ackDelay time.Duration
	neverAck int
	channels map[string]*ackChannel

	events   []Event
	gzipped  int
	ackPolls int
}

type fault struct {
	status, code int
	retryAfter   string
}

// ackChannel holds the acknowledgement state of one channel.
type ackChannel struct {
	next    int64
	pending map[int64]time.Time // ackId → when it turns true; zero: never
}

// New returns a server that is not listening yet: call Start or StartTLS.
func New(opt Options) *Server {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{opt: opt, channels: map[string]*ackChannel{}, ackDelay: opt.AckDelay}
	if len(opt.Indexes) > 0 {
		s.indexes = map[string]bool{}
		for _, ix := range opt.Indexes {
			s.indexes[ix] = true
		}
	}
	s.web = emuhttp.New("splunkhec emulator", s)
	return s
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves plain
// HTTP in the background.
func (s *Server) Start(addr string) error { return s.web.Start(addr) }

// StartTLS is Start over TLS with cfg, which must hold the server
// certificate; set cfg.ClientAuth and cfg.ClientCAs to require client
// certificates.
func (s *Server) StartTLS(addr string, cfg *tls.Config) error { return s.web.StartTLS(addr, cfg) }

// URL is "http://host:port" or "https://host:port" (the sink's url); it
// stays the same across SetDown.
func (s *Server) URL() string { return s.web.URL() }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.web.Addr() }

// Close stops the server for good. It is idempotent.
func (s *Server) Close() { s.web.Close() }

// SetDown(true) closes the listener and every open connection, so that new
// connections are refused and requests in flight fail. SetDown(false)
// listens again on the same address. Acknowledgement state is kept (a
// real restart loses it: use NeverAckNext for that).
func (s *Server) SetDown(down bool) error { return s.web.SetDown(down) }

// FailNext makes the next n requests to the event, raw and ack endpoints
// fail with status and the reply {"text":CodeText(code),"code":code}, with
// a Retry-After header when retryAfter is not empty; a negative code gives
// a plain-text body instead (a proxy's error page). Their events are not
// recorded. It replaces any earlier FailNext; n = 0 cancels it.
func (s *Server) FailNext(n, status, code int, retryAfter string) {
	s.FailAfter(0, n, status, code, retryAfter)
}

// FailAfter is FailNext for the n requests that follow the next skip ones
// (which are served normally): to fail the second request of a split
// batch, FailAfter(1, 1, ...).
func (s *Server) FailAfter(skip, n, status, code int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSkip, s.failN, s.fail = skip, n, fault{status, code, retryAfter}
}

// SetTokenDisabled makes every authenticated request fail with 403 code 1
// "Token disabled" while on.
func (s *Server) SetTokenDisabled(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled = on
}

// SetUnhealthy makes the health endpoint answer 503 code 18 while on.
func (s *Server) SetUnhealthy(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sick = on
}

// SetAckDelay sets the indexing delay of requests received from now on.
func (s *Server) SetAckDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackDelay = d
}

// NeverAckNext makes the ackIds of the next n accepted requests never turn
// true (an indexer that lost them).
func (s *Server) NeverAckNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.neverAck = n
}

// Events returns every event recorded, in order of receipt (empty with
// IDsOnly or DiscardDocs).
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Count is the number of events recorded, duplicates included.
func (s *Server) Count() int { return s.got.Count() }

// IDs maps each event.id recorded to the number of times it was received.
func (s *Server) IDs() map[string]int { return s.got.IDs() }

// Distinct is the number of different event.ids received.
func (s *Server) Distinct() int { return s.got.Distinct() }

// Requests is the number of requests received on any endpoint, whatever
// their outcome.
func (s *Server) Requests() int { return s.got.Requests() }

// BytesOnWire is the number of request body bytes received, as sent
// (compressed if they were).
func (s *Server) BytesOnWire() int64 { return s.got.BytesOnWire() }

// Gzipped is the number of gzip-encoded bodies decoded successfully.
func (s *Server) Gzipped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gzipped
}

// AckPolls is the number of requests to the ack endpoint.
func (s *Server) AckPolls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackPolls
}

// LastHeader returns the headers of the last request received, or nil.
func (s *Server) LastHeader() http.Header { return s.got.LastHeader() }

// Reset forgets every recorded event and zeroes the counters; faults and
// acknowledgement state stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.gzipped, s.ackPolls = nil, 0, 0
	s.got.Reset()
}
