package http

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// MaxRetryAfter caps the delay a server may ask for with Retry-After.
const MaxRetryAfter = 10 * time.Minute

const (
	// maxExcerpt is the longest response-body excerpt put in an error.
	maxExcerpt = 256
	// maxDrain is how much of a response body is read so that the
	// connection can be reused; a longer body costs the connection.
	maxDrain = 64 << 10
)

// classify maps a response to Write's result and closes its body.
func (s *Sink) classify(resp *nethttp.Response) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		drainClose(resp)
		return nil
	}
	if code == nethttp.StatusUnauthorized || code == nethttp.StatusForbidden {
		drainClose(resp)
		return s.authError(code)
	}
	if code >= 300 && code < 400 {
		drainClose(resp)
		return fmt.Errorf("http sink %s: unexpected redirect (%s): redirects are not followed; set url to the final address",
			s.target, statusText(code))
	}
	excerpt := s.readExcerpt(resp)
	msg := "(" + statusText(code) + ")"
	if excerpt != "" {
		msg += ": " + excerpt
	}
	switch {
	case code == nethttp.StatusRequestTimeout || code == nethttp.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("http sink %s: server error %s", s.target, msg)
		if code == nethttp.StatusTooManyRequests || code == nethttp.StatusServiceUnavailable {
			if d, ok := pipeline.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now(), MaxRetryAfter); ok {
				return &pipeline.RetryAfterError{Err: err, Delay: d}
			}
		}
		return err
	case code >= 400:
		return pipeline.Permanent(fmt.Errorf("http sink %s: rejected %s", s.target, msg))
	default: // 1xx that reached us, or a nonsense code
		return fmt.Errorf("http sink %s: unexpected response %s", s.target, msg)
	}
}

func statusText(code int) string {
	if t := nethttp.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// drainClose reads what is left of a (small) response body, so that the
// connection can be reused, and closes it.
func drainClose(resp *nethttp.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
}

// readExcerpt returns a printable excerpt of the response body, at most
// maxExcerpt bytes of it, with secrets redacted, and closes the body.
func (s *Sink) readExcerpt(resp *nethttp.Response) string {
	// Read past maxExcerpt by the longest secret, so that a secret that
	// starts inside the excerpt is seen whole and redacted.
	longest := 0
	for _, sec := range s.secrets {
		longest = max(longest, len(sec))
	}
	buf := make([]byte, maxExcerpt+longest+1)
	n, _ := io.ReadFull(resp.Body, buf)
	drainClose(resp)
	return excerpt(buf[:n], s.secrets)
}

const redactedMark = "[redacted]"

// excerpt renders the first maxExcerpt bytes of raw as one printable line:
// every occurrence of a secret (looked for in all of raw) becomes
// [redacted], control characters and runs of white space become one space,
// invalid UTF-8 becomes '?', and "..." marks a cut.
func excerpt(raw []byte, secrets [][]byte) string {
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
	for i < len(raw) && i < maxExcerpt {
		if covered != nil && covered[i] {
			out.WriteString(redactedMark)
			for i < len(raw) && covered[i] {
				i++
			}
			space = false
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if i+size > maxExcerpt {
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
var errBodyReleased = errors.New("http sink: request body read after the request ended")

// body is a request body over a byte slice that the sink reuses (or that
// belongs to a batch the caller will release). net/http may read a request
// body after Client.Do returns; release makes every later read fail
// instead of reading reused memory. All readers of one body share its lock.
type body struct {
	mu       sync.Mutex
	p        []byte
	released bool
}

func newBody(p []byte) *body { return &body{p: p} }

func (b *body) len() int { return len(b.p) }

func (b *body) reader() *bodyReader { return &bodyReader{b: b} }

// getBody is Request.GetBody: a fresh reader, for the transport to replay
// the request on a new connection.
func (b *body) getBody() (io.ReadCloser, error) { return b.reader(), nil }

func (b *body) release() {
	b.mu.Lock()
	b.released, b.p = true, nil
	b.mu.Unlock()
}

type bodyReader struct {
	b   *body
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
