package elasticsearch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// MaxRetryAfter caps the delay a server may ask for with Retry-After.
const MaxRetryAfter = 10 * time.Minute

// maxReply bounds the bulk reply read into memory. With filter_path an item
// costs ~25 bytes, or the size of its error.
const maxReply = 64 << 20

// errTooLarge is a 413 reply to a request of several documents: the caller
// splits it.
var errTooLarge = errors.New("request body too large (413)")

// itemResult is one entry of a bulk reply's items.
type itemResult struct {
	op     string // create, index...
	status int
	typ    string // error.type
	reason string // error.reason (and caused_by's)
}

// bulkReply is the part of a reply to
// _bulk?filter_path=errors,items.*.status,items.*.error the sink reads.
type bulkReply struct {
	Items []map[string]struct {
		Status int             `json:"status"`
		Error  json.RawMessage `json:"error"`
	} `json:"items"`
}

type errorObject struct {
	Type     string `json:"type"`
	Reason   string `json:"reason"`
	CausedBy *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"caused_by"`
}

// parseBulkReply reads a bulk reply. When its top-level "errors" is false
// it returns (false, nil, nil) without decoding anything else; when true it
// decodes the items, which must be n. A reply without a boolean "errors"
// is an error.
func parseBulkReply(body []byte, n int) (bool, []itemResult, error) {
	flag, ok := findErrorsFlag(body)
	if !ok {
		return false, nil, errors.New(`reply is not a bulk response (no "errors" flag)`)
	}
	if !flag {
		return false, nil, nil
	}
	var r bulkReply
	if err := json.Unmarshal(body, &r); err != nil {
		return true, nil, fmt.Errorf("reply with errors does not decode: %v", err)
	}
	if len(r.Items) != n {
		return true, nil, fmt.Errorf("reply lists %d items for %d documents", len(r.Items), n)
	}
	out := make([]itemResult, n)
	for i, m := range r.Items {
		if len(m) != 1 {
			return true, nil, fmt.Errorf("reply item %d has %d members, want 1", i, len(m))
		}
		for op, v := range m {
			res := itemResult{op: op, status: v.Status}
			if len(v.Error) > 0 && string(v.Error) != "null" {
				var eo errorObject
				if json.Unmarshal(v.Error, &eo) == nil {
					res.typ, res.reason = eo.Type, eo.Reason
					if eo.CausedBy != nil && eo.CausedBy.Reason != "" {
						res.reason += ": caused by " + eo.CausedBy.Type + ": " + eo.CausedBy.Reason
					}
				} else {
					var s string
					if json.Unmarshal(v.Error, &s) == nil {
						res.reason = s
					}
				}
				if res.typ == "" && res.reason == "" {
					res.typ = "error"
				}
			}
			out[i] = res
		}
	}
	return true, out, nil
}

// findErrorsFlag returns the boolean value of the top-level "errors" member
// of body, scanning (not decoding) the members before it.
func findErrorsFlag(b []byte) (flag, ok bool) {
	i := event.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false, false
	}
	i = event.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false, false
	}
	for {
		e, ok := event.SkipString(b, i)
		if !ok {
			return false, false
		}
		key := b[i+1 : e-1]
		i = event.SkipSpace(b, e)
		if i >= len(b) || b[i] != ':' {
			return false, false
		}
		i = event.SkipSpace(b, i+1)
		end, ok := event.SkipValue(b, i)
		if !ok {
			return false, false
		}
		if string(key) == "errors" {
			switch string(b[i:end]) {
			case "true":
				return true, true
			case "false":
				return false, true
			}
			return false, false
		}
		i = event.SkipSpace(b, end)
		if i >= len(b) || b[i] != ',' {
			return false, false
		}
		i = event.SkipSpace(b, i+1)
	}
}

// classify maps the reply to a bulk request of the documents [lo, hi) to
// per-document failures (absolute batch indexes) or a whole-request error,
// and closes the body.
func (s *Sink) classify(resp *http.Response, lo, hi int) ([]pipeline.ItemError, error) {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
		httpclient.DrainClose(resp)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the bulk reply: %w", s.what(), err)
		}
		if len(body) > maxReply {
			return nil, fmt.Errorf("%s: bulk reply larger than %d bytes", s.what(), maxReply)
		}
		anyErr, items, err := parseBulkReply(body, hi-lo)
		if err != nil {
			// Everything may or may not have been written; re-sending
			// is safe because every document carries its _id.
			return nil, fmt.Errorf("%s: unexpected reply (%s): %v: %s", s.what(), httpclient.StatusText(code), err,
				httpclient.Excerpt(body, s.secrets))
		}
		if !anyErr {
			return nil, nil
		}
		return s.itemErrors(items, lo), nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		httpclient.DrainClose(resp)
		return nil, s.authError(code)
	case code == http.StatusRequestEntityTooLarge:
		httpclient.DrainClose(resp)
		if hi-lo > 1 {
			return nil, errTooLarge
		}
		return nil, pipeline.Permanent(fmt.Errorf("%s: a single document is larger than the cluster accepts (413 Request Entity Too Large): raise http.max_content_length", s.what()))
	case code >= 300 && code < 400:
		httpclient.DrainClose(resp)
		return nil, fmt.Errorf("%s: unexpected redirect (%s): redirects are not followed; set url to the cluster's address",
			s.what(), httpclient.StatusText(code))
	}
	excerpt := httpclient.ReadExcerpt(resp, s.secrets)
	msg := "(" + httpclient.StatusText(code) + ")"
	if excerpt != "" {
		msg += ": " + excerpt
	}
	switch {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("%s: server error %s", s.what(), msg)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d, ok := pipeline.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now(), MaxRetryAfter); ok {
				return nil, &pipeline.RetryAfterError{Err: err, Delay: d}
			}
		}
		return nil, err
	case code >= 400:
		return nil, pipeline.Permanent(fmt.Errorf("%s: bulk request rejected %s", s.what(), msg))
	default:
		return nil, fmt.Errorf("%s: unexpected response %s", s.what(), msg)
	}
}

// itemErrors maps the items of a reply with errors to ItemErrors.
//
//   - 2xx: written.
//   - 409 on create: the _id is already there, a re-send: written.
//   - 429, 5xx, 408, 401, 403, 404 index_not_found_exception, or no
//     status: retryable (back-pressure, a node or shard down, missing
//     privileges or index: the operator can fix it, the events wait).
//   - other 4xx (400 mapper_parsing_exception, document_parsing_exception,
//     illegal_argument_exception, 409 on index...): permanent.
func (s *Sink) itemErrors(items []itemResult, lo int) []pipeline.ItemError {
	var out []pipeline.ItemError
	for k, it := range items {
		st := it.status
		if (st >= 200 && st < 300) || (st == http.StatusConflict && it.op == "create") {
			continue
		}
		desc := fmt.Sprint(st)
		if it.typ != "" {
			desc += " " + it.typ
		}
		reason := httpclient.Excerpt([]byte(it.reason), s.secrets)
		retry := st == 0 || st == http.StatusTooManyRequests || st >= 500 || st == http.StatusRequestTimeout ||
			st == http.StatusUnauthorized || st == http.StatusForbidden ||
			(st == http.StatusNotFound && it.typ == "index_not_found_exception")
		var err error
		if retry {
			err = fmt.Errorf("%s: document not written (%s): %s", s.what(), desc, reason)
		} else {
			err = pipeline.Permanent(fmt.Errorf("%s: document rejected (%s): %s", s.what(), desc, reason))
		}
		out = append(out, pipeline.ItemError{Index: lo + k, Err: err, Permanent: !retry})
	}
	return out
}
