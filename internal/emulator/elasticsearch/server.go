// Package elasticsearch is an in-process stand-in for an Elasticsearch or
// OpenSearch cluster's document API, for tests, demos and benchmarks of
// alertrelay's elasticsearch sink.
//
// Protocol. The server implements what a log shipper uses:
//
//   - GET / (and HEAD /): cluster information, shaped as Elasticsearch 8
//     or OpenSearch 2 answer it (version.number, version.distribution for
//     OpenSearch, tagline), with the X-Elastic-Product header for
//     Elasticsearch.
//   - POST or PUT /_bulk and /<target>/_bulk: an NDJSON body of
//     action/metadata lines (create, index, delete; update is answered
//     per item with 400) each followed, except delete, by a source line;
//     Content-Type application/json or application/x-ndjson (anything else
//     gets 406); Content-Encoding gzip accepted. The reply is 200 with
//     {"took":n,"errors":bool,"items":[{"<op>":{...,"status":n}}]} in
//     request order, each failed item with an "error" object {type,
//     reason}. The filter_path query parameter is honoured for took,
//     errors, items, items.* and items.*.<field>; like Elasticsearch, an
//     item whose filtered object is empty is dropped from the array.
//   - Documents are stored by (_index, _id): create of an existing _id is
//     a 409 version_conflict_engine_exception item; index overwrites
//     (200, result updated). A target whose name starts with one of
//     DataStreamPrefixes is a data stream: only create is allowed there
//     (index gets 400 illegal_argument_exception) and a document without
//     @timestamp gets 400 document_parsing_exception. A source that is not
//     a JSON object gets 400 mapper_parsing_exception.
//   - Whole-request errors use Elasticsearch's error body
//     {"error":{"root_cause":[...],"type":...,"reason":...},"status":n}:
//     401 security_exception (with WWW-Authenticate) for missing or wrong
//     credentials, 400 for a malformed body (illegal_argument_exception,
//     action_request_validation_exception), 413 with an empty body over
//     MaxBodyBytes (Elasticsearch's http.max_content_length, checked after
//     decompression).
//
// Authentication: an API key ("Authorization: ApiKey base64(id:key)") and
// basic credentials; when both are configured, either is accepted.
//
// Faults, injected at run time: FailNext (whole requests, with status and
// Retry-After), FailNextItems (the next n items get a status, 429
// es_rejected_execution_exception by default shape), RejectMatching
// (items whose source contains a substring get 400
// mapper_parsing_exception), SetLatency, and SetDown (refuse connections,
// then listen again on the same address).
//
// Speed: a request is parsed without encoding/json (a hand scanner for the
// action lines, event.ReadMeta for each source) outside the lock; only the
// store update holds it. DiscardDocs skips storage and ReadMeta, IDsOnly
// keeps the keys without the sources.
package elasticsearch

import (
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/emuhttp"
	"github.com/alertrelay/alertrelay/internal/emulator/tally"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 100 << 20 // Elasticsearch's http.max_content_length
	DistElasticsearch   = "elasticsearch"
	DistOpenSearch      = "opensearch"
	DefaultESVersion    = "8.17.0"
	DefaultOSVersion    = "2.18.0"
)

// DefaultDataStreamPrefixes are the name prefixes of the built-in data
// stream templates of Elasticsearch (logs-*-*, metrics-*-*, traces-*-*).
var DefaultDataStreamPrefixes = []string{"logs-", "metrics-", "traces-"}

// Options configures a Server. The zero value is an Elasticsearch 8
// without security.
type Options struct {
	// APIKeyID and APIKey, if APIKey is set, are accepted as
	// "Authorization: ApiKey base64(APIKeyID:APIKey)".
	APIKeyID string
	APIKey   string
	// Username and Password, if Username is set, are accepted as HTTP
	// basic credentials.
	Username string
	Password string
	// Distribution is DistElasticsearch (default) or DistOpenSearch: what
	// GET / reports. Version defaults to DefaultESVersion or
	// DefaultOSVersion.
	Distribution string
	Version      string
	// MaxBodyBytes: a bulk body larger than this (after decompression)
	// gets 413. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DataStreamPrefixes name the targets that are data streams. Default
	// DefaultDataStreamPrefixes; an empty non-nil slice means none.
	DataStreamPrefixes []string
	// DiscardDocs accepts every create/index item without storing,
	// validating or de-duplicating it, for benchmarks: only Count, Items,
	// Requests and BytesOnWire move.
	DiscardDocs bool
	// IDsOnly stores the (_index, _id) keys and event.ids, not the
	// sources: de-duplication and IDs work over millions of events; Docs
	// returns documents without Source.
	IDsOnly bool
}

// Doc is a stored document.
type Doc struct {
	Index   string // the target named in the request (data stream or index)
	ID      string // _id
	EventID string // the source's event.id, "" if none
	Version int    // 1, +1 per overwrite by an index action
	Source  []byte // nil with IDsOnly
}

type docKey struct{ index, id string }

// Server is the emulator. Its methods are safe for concurrent use.
type Server struct {
	opt       Options
	dsSuffix  string // "-2025.03.01-000001": backing index of a data stream
	authBasic string // expected Authorization values; "" if not configured
	authKey   string

	web  *emuhttp.Server
	bufs emuhttp.BufferPool // request bodies, raw and decompressed

	// got counts requests, bytes and headers only: Count, IDs and Distinct
	// describe the store (documents stored, de-duplicated by _id), not
	// what was received, so got.Add is never called. Where it is updated
	// together with fields under mu, mu is held first.
	got tally.Tally

	mu              sync.Mutex
	failN, failCode int
	failRA          string
	itemFailN       int
	itemFailCode    int
	rejSub          []byte
	latency         time.Duration
	query           url.Values
	items           int // action items received
	accepted        int // create/index items that succeeded
	conflicts       int // create items refused with 409
	store           map[docKey]*Doc
	order           []docKey // insertion order, for Docs; nil with IDsOnly
	seq             int64
	autoID          int64
}

// New returns a server that is not listening yet: call Start or StartTLS.
func New(opt Options) *Server {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opt.Distribution == "" {
		opt.Distribution = DistElasticsearch
	}
	if opt.Version == "" {
		opt.Version = DefaultESVersion
		if opt.Distribution == DistOpenSearch {
			opt.Version = DefaultOSVersion
		}
	}
	if opt.DataStreamPrefixes == nil {
		opt.DataStreamPrefixes = DefaultDataStreamPrefixes
	}
	s := &Server{opt: opt, store: map[docKey]*Doc{}}
	s.dsSuffix = "-" + time.Now().UTC().Format("2006.01.02") + "-000001"
	if opt.Username != "" {
		s.authBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(opt.Username+":"+opt.Password))
	}
	if opt.APIKey != "" {
		s.authKey = "ApiKey " + base64.StdEncoding.EncodeToString([]byte(opt.APIKeyID+":"+opt.APIKey))
	}
	s.web = emuhttp.New("elasticsearch emulator", s)
	return s
}

// EncodedAPIKey is the value a client puts after "ApiKey " (what
// Elasticsearch's create API key call returns as "encoded").
func (o Options) EncodedAPIKey() string {
	return base64.StdEncoding.EncodeToString([]byte(o.APIKeyID + ":" + o.APIKey))
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves plain
// HTTP in the background.
func (s *Server) Start(addr string) error { return s.web.Start(addr) }

// StartTLS is Start over TLS with cfg, which must hold the server
// certificate; set cfg.ClientAuth and cfg.ClientCAs to require client
// certificates.
func (s *Server) StartTLS(addr string, cfg *tls.Config) error { return s.web.StartTLS(addr, cfg) }

// URL is "http://host:port" or "https://host:port"; it stays the same
// across SetDown.
func (s *Server) URL() string { return s.web.URL() }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.web.Addr() }

// Close stops the server for good. It is idempotent.
func (s *Server) Close() { s.web.Close() }

// SetDown(true) closes the listener and every open connection; SetDown(false)
// listens again on the same address. Stored documents survive.
func (s *Server) SetDown(down bool) error { return s.web.SetDown(down) }

// FailNext makes the next n requests, whatever they are, fail with status
// and an Elasticsearch error body (429 es_rejected_execution_exception,
// 503 unavailable_shards_exception...), with a Retry-After header when
// retryAfter is not empty. Nothing is stored. n = 0 cancels.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failRA = n, status, retryAfter
}

// FailNextItems makes the next n create/index items, across requests, fail
// with status (429: es_rejected_execution_exception; see errorType). The
// other items of their requests proceed. n = 0 cancels.
func (s *Server) FailNextItems(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.itemFailN, s.itemFailCode = n, status
}

// RejectMatching answers 400 mapper_parsing_exception to every create or
// index item whose source contains substr; "" removes the rule.
func (s *Server) RejectMatching(substr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejSub = []byte(substr)
}

// SetLatency delays every response by d (0: none).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Docs returns the stored documents in the order they were first stored
// (empty with DiscardDocs; without Source with IDsOnly, in map order).
func (s *Server) Docs() []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Doc, 0, len(s.store))
	if s.order != nil {
		for _, k := range s.order {
			if d, ok := s.store[k]; ok {
				out = append(out, *d)
			}
		}
		return out
	}
	for _, d := range s.store {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Index != out[j].Index {
			return out[i].Index < out[j].Index
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Doc returns the document stored under (index, id).
func (s *Server) Doc(index, id string) (Doc, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.store[docKey{index, id}]
	if !ok {
		return Doc{}, false
	}
	return *d, true
}

// Count is the number of documents stored (with DiscardDocs: the number of
// create/index items accepted).
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opt.DiscardDocs {
		return s.accepted
	}
	return len(s.store)
}

// IDs maps each event.id to the number of stored documents that carry it:
// 1 everywhere means every event is stored exactly once, whatever was
// re-sent. Documents without a string event.id are not counted.
func (s *Server) IDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.store))
	for _, d := range s.store {
		if d.EventID != "" {
			m[d.EventID]++
		}
	}
	return m
}

// Distinct is the number of different event.ids stored.
func (s *Server) Distinct() int { return len(s.IDs()) }

// Items is the number of action items received, whatever their outcome.
func (s *Server) Items() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.items
}

// Conflicts is the number of create items refused with 409 because the
// _id was already stored (re-sends).
func (s *Server) Conflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

// Requests is the number of requests received, whatever their outcome.
func (s *Server) Requests() int { return s.got.Requests() }

// BytesOnWire is the number of request body bytes received as sent
// (compressed if they were).
func (s *Server) BytesOnWire() int64 { return s.got.BytesOnWire() }

// LastHeader returns the headers of the last request, or nil.
func (s *Server) LastHeader() http.Header { return s.got.LastHeader() }

// LastQuery returns the query parameters of the last request, or nil.
func (s *Server) LastQuery() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := url.Values{}
	for k, v := range s.query {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Reset forgets every stored document and zeroes the counters; faults
// stay as set.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store, s.order = map[docKey]*Doc{}, nil
	s.items, s.accepted, s.conflicts = 0, 0, 0
	s.query = nil
	s.got.Reset()
}

// authorized reports whether r carries configured credentials (always true
// when none are configured).
func (s *Server) authorized(r *http.Request) bool {
	if s.authBasic == "" && s.authKey == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	return (s.authBasic != "" && equal(got, s.authBasic)) || (s.authKey != "" && equal(got, s.authKey))
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
