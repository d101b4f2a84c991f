package sentinel

import (
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"time"

	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// MaxRetryAfter caps the delay a server may ask for with Retry-After.
const MaxRetryAfter = 10 * time.Minute

// maxErrorBody bounds the error reply that is read and decoded.
const maxErrorBody = 16 << 10

// configCodes are the error codes of a 400 (or 404) reply that mean the
// sink's settings do not match the DCR, or that the request is not what
// the service wants, rather than that the events are bad: the batch is
// retried (the events stay queued while the operator fixes the config)
// and the error is logged at ERROR level.
var configCodes = map[string]string{
	"InvalidStream":               "the DCR has no such stream: check stream (Custom-<name> as declared in the DCR's streamDeclarations)",
	"InvalidDcrImmutableId":       "check dcr_immutable_id, and that the endpoint is in the DCR's region (a DCE must be in the DCR's region)",
	"NotFound":                    "check dcr_immutable_id and endpoint",
	"InvalidApiVersion":           "check api_version",
	"UnsupportedApiVersion":       "check api_version",
	"InvalidApiVersionParameter":  "check api_version",
	"MissingApiVersionParameter":  "check api_version",
	"InvalidContentType":          "the service refused the Content-Type application/json",
	"InvalidContentEncoding":      "the service refused the gzip body: try compression: none",
	"UnsupportedContentEncoding":  "the service refused the gzip body: try compression: none",
	"DataCollectionRuleNotFound":  "check dcr_immutable_id",
	"DataCollectionRuleIsInvalid": "the DCR is invalid: check its definition",
}

// azureError is the body of an error reply of the Logs Ingestion API:
// {"error":{"code":"InvalidStream","message":"..."}}.
type azureError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// parseAzureError returns the code and message of an error reply, or
// empty strings when raw is not one.
func parseAzureError(raw []byte) (code, message string) {
	var ae azureError
	if json.Unmarshal(raw, &ae) != nil {
		return "", ""
	}
	return ae.Error.Code, ae.Error.Message
}

// statusError is an ingestion reply other than 2xx.
type statusError struct {
	status int    // HTTP status
	code   string // the service's error code, if any
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// classify maps an ingestion reply to Write's result and closes its body.
// See the Sink documentation for the table.
func (s *Sink) classify(resp *nethttp.Response) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		httpclient.DrainClose(resp)
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	httpclient.DrainClose(resp)
	azCode, azMsg := parseAzureError(raw)
	detail := httpclient.StatusText(code)
	if azCode != "" {
		detail += " " + azCode
	}
	var excerpt string
	if azMsg != "" {
		excerpt = httpclient.Excerpt([]byte(azMsg), s.secrets)
	} else if azCode == "" {
		excerpt = httpclient.Excerpt(raw, s.secrets)
	}
	msg := "(" + detail + ")"
	if excerpt != "" {
		msg += ": " + excerpt
	}
	se := &statusError{status: code, code: azCode}

	switch {
	case code >= 300 && code < 400:
		se.err = fmt.Errorf("%s: unexpected redirect %s: redirects are not followed; set endpoint to the logs ingestion URL", s.target, msg)
	case code == nethttp.StatusUnauthorized:
		se.err = fmt.Errorf("%s: %w %s: the endpoint refused the access token; check tenant_id (the DCR's tenant), scope and authority (sovereign clouds)",
			s.target, ErrAuthentication, msg)
	case code == nethttp.StatusForbidden:
		se.err = fmt.Errorf("%s: %w %s: assign the app registration the Monitoring Metrics Publisher role on the DCR (new assignments take up to 30 minutes)",
			s.target, ErrAuthentication, msg)
	case code == nethttp.StatusRequestEntityTooLarge:
		se.err = fmt.Errorf("%s: request too large %s", s.target, msg)
	case code == nethttp.StatusRequestTimeout || code == nethttp.StatusTooManyRequests || code >= 500:
		se.err = fmt.Errorf("%s: server error %s", s.target, msg)
		if code == nethttp.StatusTooManyRequests || code == nethttp.StatusServiceUnavailable {
			if d, ok := pipeline.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now(), MaxRetryAfter); ok {
				return &pipeline.RetryAfterError{Err: se, Delay: d}
			}
		}
	case configCodes[azCode] != "" || code == nethttp.StatusNotFound:
		hint := configCodes[azCode]
		if hint == "" {
			hint = configCodes["NotFound"]
		}
		se.err = fmt.Errorf("%s: configuration error %s: %s; the events stay queued until it is fixed", s.target, msg, hint)
		s.log.Error("sentinel: the service rejected the sink's configuration; events are kept and retried",
			"status", code, "code", azCode, "hint", hint)
	case code == nethttp.StatusBadRequest:
		// InvalidPayload, RecordsTimeRangeIsMoreThan30Minutes, or a code
		// we do not know: the rows themselves were refused.
		return pipeline.Permanent(&statusError{status: code, code: azCode,
			err: fmt.Errorf("%s: rejected %s", s.target, msg)})
	default:
		// 405, 409, 415...: the sink never sends what would earn these
		// from the Logs Ingestion API, so the endpoint is probably not
		// one. Retry rather than dead-letter every event.
		se.err = fmt.Errorf("%s: unexpected response %s: check that endpoint is a logs ingestion URL", s.target, msg)
		s.log.Error("sentinel: unexpected response; events are kept and retried", "status", code, "code", azCode)
	}
	return se
}
