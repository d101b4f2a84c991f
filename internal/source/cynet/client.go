package cynet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// Errors the poller tells apart.
var (
	// ErrAuth: the credentials were refused (401 on the token request) or
	// the API user lacks permission (403). Retrying cannot help; the source
	// stops until the config is fixed.
	ErrAuth = errors.New("authentication failed")
	// ErrUnauthorized: a data request got 401 even with a fresh token.
	ErrUnauthorized = errors.New("unauthorized")
)

// maxRetryAfter caps the wait a server may ask for.
const maxRetryAfter = 10 * time.Minute

// retryable is a transient failure, with the server's Retry-After if any.
type retryable struct {
	err   error
	after time.Duration
}

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

// client talks to one tenant's API: token lifecycle, request throttling,
// page requests. Safe for concurrent use.
type client struct {
	cfg     *Config
	base    *url.URL
	hc      *http.Client
	limiter *rate.Limiter
	now     func() time.Time

	mu      sync.Mutex // one token refresh at a time
	token   string
	expires time.Time
}

func newClient(cfg *Config, now func() time.Time) (*client, error) {
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc, ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 50 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &client{
		cfg: cfg, base: base, now: now,
		hc:      &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: noRedirects},
		limiter: rate.NewLimiter(rate.Limit(cfg.MaxRequestsPerSecond), 1),
	}, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (c *client) close() { c.hc.CloseIdleConnections() }

// bearer returns a valid token, fetching a new one when there is none or it
// is within RefreshBefore of expiring.
func (c *client) bearer(ctx context.Context, force bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && c.token != "" && c.now().Before(c.expires.Add(-c.cfg.RefreshBefore)) {
		return c.token, nil
	}
	tok, ttl, err := c.login(ctx)
	if err != nil {
		c.token = ""
		return "", err
	}
	c.token, c.expires = tok, c.now().Add(ttl)
	return tok, nil
}

// login is POST {token_path} with {"user_name","password"} (spec A2).
func (c *client) login(ctx context.Context) (string, time.Duration, error) {
	body, _ := json.Marshal(map[string]string{"user_name": c.cfg.Username.Reveal(), "password": c.cfg.Password.Reveal()})
	if err := c.limiter.Wait(ctx); err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(c.cfg.TokenPath).String(), bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, &retryable{err: fmt.Errorf("token request: %w", redactURL(err))}
	}
	defer drain(resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", 0, fmt.Errorf("%w: token request answered %d: check username, password and the API user's permissions", ErrAuth, resp.StatusCode)
	default:
		return "", 0, statusError("token request", resp)
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", 0, &retryable{err: errors.New("token response without access_token")}
	}
	ttl := c.cfg.TokenTTL
	if n, err := strconv.ParseFloat(string(bytes.Trim(tr.ExpiresIn, `"`)), 64); err == nil && n > 0 {
		ttl = time.Duration(n * float64(time.Second))
	}
	return tr.AccessToken, ttl, nil
}

// page is one response of the alerts endpoint.
type page struct {
	sync     time.Time // SyncTimeUtc; zero when absent
	entities []json.RawMessage
}

// fetch requests one page, with the token refreshed ahead of expiry and
// one re-authentication on 401.
// buf holds the body; the page's entities alias it.
func (c *client) fetch(ctx context.Context, lastSeen time.Time, offset int, buf *[]byte) (page, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.bearer(ctx, attempt > 0)
		if err != nil {
			return page{}, err
		}
		p, status, err := c.get(ctx, tok, lastSeen, offset, buf)
		if status == http.StatusUnauthorized && attempt == 0 {
			continue // expired or revoked: re-authenticate once
		}
		if status == http.StatusUnauthorized {
			return page{}, &retryable{err: fmt.Errorf("%w: alerts request refused with a fresh token", ErrUnauthorized)}
		}
		return p, err
	}
}

func (c *client) get(ctx context.Context, tok string, lastSeen time.Time, offset int, buf *[]byte) (page, int, error) {
	q := url.Values{}
	q.Set("LastSeen", lastSeen.UTC().Format(c.cfg.LastSeenFormat))
	q.Set("Limit", strconv.Itoa(c.cfg.PageSize))
	q.Set("Offset", strconv.Itoa(offset))
	u := *c.base.JoinPath(c.cfg.Endpoint)
	u.RawQuery = q.Encode()
	if err := c.limiter.Wait(ctx); err != nil {
		return page{}, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return page{}, 0, err
	}
	// The vendor's header names contain underscores; set them verbatim
	// (Header.Set would canonicalise to Access_token, which some proxies
	// treat differently).
	req.Header["access_token"] = []string{tok}
	req.Header["client_id"] = []string{c.cfg.ClientID}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return page{}, 0, &retryable{err: fmt.Errorf("alerts request: %w", redactURL(err))}
	}
	defer drain(resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNoContent:
		return page{}, resp.StatusCode, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return page{}, resp.StatusCode, nil
	case resp.StatusCode == http.StatusForbidden:
		return page{}, resp.StatusCode, fmt.Errorf("%w: alerts request answered 403: the API user lacks permission or client_id %s is wrong", ErrAuth, c.cfg.ClientID)
	default:
		return page{}, resp.StatusCode, statusError("alerts request", resp)
	}
	p, err := decodePage(resp.Body, buf)
	return p, resp.StatusCode, err
}

func printable(b []byte, max int) string {
	out := make([]byte, 0, max)
	for _, c := range b {
		if len(out) == max {
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out = append(out, c)
	}
	return string(out)
}

// parseTime reads the API's time formats: with or without zone (UTC),
// with or without fractional seconds.
func parseTime(s string) time.Time {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// statusError turns a non-success status into an error: 429 and 5xx are
// retryable (with Retry-After), other codes too but they are logged as the
// configuration problem they usually are.
func statusError(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	err := fmt.Errorf("%s answered %d: %q", what, resp.StatusCode, printable(body, 120))
	after, _ := pipeline.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now(), maxRetryAfter)
	return &retryable{err: err, after: after}
}

// redactURL strips the query (it holds no secrets, but keeps errors short)
// from a *url.Error.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			ue.URL = u.String()
		}
	}
	return err
}

func drain(r io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	r.Close()
}
