package http

import (
	"fmt"
	nethttp "net/http"
	"time"

	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// MaxRetryAfter caps the delay a server may ask for with Retry-After.
const MaxRetryAfter = 10 * time.Minute

// classify maps a response to Write's result and closes its body.
func (s *Sink) classify(resp *nethttp.Response) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		httpclient.DrainClose(resp)
		return nil
	}
	if code == nethttp.StatusUnauthorized || code == nethttp.StatusForbidden {
		httpclient.DrainClose(resp)
		return s.authError(code)
	}
	if code >= 300 && code < 400 {
		httpclient.DrainClose(resp)
		return fmt.Errorf("http sink %s: unexpected redirect (%s): redirects are not followed; set url to the final address",
			s.target, httpclient.StatusText(code))
	}
	excerpt := httpclient.ReadExcerpt(resp, s.secrets)
	msg := "(" + httpclient.StatusText(code) + ")"
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
