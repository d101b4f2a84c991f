package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// ErrAuthentication is wrapped by every error that means the credentials
// or the app registration's permissions need the operator's attention:
// Entra ID refused the token request, or the ingestion endpoint answered
// 401 or 403. Such errors are retryable: the events stay queued.
var ErrAuthentication = errors.New("authentication failed")

// Token refresh timing.
const (
	// refreshMargin is how long before expiry a token is replaced; for
	// tokens that live less than twice as long, half their lifetime.
	refreshMargin = 5 * time.Minute
	// expirySkew: a token this close to its expiry is not used any more,
	// even when its refresh failed (clock skew, time in flight).
	expirySkew = 30 * time.Second
	// defaultLifetime is assumed when the token response has no usable
	// expires_in (Entra ID always sends one).
	defaultLifetime = 5 * time.Minute
	// maxTokenResponse bounds the token response body that is read.
	maxTokenResponse = 64 << 10
)

// tokenSource gets and caches access tokens with the OAuth 2.0 client
// credentials grant. It is safe for concurrent use (Write and Check), and
// at most one token request is in flight at a time: other callers wait for
// its result (or their context).
type tokenSource struct {
	url     string // <authority>/<tenant>/oauth2/v2.0/token
	form    string // the request body; holds the client secret
	what    string // "sentinel sink: token request to https://host"
	client  *nethttp.Client
	now     func() time.Time
	log     *slog.Logger
	secrets [][]byte // redacted from excerpts

	mu        sync.Mutex
	tok       string
	expires   time.Time
	refreshAt time.Time
	inflight  *tokenCall
	requests  int // token requests sent, for tests
}

// tokenCall is one token request; done is closed when its result is set.
type tokenCall struct {
	done    chan struct{}
	tok     string
	expires time.Time
	err     error
}

func newTokenSource(cfg Config, client *nethttp.Client, now func() time.Time, log *slog.Logger) *tokenSource {
	form := url.Values{}
	form.Set("client_id", cfg.ClientID)
	form.Set("client_secret", cfg.ClientSecret.Reveal())
	form.Set("scope", cfg.Scope)
	form.Set("grant_type", "client_credentials")
	authority := strings.TrimRight(cfg.Authority, "/")
	u, _ := url.Parse(authority) // validated
	ts := &tokenSource{
		url:    authority + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token",
		form:   form.Encode(),
		what:   "sentinel sink: token request to " + u.Scheme + "://" + u.Host,
		client: client,
		now:    now,
		log:    log,
	}
	secret := cfg.ClientSecret.Reveal()
	ts.secrets = [][]byte{[]byte(secret), []byte(url.QueryEscape(secret))}
	return ts
}

// token returns a valid access token: the cached one, or a new one when
// none is cached or the cached one is due for refresh. If a refresh fails
// while the cached token is still valid, the cached token is returned and
// the failure logged.
func (ts *tokenSource) token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	now := ts.now()
	if ts.tok != "" && now.Before(ts.refreshAt) {
		tok := ts.tok
		ts.mu.Unlock()
		return tok, nil
	}
	stale, staleExpires := ts.tok, ts.expires
	c := ts.inflight
	leader := c == nil
	if leader {
		c = &tokenCall{done: make(chan struct{})}
		ts.inflight = c
		ts.requests++
	}
	ts.mu.Unlock()

	if leader {
		c.tok, c.expires, c.err = ts.fetch(ctx)
		ts.mu.Lock()
		if c.err == nil {
			lifetime := c.expires.Sub(now)
			ts.tok, ts.expires = c.tok, c.expires
			ts.refreshAt = c.expires.Add(-min(refreshMargin, lifetime/2))
		}
		ts.inflight = nil
		ts.mu.Unlock()
		close(c.done)
	} else {
		select {
		case <-c.done:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: %w", ts.what, ctx.Err())
		}
	}
	if c.err == nil {
		return c.tok, nil
	}
	if stale != "" && ts.now().Before(staleExpires.Add(-expirySkew)) {
		ts.log.Warn("could not refresh the access token; using the current one until it expires",
			"expires", staleExpires, "err", c.err)
		return stale, nil
	}
	return "", c.err
}

// invalidate drops tok from the cache (the ingestion endpoint refused it),
// so that the next call to token fetches a new one.
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok == tok {
		ts.tok, ts.expires, ts.refreshAt = "", time.Time{}, time.Time{}
	}
}

// tokenResponse is the success reply of the token endpoint.
type tokenResponse struct {
	AccessToken string        `json:"access_token"`
	TokenType   string        `json:"token_type"`
	ExpiresIn   flexibleInt64 `json:"expires_in"`
}

// tokenError is the error reply of the token endpoint.
type tokenError struct {
	Error       string  `json:"error"`
	Description string  `json:"error_description"`
	Codes       []int64 `json:"error_codes"`
}

// flexibleInt64 accepts a JSON number or a string holding one (the v1
// endpoint sends expires_in as a string).
type flexibleInt64 int64

func (f *flexibleInt64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("expires_in: %w", err)
	}
	*f = flexibleInt64(n)
	return nil
}

// fetch sends one token request and returns the token and its expiry.
func (ts *tokenSource) fetch(ctx context.Context) (string, time.Time, error) {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, ts.url, strings.NewReader(ts.form))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: %w", ts.what, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "alertrelay")
	start := ts.now()
	resp, err := ts.client.Do(req)
	if err != nil {
		return "", time.Time{}, httpclient.TransportError(ctx, ts.what, err)
	}
	if resp.StatusCode != nethttp.StatusOK {
		return "", time.Time{}, ts.failure(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	httpclient.DrainClose(resp)
	if err != nil {
		return "", time.Time{}, httpclient.TransportError(ctx, ts.what, err)
	}
	tok, lifetime, err := parseTokenResponse(body)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: %w", ts.what, err)
	}
	return tok, start.Add(lifetime), nil
}

// parseTokenResponse returns the access token and lifetime of a 200 reply.
func parseTokenResponse(body []byte) (string, time.Duration, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", 0, fmt.Errorf("unreadable token response: %v", err)
	}
	if tr.AccessToken == "" {
		return "", 0, errors.New("token response has no access_token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", 0, fmt.Errorf("token response has token_type %q, want Bearer", tr.TokenType)
	}
	for i := 0; i < len(tr.AccessToken); i++ {
		if c := tr.AccessToken[i]; c <= ' ' || c == 0x7f {
			return "", 0, errors.New("token response has an access_token with a space or control character")
		}
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	if tr.ExpiresIn <= 0 || tr.ExpiresIn > 1<<31 {
		lifetime = defaultLifetime
	}
	return tr.AccessToken, lifetime, nil
}

// failure maps a non-200 token reply to an error and closes its body.
//
//   - 400, 401 (invalid_client, unauthorized_client, invalid_request,
//     invalid_scope...): ErrAuthentication, naming the Entra error and
//     AADSTS code.
//   - 429, 5xx: retryable, with the Retry-After delay when given.
//   - anything else: retryable, "unexpected response".
func (ts *tokenSource) failure(resp *nethttp.Response) error {
	code := resp.StatusCode
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	httpclient.DrainClose(resp)
	status := httpclient.StatusText(code)
	switch {
	case code == nethttp.StatusBadRequest || code == nethttp.StatusUnauthorized || code == nethttp.StatusForbidden:
		return fmt.Errorf("%s: %w: Entra ID refused the client credentials (%s%s); check tenant_id, client_id, client_secret (not expired, the secret's value rather than its ID), scope and authority",
			ts.what, ErrAuthentication, status, ts.describe(raw))
	case code == nethttp.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("%s: server error (%s%s)", ts.what, status, ts.describe(raw))
		if d, ok := pipeline.ParseRetryAfter(resp.Header.Get("Retry-After"), ts.now(), MaxRetryAfter); ok {
			return &pipeline.RetryAfterError{Err: err, Delay: d}
		}
		return err
	default:
		return fmt.Errorf("%s: unexpected response (%s%s)", ts.what, status, ts.describe(raw))
	}
}

// describe renders the Entra error of a token reply as ", invalid_client,
// AADSTS7000215: Invalid client secret provided..." (first line of the
// description only, secrets redacted), or a raw excerpt of a body that is
// not an Entra error.
func (ts *tokenSource) describe(raw []byte) string {
	var te tokenError
	if json.Unmarshal(raw, &te) != nil || te.Error == "" {
		if ex := httpclient.Excerpt(raw, ts.secrets); ex != "" {
			return ": " + ex
		}
		return ""
	}
	desc := te.Description
	if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
		desc = desc[:i] // drop "Trace ID: ... Correlation ID: ... Timestamp: ..."
	}
	out := ", " + te.Error
	if len(te.Codes) > 0 && !strings.HasPrefix(desc, "AADSTS") {
		out += ", AADSTS" + strconv.FormatInt(te.Codes[0], 10)
	}
	if desc != "" {
		out += ": " + httpclient.Excerpt([]byte(desc), ts.secrets)
	}
	return out
}

// requestCount is the number of token requests sent.
func (ts *tokenSource) requestCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.requests
}
