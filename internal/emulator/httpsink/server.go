// Package httpsink is an HTTP receiver that stands in for a webhook or SIEM
// HTTP input in tests, demos and benchmarks of alertrelay's http sink.
//
// A Server accepts POST and PUT on any path, with a body of NDJSON (one JSON
// document per line) or a JSON array of documents, optionally gzip-encoded
// (Content-Encoding: gzip). It can require a bearer token or basic
// credentials (401 without them), serve TLS with any tls.Config (mutual TLS
// included) and answers OPTIONS with 204 once authenticated. It records
// every document it accepts, with its event.id, so that tests can compare
// exact bytes and count duplicates, and it injects faults at run time:
// failing the next requests with a status and Retry-After, refusing
// connections and coming back on the same address, latency, and permanent
// rejection of bodies containing a marker.
//
// A request is all or nothing: either every document of its body is
// recorded and it gets 200, or none is and it gets an error status. As with
// any real receiver, a response lost on the way back (connection closed by
// SetDown after the handler recorded the body) makes the client resend
// documents that were recorded: IDs counts them.
package httpsink

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/emuhttp"
	"github.com/alertrelay/alertrelay/internal/emulator/tally"
	"github.com/alertrelay/alertrelay/internal/event"
)

// DefaultMaxBodyBytes is Options.MaxBodyBytes when zero.
const DefaultMaxBodyBytes = 64 << 20

// Options configures a Server. The zero value accepts everything without
// authentication.
type Options struct {
	// BearerToken, if set, must be presented as "Authorization: Bearer
	// <token>".
	BearerToken string
	// BasicUser and BasicPassword, if BasicUser is set, must be presented
	// as HTTP basic credentials. When both schemes are set, either is
	// accepted.
	BasicUser     string
	BasicPassword string
	// MaxBodyBytes limits a request body, as received and after
	// decompression: a larger one gets 413. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DiscardDocs counts documents without keeping them, validating them
	// or reading their IDs, for benchmarks and long demos: Docs and IDs
	// stay empty.
	DiscardDocs bool
	// IDsOnly records each document's event.id (IDs) but not the document
	// (Docs stays empty): duplicate and loss checks over millions of events
	// without holding them in memory.
	IDsOnly bool
}

// Server is the receiver. Its methods are safe for concurrent use.
type Server struct {
	opt Options

	web *emuhttp.Server

	// got counts documents, IDs, requests, bytes and headers. Where it is
	// updated together with docs, mu is held first.
	got tally.Tally

	mu       sync.Mutex
	failN    int
	failCode int
	failRA   string
	latency  time.Duration
	rejSub   []byte
	rejCode  int
	docs     [][]byte
}

// New returns a server that is not listening yet: call Start or StartTLS.
func New(opt Options) *Server {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{opt: opt}
	s.web = emuhttp.New("httpsink", s)
	return s
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves plain
// HTTP in the background.
func (s *Server) Start(addr string) error { return s.web.Start(addr) }

// StartTLS is Start over TLS with cfg, which must hold the server
// certificate; set cfg.ClientAuth and cfg.ClientCAs to require client
// certificates. HTTP/2 is offered.
func (s *Server) StartTLS(addr string, cfg *tls.Config) error { return s.web.StartTLS(addr, cfg) }

// URL is "http://host:port" or "https://host:port"; it stays the same
// across SetDown.
func (s *Server) URL() string { return s.web.URL() }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.web.Addr() }

// Close stops the server for good. It is idempotent.
func (s *Server) Close() { s.web.Close() }

// SetDown(true) closes the listener and every open connection, so that new
// connections are refused and requests in flight fail. SetDown(false)
// listens again on the same address. It returns an error if the server was
// not started, is closed, or cannot listen again.
func (s *Server) SetDown(down bool) error { return s.web.SetDown(down) }

// FailNext makes the next n requests, whatever they are, fail with status,
// with a Retry-After header when retryAfter is not empty. Their documents
// are not recorded. It replaces any earlier FailNext; n = 0 cancels it.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failRA = n, status, retryAfter
}

// SetLatency delays every response by d (0: none). A request whose
// connection closes meanwhile is dropped unrecorded.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// RejectMatching answers status, recording nothing, to every request whose
// body (decompressed) contains substr. It replaces any earlier rule; an
// empty substr removes it.
func (s *Server) RejectMatching(substr string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejSub, s.rejCode = []byte(substr), status
}

// Docs returns every document recorded, in order of receipt, without line
// terminators. The documents must not be modified.
func (s *Server) Docs() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.docs...)
}

// Count is the number of documents recorded, duplicates included.
func (s *Server) Count() int { return s.got.Count() }

// IDs maps each event.id recorded to the number of times it was received.
// Documents without a string or numeric event.id are counted by Count only.
func (s *Server) IDs() map[string]int { return s.got.IDs() }

// Distinct is the number of different event.ids received (len(IDs()),
// without copying the map).
func (s *Server) Distinct() int { return s.got.Distinct() }

// Requests is the number of requests received, whatever their outcome.
func (s *Server) Requests() int { return s.got.Requests() }

// BytesOnWire is the number of request body bytes received, as sent
// (compressed if they were), over every request.
func (s *Server) BytesOnWire() int64 { return s.got.BytesOnWire() }

// LastHeader returns the headers of the last request received, or nil.
func (s *Server) LastHeader() http.Header { return s.got.LastHeader() }

// Reset forgets every recorded document and zeroes the counters; faults
// stay as set.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = nil
	s.got.Reset()
}

// ServeHTTP handles one request: latency, body, injected failure,
// authentication, method, decoding, rejection rule, then recording.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.got.Request(r.Header)
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()

	if !emuhttp.Delay(r.Context(), latency) {
		return // the connection closed meanwhile
	}

	raw, err := emuhttp.ReadAll(r.Body, r.ContentLength, s.opt.MaxBodyBytes+1)
	s.got.AddBytes(int64(len(raw)))
	s.mu.Lock()
	fail := s.failN > 0
	code, retryAfter := s.failCode, s.failRA
	if fail {
		s.failN--
	}
	s.mu.Unlock()
	if err != nil {
		return // the connection broke: nothing to answer
	}
	if fail {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, "injected failure", code)
		return
	}
	if !s.authorized(r) {
		if s.opt.BearerToken != "" {
			w.Header().Add("WWW-Authenticate", `Bearer realm="httpsink"`)
		}
		if s.opt.BasicUser != "" {
			w.Header().Add("WWW-Authenticate", `Basic realm="httpsink"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut:
	case http.MethodOptions:
		w.Header().Set("Allow", "OPTIONS, POST, PUT")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "OPTIONS, POST, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if int64(len(raw)) > s.opt.MaxBodyBytes {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	data := raw
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			data, err = emuhttp.ReadAll(zr, 8*int64(len(raw)), s.opt.MaxBodyBytes+1)
		}
		if err != nil {
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if int64(len(data)) > s.opt.MaxBodyBytes {
			http.Error(w, "decompressed body too large", http.StatusRequestEntityTooLarge)
			return
		}
	default:
		http.Error(w, "unsupported Content-Encoding "+strconv.Quote(enc), http.StatusUnsupportedMediaType)
		return
	}

	s.mu.Lock()
	rejSub, rejCode := s.rejSub, s.rejCode
	s.mu.Unlock()
	if len(rejSub) > 0 && bytes.Contains(data, rejSub) {
		http.Error(w, "rejected: body matches "+strconv.Quote(string(rejSub)), rejCode)
		return
	}

	docs, n, err := s.split(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if n == 0 {
		http.Error(w, "no documents in body", http.StatusBadRequest)
		return
	}
	var ids []string
	if !s.opt.DiscardDocs {
		ids = make([]string, len(docs))
		for i, d := range docs {
			ids[i] = eventID(d)
		}
	}

	s.mu.Lock()
	if !s.opt.IDsOnly {
		s.docs = append(s.docs, docs...)
	}
	s.got.Add(n, ids...)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"accepted":%d}`+"\n", n)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opt.BearerToken == "" && s.opt.BasicUser == "" {
		return true
	}
	if s.opt.BearerToken != "" {
		if equal(r.Header.Get("Authorization"), "Bearer "+s.opt.BearerToken) {
			return true
		}
	}
	if s.opt.BasicUser != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, s.opt.BasicUser) && equal(p, s.opt.BasicPassword) {
			return true
		}
	}
	return false
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// split returns the documents of an NDJSON or JSON-array body and their
// number. With DiscardDocs it only counts (array bodies are still
// decoded).
func (s *Server) split(data []byte) ([][]byte, int, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var arr []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if err := dec.Decode(&arr); err != nil {
			return nil, 0, fmt.Errorf("invalid JSON array: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, 0, errors.New("invalid JSON array: data after the closing bracket")
		}
		if s.opt.DiscardDocs {
			return nil, len(arr), nil
		}
		docs := make([][]byte, len(arr))
		for i, d := range arr {
			docs[i] = d
		}
		return docs, len(docs), nil
	}
	var docs [][]byte
	n := 0
	for line := 1; len(data) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		n++
		if s.opt.DiscardDocs {
			continue
		}
		if !json.Valid(l) {
			return nil, 0, fmt.Errorf("line %d is not valid JSON", line)
		}
		docs = append(docs, l)
	}
	return docs, n, nil
}

// eventID returns the document's event.id (a string, or a number's text),
// or "". Strings, our documents' case, take the fast path.
func eventID(doc []byte) string {
	if m, _ := event.ReadRouting(doc); m.ID != nil {
		return string(event.Unquote(nil, m.ID))
	}
	var probe struct {
		Event struct {
			ID json.RawMessage `json:"id"`
		} `json:"event"`
	}
	if json.Unmarshal(doc, &probe) != nil {
		return ""
	}
	switch id := probe.Event.ID; {
	case len(id) == 0 || id[0] < '-' || id[0] > '9': // absent, null, object, array, bool
		return ""
	default:
		return string(id)
	}
}
