package cynet

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/emuhttp"
	"github.com/alertrelay/alertrelay/internal/testcert"
)

// Defaults of Options.
const (
	DefaultUser        = "AK-0000-EXAMPLE"
	DefaultPassword    = "SK-example-secret"
	DefaultClientID    = "1042"
	DefaultTokenTTL    = 3600 * time.Second
	DefaultMaxPageSize = 1000
	// DefaultLimit is the page size when a request has no Limit (spec A4:
	// the only value every client uses; the server default is INFERRED).
	DefaultLimit = 100
)

// API paths served (spec A3). TokenPathAlt is the underscore spelling found
// in one integration (spec A2, C16).
const (
	TokenPath             = "/api/account/token"
	TokenPathAlt          = "/api/account_token"
	AlertsPath            = "/api/alerts"
	BulkPath              = "/api/alerts/bulk"
	BulkByDateChangedPath = "/api/alerts/bulkByDateChanged"
	CountPath             = "/api/alerts/count"
)

// Internal limits and generator shape.
const (
	maxTokenBody           = 64 << 10 // token request body limit
	outBufKeep             = 8 << 20  // largest page buffer kept for reuse
	tokenPruneThreshold    = 1024     // prune expired tokens beyond this many
	generatorTick          = 10 * time.Millisecond
	generatorUpdateFrac    = 0.01 // updates per alert added
	generatorBurstFactor   = 10
	generatorBurstPeriod   = 10 * time.Second
	generatorBurstDuration = time.Second
)

// Options configures a Server. The zero value is usable: every field has a
// default.
type Options struct {
	// Users maps user_name to password (an API user's access key and secret
	// key, spec A2). Default: DefaultUser/DefaultPassword.
	Users map[string]string
	// ClientIDs lists the client_id header values accepted; any other
	// value gets 403. Default: [DefaultClientID].
	ClientIDs []string
	// TokenTTL is the lifetime of an access token (spec A2: 60 min).
	// Default DefaultTokenTTL.
	TokenTTL time.Duration
	// MaxPageSize caps Limit (and the size of a GET /api/alerts answer).
	// The real maximum is undocumented (spec A4, A11). Default
	// DefaultMaxPageSize.
	MaxPageSize int
	// ExpiresIn adds "expires_in" (seconds) to the token response. Off by
	// default: the spec infers the real server does not send it (A2).
	ExpiresIn bool
	// Now is the clock for token expiry, SyncTimeUtc and the timestamps of
	// new and updated alerts. Default time.Now.
	Now func() time.Time
	// Seed makes the alert content deterministic: the same seed and
	// ClientDbId always render the same alert (timestamps and Status
	// aside).
	Seed int64
}

// Server is the Cynet 360 API emulator. Its methods are safe for concurrent
// use.
type Server struct {
	opt     Options
	cat     *catalog
	st      store
	clients map[string]bool
	pool    sync.Pool // *renderer

	web *emuhttp.Server

	mu       sync.Mutex
	certPEM  []byte
	closed   bool
	cancels  []context.CancelFunc
	gens     sync.WaitGroup
	tokens   map[string]time.Time // token -> expiry
	rng      prng                 // picks alerts for the generator's updates
	failN    int
	failCode int
	failRA   string
	tokN     int
	tokCode  int
	tokRA    string
	dropN    int
	latency  time.Duration
	dupPages bool
	bare     bool
	nullEnt  bool
	noCont   bool
	garbage  bool

	requests      int
	tokenRequests int
	pageRequests  int
	lastHeaders   http.Header
}

// New returns a server with an empty alert store, not listening yet: call
// Start or StartTLS.
func New(opt Options) *Server {
	if len(opt.Users) == 0 {
		opt.Users = map[string]string{DefaultUser: DefaultPassword}
	}
	if len(opt.ClientIDs) == 0 {
		opt.ClientIDs = []string{DefaultClientID}
	}
	if opt.TokenTTL <= 0 {
		opt.TokenTTL = DefaultTokenTTL
	}
	if opt.MaxPageSize <= 0 {
		opt.MaxPageSize = DefaultMaxPageSize
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{
		opt:     opt,
		cat:     newCatalog(opt.Seed),
		clients: map[string]bool{},
		tokens:  map[string]time.Time{},
		rng:     newPRNG(uint64(opt.Seed), -2),
	}
	for _, c := range opt.ClientIDs {
		s.clients[c] = true
	}
	s.pool.New = func() any { return &renderer{c: s.cat} }
	s.web = emuhttp.New("cynet", s)
	return s
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves plain
// HTTP in the background.
func (s *Server) Start(addr string) error { return s.start(addr, false) }

// StartTLS is Start over HTTPS with a fresh ECDSA P-256 certificate for
// 127.0.0.1, ::1 and localhost, issued by a throw-away CA (testcert, in
// memory); CertPEM returns the CA certificate so that clients can trust it
// (Client does). HTTP/1.1 and HTTP/2 are offered.
func (s *Server) StartTLS(addr string) error { return s.start(addr, true) }

func (s *Server) start(addr string, useTLS bool) error {
	// s.mu is held throughout, so that Close cannot slip in between the
	// check and the start, nor CertPEM see the server up without its CA.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("cynet: server closed")
	}
	if !useTLS {
		return s.web.Start(addr)
	}
	// Valid from an hour ago for a day, by the wall clock (not
	// Options.Now: TLS verification uses the real time).
	pki, err := testcert.New("")
	if err != nil {
		return fmt.Errorf("cynet: certificate: %w", err)
	}
	cfg := pki.ServerTLS(false)
	cfg.NextProtos = []string{"h2", "http/1.1"}
	if err := s.web.StartTLS(addr, cfg); err != nil {
		return err
	}
	s.certPEM = pki.CAPEM
	return nil
}

// URL is the base URL, "http://host:port" or "https://host:port", without a
// trailing slash.
func (s *Server) URL() string { return s.web.URL() }

// Addr is the host:port the server listens on ("" before Start).
func (s *Server) Addr() string { return s.web.Addr() }

// CertPEM returns the PEM-encoded CA certificate that issued StartTLS's
// server certificate (a client's trust root, tls.ca_file), or nil.
func (s *Server) CertPEM() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.certPEM...)
}

// Client returns an HTTP client with a 30 s timeout that trusts the
// server's CA (after StartTLS).
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pem := s.CertPEM(); pem != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr.ForceAttemptHTTP2 = true
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Close stops the generators, closes the listener and every connection, and
// waits for the server to stop. It is idempotent and returns nil (it is an
// io.Closer). The alert store stays readable.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	cancels := s.cancels
	s.cancels = nil
	s.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	s.gens.Wait()
	s.web.Close()
	return nil
}

// ---- fault injection ----

// FailNext makes the next n requests to the alert endpoints fail with
// status (429, 500, 503, ...) and a {"message"} body, with a Retry-After
// header when retryAfter is not empty (seconds such as "30", or an
// HTTP-date). Token requests are not affected (see FailTokenNext). It
// replaces any earlier FailNext; n = 0 cancels it.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failRA = n, status, retryAfter
}

// FailTokenNext is FailNext for the token endpoints.
func (s *Server) FailTokenNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokN, s.tokCode, s.tokRA = n, status, retryAfter
}

// DropNext makes the next n requests to the alert endpoints end with the
// connection closed and no response (after any latency). Note: Go's
// http.Transport silently retries an idempotent request once when a reused
// keep-alive connection closes before any response byte, so a Go client on
// a warm connection may not see a single drop; use n >= 2, or a fresh
// connection, to make it visible.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = n
}

// SetLatency delays every response, token requests included, by d (0:
// none). A request whose client goes away meanwhile is abandoned.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// DuplicateAcrossPages, when on, makes the page at Offset o with Limit l of
// the bulk endpoints start ceil(o/l) rows early, as if one alert had been
// inserted ahead of the cursor between consecutive page requests: for a
// client advancing Offset by Limit (or by rows received), the first row of
// every page after the first repeats the last row of the previous page, and
// nothing is skipped (spec A8 step 4, C15).
func (s *Server) DuplicateAcrossPages(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dupPages = on
}

// ExpireTokens invalidates every token issued so far: the next alert
// request with one of them gets 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetBareArray makes the list endpoints answer a bare JSON array of alerts
// instead of the envelope, as one low-weight client expects (spec A3
// [VIC]).
func (s *Server) SetBareArray(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bare = on
}

// SetNullEntities makes the list endpoints answer "Entities":null (spec A5:
// clients must treat it as empty).
func (s *Server) SetNullEntities(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nullEnt = on
}

// SetNoContent makes the list endpoints answer 204 with an empty body
// (spec A9).
func (s *Server) SetNoContent(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noCont = on
}

// SetGarbage makes the list endpoints answer 200 with an HTML body, as a
// misconfigured proxy or captive portal would.
func (s *Server) SetGarbage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = on
}

// ---- counters ----

// Requests is the number of requests received, whatever path or outcome.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TokenRequests is the number of requests to the token endpoints.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// PageRequests is the number of requests to the list endpoints
// (/api/alerts, /api/alerts/bulk, /api/alerts/bulkByDateChanged), whatever
// their outcome.
func (s *Server) PageRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pageRequests
}

// LastHeaders returns a copy of the headers of the last request to an alert
// endpoint (list or count), or nil.
func (s *Server) LastHeaders() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeaders.Clone()
}

// ---- HTTP ----

// ServeHTTP routes a request. Paths and query parameter names are matched
// exactly (case-sensitive), header names case-insensitively. A Server can
// also be mounted on another listener (httptest.NewServer(s)) without
// Start.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	latency := s.latency
	s.mu.Unlock()
	if !emuhttp.Delay(r.Context(), latency) {
		return // the client went away meanwhile
	}
	switch p := r.URL.Path; p {
	case TokenPath, TokenPathAlt:
		s.serveToken(w, r)
	case AlertsPath, BulkPath, BulkByDateChangedPath:
		s.serveList(w, r, p)
	case CountPath:
		s.serveCount(w, r)
	default:
		writeMessage(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '"+r.URL.Path+"'.")
	}
}

// writeMessage writes the error body {"message": msg} (spec A9, INFERRED).
func writeMessage(w http.ResponseWriter, code int, msg string) {
	b := append([]byte(`{"message":`), appendStr(nil, msg)...)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeText writes a plain-text body (auth failures, spec A9 INFERRED).
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeMessage(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '"+r.Method+"'.")
}

// fail writes an injected failure.
func fail(w http.ResponseWriter, code int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeMessage(w, code, "injected failure: "+http.StatusText(code))
}

// drop closes the connection without answering: hijacked on HTTP/1.x, the
// stream reset on HTTP/2.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// header returns the first value of the named header, matching the name
// case-insensitively (Go canonicalises access_token to Access_token;
// proxies may lower-case it).
func header(h http.Header, name string) string {
	if v := h[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}

// tokenRequest is the body of POST /api/account/token (spec A2).
type tokenRequest struct {
	UserName *string `json:"user_name"`
	Password *string `json:"password"`
}

// serveToken handles POST /api/account/token and /api/account_token.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	failing := s.tokN > 0 && r.Method == http.MethodPost
	code, ra := s.tokCode, s.tokRA
	if failing {
		s.tokN--
	}
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	if failing {
		fail(w, code, ra)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	if err != nil {
		return
	}
	var req tokenRequest
	if len(body) > maxTokenBody {
		writeMessage(w, http.StatusBadRequest, "The request is invalid: body too large.")
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeMessage(w, http.StatusBadRequest, "The request is invalid: "+err.Error())
		return
	}
	if req.UserName == nil || req.Password == nil {
		writeText(w, http.StatusUnauthorized, "Invalid user name or password")
		return
	}
	want, ok := s.opt.Users[*req.UserName]
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(*req.Password)) != 1 {
		writeText(w, http.StatusUnauthorized, "Invalid user name or password")
		return
	}
	now := s.opt.Now()
	tok := newToken(*req.UserName, now, s.opt.TokenTTL)
	s.mu.Lock()
	if len(s.tokens) >= tokenPruneThreshold {
		for t, exp := range s.tokens {
			if !now.Before(exp) {
				delete(s.tokens, t)
			}
		}
	}
	s.tokens[tok] = now.Add(s.opt.TokenTTL)
	s.mu.Unlock()
	b := append([]byte(`{"access_token":`), appendStr(nil, tok)...)
	if s.opt.ExpiresIn {
		b = append(b, `,"expires_in":`...)
		b = strconv.AppendInt(b, int64(s.opt.TokenTTL/time.Second), 10)
	}
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// newToken returns an opaque JWT-shaped token: a fixed header, a claims
// segment with a random jti, and a random signature. Clients must not parse
// it (spec A2).
func newToken(user string, now time.Time, ttl time.Duration) string {
	var rnd [48]byte
	_, _ = rand.Read(rnd[:])
	claims, _ := json.Marshal(map[string]any{
		"sub": user, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": hex.EncodeToString(rnd[:16]),
	})
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString(claims) + "." + enc.EncodeToString(rnd[16:])
}

// authorize checks the access_token and client_id headers (spec A2, A11):
// it returns 0, or the status and text to answer.
func (s *Server) authorize(h http.Header) (int, string) {
	tok := header(h, "access_token")
	if tok == "" {
		return http.StatusUnauthorized, "Authorization has been denied for this request: access_token header missing"
	}
	now := s.opt.Now()
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	if ok && !now.Before(exp) {
		delete(s.tokens, tok)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return http.StatusUnauthorized, "Authorization has been denied for this request: invalid or expired token"
	}
	if cid := header(h, "client_id"); !s.clients[cid] {
		return http.StatusForbidden, "Access denied for client_id '" + cid + "'"
	}
	return 0, ""
}

// listFaults is the snapshot of the list-endpoint faults for one request.
type listFaults struct {
	drop, fail                 bool
	code                       int
	retryAfter                 string
	dup, bare, null, noContent bool
	garbage                    bool
}

// alertRequest counts an alert-endpoint request, records its headers and,
// for a GET, consumes one pending drop or failure.
func (s *Server) alertRequest(r *http.Request, list bool) listFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	if list {
		s.pageRequests++
	}
	s.lastHeaders = r.Header.Clone()
	f := listFaults{code: s.failCode, retryAfter: s.failRA, dup: s.dupPages, bare: s.bare,
		null: s.nullEnt, noContent: s.noCont, garbage: s.garbage}
	switch {
	case r.Method != http.MethodGet:
	case s.dropN > 0:
		s.dropN--
		f.drop = true
	case s.failN > 0:
		s.failN--
		f.fail = true
	}
	return f
}

// admit runs what every alert endpoint does first: count the request,
// check the method, apply a pending drop or failure, check the headers. It
// reports false when it has answered the request itself.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, list bool) (listFaults, bool) {
	f := s.alertRequest(r, list)
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return f, false
	}
	if f.drop {
		drop(w)
		return f, false
	}
	if f.fail {
		fail(w, f.code, f.retryAfter)
		return f, false
	}
	if code, msg := s.authorize(r.Header); code != 0 {
		writeText(w, code, msg)
		return f, false
	}
	return f, true
}

// serveList handles the three list endpoints.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, path string) {
	f, ok := s.admit(w, r, true)
	if !ok {
		return
	}
	q := r.URL.Query()
	timeParam, l := "LastSeen", byLastSeen
	if path == BulkByDateChangedPath {
		timeParam, l = "DateChanged", byDateChanged
	}
	since, err := parseTimeParam(q, timeParam)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, offset := s.opt.MaxPageSize, 0
	if path != AlertsPath {
		if limit, err = intParam(q, "Limit", DefaultLimit, 1); err != nil {
			writeMessage(w, http.StatusBadRequest, err.Error())
			return
		}
		limit = min(limit, s.opt.MaxPageSize)
		if offset, err = intParam(q, "Offset", 0, 0); err != nil {
			writeMessage(w, http.StatusBadRequest, err.Error())
			return
		}
		if f.dup && offset > 0 {
			// Page k (Offset k*Limit) starts k rows early: one alert
			// "inserted" ahead of the cursor between consecutive pages.
			offset -= (offset + limit - 1) / limit
		}
	}
	switch {
	case f.noContent:
		w.WriteHeader(http.StatusNoContent)
		return
	case f.garbage:
		const page = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Service temporarily unavailable</h1><p>Please try again later.</p></body></html>"
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		writeBody(w, []byte(page))
		return
	}

	rd := s.pool.Get().(*renderer)
	defer s.putRenderer(rd)
	var syncNS int64
	if f.null {
		syncNS = s.opt.Now().UnixNano()
	} else {
		rd.rows = s.st.page(l, since, offset, limit, rd.rows[:0], func() { syncNS = s.opt.Now().UnixNano() })
	}
	b := rd.out[:0]
	if !f.bare {
		b = append(b, `{"SyncTimeUtc":`...)
		b = appendTS(b, syncNS, tsMilliZ)
		b = append(b, `,"Entities":`...)
	}
	if f.null && !f.bare {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, row := range rd.rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = rd.appendAlert(b, row.id, row.rec)
		}
		b = append(b, ']')
	}
	if !f.bare {
		b = append(b, '}')
	}
	rd.out = b
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeBody(w, b)
}

// serveCount handles GET /api/alerts/count: a bare JSON integer, the number
// of alerts with DateChanged >= the DateChanged parameter (all alerts
// without it), or LastSeen >= LastSeen when that is given instead (spec A3
// [MOCK]; the LastSeen variant is INFERRED).
func (s *Server) serveCount(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.admit(w, r, false); !ok {
		return
	}
	q := r.URL.Query()
	param, l := "DateChanged", byDateChanged
	if !q.Has(param) && q.Has("LastSeen") {
		param, l = "LastSeen", byLastSeen
	}
	since := int64(minTime)
	if q.Has(param) {
		var err error
		if since, err = parseTimeParam(q, param); err != nil {
			writeMessage(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeBody(w, strconv.AppendInt(nil, int64(s.st.count(l, since)), 10))
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *Server) putRenderer(rd *renderer) {
	if cap(rd.out) > outBufKeep {
		rd.out = nil
	}
	if cap(rd.rows) > 4*DefaultMaxPageSize {
		rd.rows = nil
	}
	s.pool.Put(rd)
}

// intParam parses the optional integer query parameter name (default def
// when absent); values below lowest are rejected.
func intParam(q map[string][]string, name string, def, lowest int) (int, error) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < lowest {
		return 0, paramError("The value '" + v[0] + "' is not valid for " + name + ".")
	}
	return n, nil
}
