// Package sentinel is a stand-in for Microsoft Sentinel's intake in tests,
// demos and benchmarks of alertrelay's sentinel sink: one HTTP(S) server
// with both
//
//   - a Microsoft Entra ID token endpoint, POST /{tenant}/oauth2/v2.0/token,
//     for the OAuth 2.0 client credentials grant (form client_id,
//     client_secret, scope, grant_type=client_credentials), which answers
//     {"token_type":"Bearer","expires_in":N,"access_token":"..."} or the
//     Entra error shape {"error","error_description","error_codes",...}
//     (400 invalid_request AADSTS90002 for an unknown tenant, 400
//     unauthorized_client AADSTS700016 for an unknown client, 401
//     invalid_client AADSTS7000215 for a wrong secret, 400 invalid_scope
//     AADSTS70011, 400 unsupported_grant_type AADSTS70003); and
//   - an Azure Monitor Logs Ingestion endpoint, POST
//     /dataCollectionRules/{dcr}/streams/{stream}?api-version=..., which
//     checks the bearer token (issued here and not expired), api-version,
//     DCR immutable ID and stream, Content-Type, Content-Encoding (gzip)
//     and the 1 MB limit, parses the JSON array of rows, records them and
//     answers 204 No Content; errors have the service's shape
//     {"error":{"code":"...","message":"..."}}.
//
// Replies, as the service documents or is observed to give them (see
// docs/sinks/sentinel.md): 401 for a missing, unknown or expired token;
// 400 MissingApiVersionParameter / UnsupportedApiVersion; 400
// InvalidDcrImmutableId for an ID that is not dcr-<32 hex>, 404 NotFound
// for another DCR; 400 InvalidStream; 403 OperationFailed (SetForbidden);
// 413 ContentLengthLimitExceeded ("Maximum allowed content length: 1048576
// bytes (1 MB).") when the body is larger than the limit as sent or once
// decompressed; 400 InvalidContentType, UnsupportedContentEncoding,
// InvalidContentEncoding (bad gzip), InvalidPayload (not a JSON array of
// objects); 500 for an empty body. The exact codes of the 401 and
// content-type replies are the emulator's choice: the service does not
// document them.
//
// A request is all or nothing: either every row of its body is recorded
// and it gets 204, or none is. Rows are split and their EventId read by a
// structural scan, not a full decode, so that the emulator keeps up with
// hundreds of thousands of rows per second; IDsOnly and DiscardRows keep
// memory flat over millions of events.
package sentinel

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/emuhttp"
	"github.com/alertrelay/alertrelay/internal/emulator/tally"
)

// Defaults of Options.
const (
	DefaultTenantID       = "72f988bf-0000-4000-8000-000000000001"
	DefaultClientID       = "3f2a1c9e-0000-4000-8000-000000000002"
	DefaultClientSecret   = "emulator~client.secret-value"
	DefaultScope          = "https://monitor.azure.com//.default"
	DefaultDCRImmutableID = "dcr-00112233445566778899aabbccddeeff"
	DefaultStream         = "Custom-AlertRelay_CL"
	DefaultAPIVersion     = "2023-01-01"
	DefaultTokenLifetime  = time.Hour
	// DefaultMaxBodyBytes is the service's limit: 1 MB (1048576 bytes)
	// per call, compressed and uncompressed.
	DefaultMaxBodyBytes = 1 << 20
)

// Options configures a Server. Zero fields take the defaults above.
type Options struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	Scope        string

	DCRImmutableID string
	Stream         string
	APIVersion     string

	// TokenLifetime is the expires_in of issued tokens; tokens are refused
	// once it has passed.
	TokenLifetime time.Duration
	// MaxBodyBytes limits a request body as sent and once decompressed
	// (413 above it).
	MaxBodyBytes int

	// IDsOnly records each row's EventId (IDs) but not the row (Rows stays
	// empty): loss and duplicate checks over millions of events.
	IDsOnly bool
	// DiscardRows counts rows without keeping them or their IDs: Rows and
	// IDs stay empty. Bodies are still checked to be arrays of objects.
	DiscardRows bool
}

func (o *Options) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.TenantID, DefaultTenantID)
	def(&o.ClientID, DefaultClientID)
	def(&o.ClientSecret, DefaultClientSecret)
	def(&o.Scope, DefaultScope)
	def(&o.DCRImmutableID, DefaultDCRImmutableID)
	def(&o.Stream, DefaultStream)
	def(&o.APIVersion, DefaultAPIVersion)
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = DefaultTokenLifetime
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// Server is the emulator. Its methods are safe for concurrent use.
type Server struct {
	opt Options

	web *emuhttp.Server

	// got counts rows, IDs, and the requests, bytes and headers of the
	// ingestion endpoint only (token requests are tokReqs). Where it is
	// updated together with rows, mu is held first.
	got tally.Tally

	mu        sync.Mutex
	secret    string               // current client secret
	tokens    map[string]time.Time // issued token -> expiry
	forbidden bool
	failSkip  int
	failN     int
	failCode  int
	failRA    string
	tokFailN  int
	tokFailSt int
	rejSub    []byte
	rejCode   int
	rejErr    string

	rows    [][]byte
	tokReqs int
}

// New returns a server that is not listening yet: call Start or StartTLS.
func New(opt Options) *Server {
	opt.setDefaults()
	s := &Server{opt: opt, secret: opt.ClientSecret, tokens: map[string]time.Time{}}
	s.web = emuhttp.New("sentinel emulator", s)
	return s
}

// Options returns the options in force, defaults filled in: what a sink
// config needs (tenant, client, secret, DCR, stream).
func (s *Server) Options() Options { return s.opt }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves plain
// HTTP in the background.
func (s *Server) Start(addr string) error { return s.web.Start(addr) }

// StartTLS is Start over TLS with cfg, which must hold the server
// certificate; set cfg.ClientAuth and cfg.ClientCAs to require client
// certificates.
func (s *Server) StartTLS(addr string, cfg *tls.Config) error { return s.web.StartTLS(addr, cfg) }

// URL is "http://host:port" or "https://host:port": both the sink's
// endpoint and its authority. It stays the same across SetDown.
func (s *Server) URL() string { return s.web.URL() }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.web.Addr() }

// Close stops the server for good. It is idempotent.
func (s *Server) Close() { s.web.Close() }

// SetDown(true) closes the listener and every open connection; new
// connections are refused. SetDown(false) listens again on the same
// address. Issued tokens stay valid.
func (s *Server) SetDown(down bool) error { return s.web.SetDown(down) }

// FailNext makes the next n ingestion requests fail with status (429
// TooManyRequests, 503 ServiceUnavailable, 500 InternalServerError...) and
// a Retry-After header when retryAfter is not empty. Their rows are not
// recorded. It replaces any earlier FailNext or FailAfter; n = 0 cancels.
func (s *Server) FailNext(n, status int, retryAfter string) { s.FailAfter(0, n, status, retryAfter) }

// FailAfter is FailNext once skip more ingestion requests have been
// served normally: it fails the second request of a split batch.
func (s *Server) FailAfter(skip, n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSkip, s.failN, s.failCode, s.failRA = skip, n, status, retryAfter
}

// FailTokenNext makes the next n token requests fail with status (an Entra
// "temporarily_unavailable" error for 5xx and 429).
func (s *Server) FailTokenNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokFailN, s.tokFailSt = n, status
}

// RejectMatching answers status with error code code, recording nothing,
// to every ingestion request whose decompressed body contains substr. An
// empty substr removes the rule.
func (s *Server) RejectMatching(substr string, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejSub, s.rejCode, s.rejErr = []byte(substr), status, code
}

// SetForbidden(true) answers 403 OperationFailed to authenticated
// ingestion requests, as when the app lacks the Monitoring Metrics
// Publisher role on the DCR.
func (s *Server) SetForbidden(f bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden = f
}

// SetClientSecret changes the secret the token endpoint accepts (a
// rotated or revoked secret).
func (s *Server) SetClientSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
}

// ExpireTokens makes every token issued so far invalid (401), as if they
// had expired or been revoked.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// Rows returns every row recorded, in order of receipt (empty with IDsOnly
// or DiscardRows). The rows must not be modified.
func (s *Server) Rows() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.rows...)
}

// Count is the number of rows recorded, duplicates included.
func (s *Server) Count() int { return s.got.Count() }

// IDs maps each EventId recorded to the number of times it was received.
// Rows without a string EventId are counted by Count only.
func (s *Server) IDs() map[string]int { return s.got.IDs() }

// Distinct is the number of different EventIds received.
func (s *Server) Distinct() int { return s.got.Distinct() }

// Requests is the number of ingestion requests received, whatever their
// outcome.
func (s *Server) Requests() int { return s.got.Requests() }

// TokenRequests is the number of token requests received.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokReqs
}

// BytesOnWire is the number of ingestion request body bytes received, as
// sent (compressed if they were).
func (s *Server) BytesOnWire() int64 { return s.got.BytesOnWire() }

// LastHeader returns the headers of the last ingestion request, or nil.
func (s *Server) LastHeader() http.Header { return s.got.LastHeader() }

// Reset forgets the recorded rows and zeroes the counters; tokens and
// faults stay as they are.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows, s.tokReqs = nil, 0
	s.got.Reset()
}

// ServeHTTP routes to the token and ingestion endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tenant, ok := strings.CutSuffix(r.URL.Path, "/oauth2/v2.0/token"); ok && strings.Count(tenant, "/") == 1 {
		s.serveToken(w, r, strings.TrimPrefix(tenant, "/"))
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/dataCollectionRules/"); ok {
		if dcr, stream, ok := strings.Cut(rest, "/streams/"); ok && !strings.Contains(stream, "/") {
			s.serveIngest(w, r, dcr, stream)
			return
		}
	}
	azureError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.")
}

// azureError writes an error reply of the Logs Ingestion API.
func azureError(w http.ResponseWriter, status int, code, format string, args ...any) {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": fmt.Sprintf(format, args...)}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// entraError writes an error reply of the Entra ID token endpoint.
func entraError(w http.ResponseWriter, status int, errCode string, aadsts int, desc string) {
	trace := newToken()[:32]
	body, _ := json.Marshal(map[string]any{
		"error": errCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			aadsts, desc, trace, trace, time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":    []int{aadsts},
		"timestamp":      time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":       trace,
		"correlation_id": trace,
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// serveToken is the client credentials grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	s.mu.Lock()
	s.tokReqs++
	fail := s.tokFailN > 0
	failStatus := s.tokFailSt
	if fail {
		s.tokFailN--
	}
	secret := s.secret
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		entraError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		entraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if fail {
		if failStatus == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		entraError(w, failStatus, "temporarily_unavailable", 50196, "The server is temporarily unavailable.")
		return
	}
	f := r.PostForm
	switch {
	case tenant != s.opt.TenantID:
		entraError(w, http.StatusBadRequest, "invalid_request", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
	case f.Get("grant_type") != "client_credentials":
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
	case f.Get("client_id") != s.opt.ClientID:
		entraError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), tenant))
	case !equal(f.Get("client_secret"), secret):
		entraError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.opt.ClientID))
	case f.Get("scope") != s.opt.Scope:
		entraError(w, http.StatusBadRequest, "invalid_scope", 70011,
			fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", f.Get("scope")))
	default:
		tok := newToken()
		now := time.Now()
		s.mu.Lock()
		for t, exp := range s.tokens {
			if now.After(exp) {
				delete(s.tokens, t)
			}
		}
		s.tokens[tok] = now.Add(s.opt.TokenLifetime)
		s.mu.Unlock()
		secs := int64((s.opt.TokenLifetime + time.Second - 1) / time.Second)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store, no-cache")
		_, _ = fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"ext_expires_in":%d,"access_token":"%s"}`, secs, secs, tok)
	}
}

// validDCRID reports whether id looks like a DCR immutable ID.
func validDCRID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, "dcr-")
	if !ok || len(hexPart) != 32 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

// serveIngest is the Logs Ingestion API upload.
func (s *Server) serveIngest(w http.ResponseWriter, r *http.Request, dcr, stream string) {
	s.got.Request(r.Header)

	limit := int64(s.opt.MaxBodyBytes)
	raw, err := emuhttp.ReadAll(r.Body, r.ContentLength, limit+1)
	s.got.AddBytes(int64(len(raw)))
	s.mu.Lock()
	fail := false
	if s.failSkip > 0 {
		s.failSkip--
	} else if s.failN > 0 {
		fail = true
		s.failN--
	}
	failCode, failRA := s.failCode, s.failRA
	forbidden := s.forbidden
	s.mu.Unlock()
	if err != nil {
		return // the connection broke
	}
	if fail {
		if failRA != "" {
			w.Header().Set("Retry-After", failRA)
		}
		code := strings.ReplaceAll(http.StatusText(failCode), " ", "")
		azureError(w, failCode, code, "Injected failure.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		azureError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method %s is not allowed.", r.Method)
		return
	}
	switch v := r.URL.Query().Get("api-version"); {
	case v == "":
		azureError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	case v != s.opt.APIVersion:
		azureError(w, http.StatusBadRequest, "UnsupportedApiVersion", "The HTTP resource does not support the API version '%s'.", v)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/`+s.opt.TenantID+`", error="invalid_token"`)
		azureError(w, http.StatusUnauthorized, "InvalidToken", "The access token is missing, invalid or expired.")
		return
	}
	switch {
	case !validDCRID(dcr):
		azureError(w, http.StatusBadRequest, "InvalidDcrImmutableId", "The data collection rule immutable ID '%s' is invalid.", dcr)
		return
	case dcr != s.opt.DCRImmutableID:
		azureError(w, http.StatusNotFound, "NotFound", "Data collection rule with immutable Id '%s' not found.", dcr)
		return
	case stream != s.opt.Stream:
		azureError(w, http.StatusBadRequest, "InvalidStream", "Stream '%s' is not declared in data collection rule '%s'.", stream, dcr)
		return
	case forbidden:
		azureError(w, http.StatusForbidden, "OperationFailed",
			"The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '%s'.", dcr)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		azureError(w, http.StatusBadRequest, "InvalidContentType", "Content-Type must be application/json, got %q.", ct)
		return
	}
	if int64(len(raw)) > limit {
		tooLarge(w, limit)
		return
	}
	data := raw
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			data, err = emuhttp.ReadAll(zr, 8*int64(len(raw)), limit+1)
		}
		if err != nil {
			azureError(w, http.StatusBadRequest, "InvalidContentEncoding", "The body is not valid gzip: %v", err)
			return
		}
		if int64(len(data)) > limit {
			tooLarge(w, limit)
			return
		}
	default:
		azureError(w, http.StatusBadRequest, "UnsupportedContentEncoding", "Content-Encoding %q is not supported; use gzip.", enc)
		return
	}
	if len(bytes.TrimSpace(data)) == 0 {
		azureError(w, http.StatusInternalServerError, "InternalServerError", "Service request failed.")
		return
	}

	s.mu.Lock()
	rejSub, rejCode, rejErr := s.rejSub, s.rejCode, s.rejErr
	s.mu.Unlock()
	if len(rejSub) > 0 && bytes.Contains(data, rejSub) {
		azureError(w, rejCode, rejErr, "Rejected: the body matches %q.", rejSub)
		return
	}

	keep := !s.opt.IDsOnly && !s.opt.DiscardRows
	var rows [][]byte
	var ids []string
	n, err := SplitArray(data, func(elem []byte) {
		if keep {
			rows = append(rows, elem)
		}
		if !s.opt.DiscardRows {
			ids = append(ids, RowEventID(elem))
		}
	})
	if err != nil {
		azureError(w, http.StatusBadRequest, "InvalidPayload", "The body is not a JSON array of objects: %v", err)
		return
	}

	s.mu.Lock()
	s.rows = append(s.rows, rows...)
	s.got.Add(n, ids...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func tooLarge(w http.ResponseWriter, limit int64) {
	azureError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded",
		"Maximum allowed content length: %d bytes (%s).", limit, humanMB(limit))
}

func humanMB(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// authorized reports whether r carries a token issued here and not
// expired.
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	s.mu.Unlock()
	return ok && time.Now().Before(exp)
}
