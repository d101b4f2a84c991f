package splunkhec

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// HEC reply codes ({"text":..,"code":N}), from Splunk's "Troubleshoot HTTP
// Event Collector" table.
const (
	CodeSuccess              = 0  // 200 Success
	CodeTokenDisabled        = 1  // 403 Token disabled
	CodeTokenRequired        = 2  // 401 Token is required
	CodeInvalidAuthorization = 3  // 401 Invalid authorization
	CodeInvalidToken         = 4  // 403 Invalid token
	CodeNoData               = 5  // 400 No data
	CodeInvalidDataFormat    = 6  // 400 Invalid data format
	CodeIncorrectIndex       = 7  // 400 Incorrect index
	CodeInternalError        = 8  // 500 Internal server error
	CodeServerBusy           = 9  // 503 Server is busy
	CodeChannelMissing       = 10 // 400 Data channel is missing
	CodeInvalidChannel       = 11 // 400 Invalid data channel
	CodeEventRequired        = 12 // 400 Event field is required
	CodeEventBlank           = 13 // 400 Event field cannot be blank
	CodeAckDisabled          = 14 // 400 ACK is disabled
	CodeIndexedFields        = 15 // 400 Error in handling indexed fields
	CodeQueryStringAuth      = 16 // 400 Query string authorization is not enabled
	CodeHealthy              = 17 // 200 HEC is healthy
	CodeUnhealthyQueues      = 18 // 503 HEC is unhealthy, queues are full
	CodeUnhealthyAck         = 19 // 503 HEC is unhealthy, ack service unavailable
	CodeUnhealthyBoth        = 20 // 503 HEC is unhealthy, queues are full, ack service unavailable
)

// MaxRetryAfter caps the delay HEC may ask for with Retry-After.
const MaxRetryAfter = 10 * time.Minute

// maxReply bounds how much of a reply is read.
const maxReply = 64 << 10

// reply is an HEC reply body. Absent members are nil.
type reply struct {
	Text         string `json:"text"`
	Code         *int   `json:"code"`
	InvalidEvent *int   `json:"invalid-event-number"`
	AckID        *int64 `json:"ackId"`
}

// code is the reply's code, or -1 when it has none.
func (r reply) code() int {
	if r.Code == nil {
		return -1
	}
	return *r.Code
}

// outcome is the classified result of one request.
type outcome struct {
	err       error // nil: accepted
	ackID     int64 // accepted with ack enabled: the ackId; else -1
	permanent bool  // err is permanent (for badEvent's events, or the whole request)
	badEvent  int   // position in the request of the event HEC rejected, or -1
	sameIndex bool  // code 7: the events bound for badEvent's index are permanent too
}

// readReply reads (at most maxReply bytes of) the reply, closes it, and
// decodes it if it is an HEC JSON reply.
func (s *Sink) readReply(resp *http.Response) (int, []byte, reply) {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	httpclient.DrainClose(resp)
	var rep reply
	if len(raw) > 0 && raw[0] == '{' {
		_ = json.Unmarshal(raw, &rep) // not HEC JSON: members stay nil
	}
	return resp.StatusCode, raw, rep
}

// classify maps the reply of a request carrying n events.
func (s *Sink) classify(resp *http.Response, n int) outcome {
	status, raw, rep := s.readReply(resp)
	return s.interpret(status, resp.Header, raw, rep, n)
}

// interpret maps a reply (status, headers, body) of a request carrying n
// events (0 for Check and acknowledgement polls) to an outcome.
func (s *Sink) interpret(status int, h http.Header, raw []byte, rep reply, n int) outcome {
	o := outcome{ackID: -1, badEvent: -1}
	code := rep.code()
	if status >= 200 && status < 300 {
		if s.cfg.Ack.Enabled && n > 0 {
			if rep.AckID != nil && *rep.AckID >= 0 {
				o.ackID = *rep.AckID
			} else if !s.warnedNoAckID.Swap(true) {
				s.log.Warn("ack.enabled is set but HEC returned no ackId: the token does not have indexer acknowledgement enabled; " +
					"events are considered delivered on HTTP 200 (enable acknowledgement on the token, or set ack.enabled: false)")
			}
		}
		return o
	}

	msg := "(" + httpclient.StatusText(status)
	if code >= 0 {
		msg += fmt.Sprintf(", HEC code %d", code)
	}
	msg += ")"
	if ex := httpclient.Excerpt(raw, s.secrets); ex != "" {
		msg += ": " + ex
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden ||
		(code >= CodeTokenDisabled && code <= CodeInvalidToken) || code == CodeQueryStringAuth:
		o.err = fmt.Errorf("%s: authentication failed %s: check token (a valid, enabled HEC token)", s.target, msg)
	case code == CodeChannelMissing:
		o.err = fmt.Errorf("%s: HEC requires a channel %s: the token has indexer acknowledgement enabled; set ack.enabled: true (or turn acknowledgement off on the token)", s.target, msg)
	case code == CodeInvalidChannel:
		o.err = fmt.Errorf("%s: HEC rejected the channel %s: set channel to a GUID, or leave it empty to have one generated", s.target, msg)
	case code == CodeAckDisabled:
		o.err = fmt.Errorf("%s: indexer acknowledgement is disabled on the HEC token %s: enable it on the token, or set ack.enabled: false", s.target, msg)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		code == CodeServerBusy || (code >= CodeUnhealthyQueues && code <= CodeUnhealthyBoth):
		o.err = fmt.Errorf("%s: HEC is busy %s", s.target, msg)
		if d, ok := pipeline.ParseRetryAfter(h.Get("Retry-After"), s.now(), MaxRetryAfter); ok {
			o.err = &pipeline.RetryAfterError{Err: o.err, Delay: d}
		}
	case status >= 500 || code == CodeInternalError || status == http.StatusRequestTimeout:
		o.err = fmt.Errorf("%s: server error %s", s.target, msg)
	case status == http.StatusRequestEntityTooLarge:
		if n == 1 {
			o.err = fmt.Errorf("%s: event too large for HEC %s: raise max_content_length in Splunk's limits.conf", s.target, msg)
			o.permanent = true
		} else {
			o.err = fmt.Errorf("%s: request too large for HEC %s: lower max_body_bytes below Splunk's max_content_length", s.target, msg)
		}
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		o.err = fmt.Errorf("%s: HEC endpoint not found %s: check url (HEC port, usually 8088) and that HEC is enabled", s.target, msg)
	case status >= 300 && status < 400:
		o.err = fmt.Errorf("%s: unexpected redirect %s: redirects are not followed; set url to the HEC address", s.target, msg)
	case status >= 400:
		o.err = fmt.Errorf("%s: rejected %s", s.target, msg)
		o.permanent = true
		if !s.raw && rep.InvalidEvent != nil && *rep.InvalidEvent >= 0 && *rep.InvalidEvent < n {
			switch code {
			case CodeInvalidDataFormat, CodeEventRequired, CodeEventBlank:
				o.badEvent = *rep.InvalidEvent
			case CodeIncorrectIndex:
				o.badEvent, o.sameIndex = *rep.InvalidEvent, true
			}
		}
	default: // 1xx that reached us, or a nonsense code
		o.err = fmt.Errorf("%s: unexpected response %s", s.target, msg)
	}
	return o
}
