// Package httpclient is what the HTTP-based sinks share: a client built for
// delivery (TLS from tlsclient, keep-alives, no redirects), a request body
// that is cut off once its request ended, safe excerpts of error replies
// (secrets redacted, one printable line), and transport errors stripped of
// the URL (whose path or query may hold a token).
package httpclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxExcerpt is the longest response-body excerpt put in an error.
	MaxExcerpt = 256
	// maxDrain is how much of a response body is read so that the
	// connection can be reused; a longer body costs the connection.
	maxDrain = 64 << 10
)

// Connection pool and timeout settings of New's transport.
const (
	maxIdleConns = 4 // a sink's Write is sequential; Check may run beside it
	// idleConnTimeout is below the 60 s idle timeout of common load
	// balancers, so that a sink rarely sends on a connection the server
	// side is closing (a POST is not replayed by net/http, so that would
	// cost a retry).
	idleConnTimeout     = 50 * time.Second
	dialTimeout         = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	tcpKeepAlive        = 30 * time.Second
)

// New returns a client whose requests time out after timeout (dial to end
// of response), with tc for https (nil: Go defaults), keep-alives, HTTP/2
// when offered, proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY, and redirects
// not followed (a 301/302 would turn a POST into a body-less GET: the
// caller sees the 3xx). Close idle connections with
// client.CloseIdleConnections.
func New(timeout time.Duration, tc *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, dialTimeout), KeepAlive: tcpKeepAlive}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   min(timeout, tlsHandshakeTimeout),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConns,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// TransportError wraps an error of Client.Do as "<what>: <cause>" without
// the URL: *url.Error is unwrapped. If ctx ended, the cause is ctx.Err().
func TransportError(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// StatusText is "429 Too Many Requests", or the bare code when unknown.
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// DrainClose reads what is left of a (small) response body, so that the
// connection can be reused, and closes it.
func DrainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
}

// ReadExcerpt returns a printable excerpt of the response body, at most
// MaxExcerpt bytes of it, with every secret redacted, and closes the body.
func ReadExcerpt(resp *http.Response, secrets [][]byte) string {
	// Read past MaxExcerpt by the longest secret, so that a secret that
	// starts inside the excerpt is seen whole and redacted.
	longest := 0
	for _, sec := range secrets {
		longest = max(longest, len(sec))
	}
	buf := make([]byte, MaxExcerpt+longest+1)
	n, _ := io.ReadFull(resp.Body, buf)
	DrainClose(resp)
	return Excerpt(buf[:n], secrets)
}

const redactedMark = "[redacted]"

// Excerpt renders the first MaxExcerpt bytes of raw as one printable line:
// every occurrence of a secret (looked for in all of raw) becomes
// [redacted], control characters and runs of white space become one space,
// invalid UTF-8 becomes '?', and "..." marks a cut.
func Excerpt(raw []byte, secrets [][]byte) string {
	var covered []bool // covered[i]: raw[i] is part of a secret
	for _, sec := range secrets {
		if len(sec) == 0 {
			continue
		}
		for i := 0; i < len(raw); {
			j := bytes.Index(raw[i:], sec)
			if j < 0 {
				break
			}
			if covered == nil {
				covered = make([]bool, len(raw))
			}
			for k := i + j; k < i+j+len(sec); k++ {
				covered[k] = true
			}
			i += j + 1
		}
	}
	var out strings.Builder
	space := false
	i := 0
	for i < len(raw) && i < MaxExcerpt {
		if covered != nil && covered[i] {
			out.WriteString(redactedMark)
			for i < len(raw) && covered[i] {
				i++
			}
			space = false
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if i+size > MaxExcerpt {
			break
		}
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			out.WriteByte('?')
		case unicode.IsSpace(r) || unicode.IsControl(r):
			if !space && out.Len() > 0 {
				out.WriteByte(' ')
			}
			space = true
			continue
		default:
			out.WriteRune(r)
		}
		space = false
	}
	res := strings.TrimRight(out.String(), " ")
	if i < len(raw) {
		res += "..."
	}
	return res
}

// errBodyReleased is what a request body reads after release.
var errBodyReleased = errors.New("request body read after the request ended")

// Body is a request body over a byte slice that the sink reuses (or that
// belongs to a batch the caller will release). net/http may read a request
// body after Client.Do returns; Release makes every later read fail
// instead of reading reused memory. All readers of one body share its lock.
type Body struct {
	mu       sync.Mutex
	p        []byte
	released bool
}

// NewBody returns a Body over p.
func NewBody(p []byte) *Body { return &Body{p: p} }

// Attach makes b the body of req (Body, GetBody and ContentLength). Call
// Release once the response was read.
func (b *Body) Attach(req *http.Request) {
	req.Body, req.GetBody, req.ContentLength = b.reader(), b.getBody, int64(len(b.p))
}

func (b *Body) reader() *bodyReader { return &bodyReader{b: b} }

// getBody is Request.GetBody: a fresh reader, for the transport to replay
// the request on a new connection.
func (b *Body) getBody() (io.ReadCloser, error) { return b.reader(), nil }

// Release cuts the body off: later reads by the transport fail.
func (b *Body) Release() {
	b.mu.Lock()
	b.released, b.p = true, nil
	b.mu.Unlock()
}

type bodyReader struct {
	b   *Body
	off int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if r.b.released {
		return 0, errBodyReleased
	}
	if r.off >= len(r.b.p) {
		return 0, io.EOF
	}
	n := copy(p, r.b.p[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error { return nil }
