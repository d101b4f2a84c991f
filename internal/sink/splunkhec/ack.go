package splunkhec

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/alertrelay/alertrelay/internal/httpclient"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// firstAckPoll is the pause before the first acknowledgement poll; the
// pause doubles after each poll up to ack.poll_interval. A healthy indexer
// acknowledges within a fraction of a second, and with acknowledgement
// every Write waits for it, so polling early is worth a few more polls.
const firstAckPoll = 50 * time.Millisecond

// awaitAcks polls HEC until every pending request is acknowledged or
// ack.timeout has passed, after firstAckPoll, then at doubling intervals
// up to ack.poll_interval. It returns the parts not acknowledged in time
// and the error of the last poll if it failed. err is set only when ctx
// ended.
func (s *Sink) awaitAcks(ctx context.Context, pending []pendingAck) (unacked []int, pollErr, err error) {
	deadline := time.Now().Add(s.cfg.Ack.Timeout)
	pause := min(firstAckPoll, s.cfg.Ack.PollInterval)
	for len(pending) > 0 {
		wait := min(pause, time.Until(deadline))
		pause = min(2*pause, s.cfg.Ack.PollInterval)
		if wait > 0 {
			if err := pipeline.Sleep(ctx, wait); err != nil {
				return nil, nil, fmt.Errorf("%s: waiting for acknowledgements: %w", s.target, err)
			}
		}
		acked, perr := s.pollAcks(ctx, pending)
		if cerr := ctx.Err(); cerr != nil {
			return nil, nil, fmt.Errorf("%s: waiting for acknowledgements: %w", s.target, cerr)
		}
		pollErr = perr
		if perr != nil {
			s.log.Debug("acknowledgement poll failed", "err", perr)
		} else {
			keep := pending[:0]
			for _, p := range pending {
				if !acked[p.id] {
					keep = append(keep, p)
				}
			}
			pending = keep
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	for _, p := range pending {
		unacked = append(unacked, p.part)
	}
	return unacked, pollErr, nil
}

// ackReply is the reply of /services/collector/ack: {"acks":{"3":true}}.
type ackReply struct {
	Acks map[string]bool `json:"acks"`
}

// pollAcks asks HEC which of the pending ackIds are indexed.
func (s *Sink) pollAcks(ctx context.Context, pending []pendingAck) (map[int64]bool, error) {
	b := append(s.ackBody[:0], `{"acks":[`...)
	for i, p := range pending {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, p.id, 10)
	}
	b = append(b, ']', '}')
	s.ackBody = b
	body := httpclient.NewBody(b)
	defer body.Release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ackURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.target, err)
	}
	req.Header = s.ackHeader.Clone()
	body.Attach(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.transportError(ctx, err)
	}
	status, raw, rep := s.readReply(resp)
	if status != http.StatusOK {
		return nil, s.interpret(status, resp.Header, raw, rep, 0).err
	}
	var ar ackReply
	if err := json.Unmarshal(raw, &ar); err != nil || ar.Acks == nil {
		return nil, fmt.Errorf("%s: unexpected acknowledgement reply: %s", s.target, httpclient.Excerpt(raw, s.secrets))
	}
	acked := make(map[int64]bool, len(ar.Acks))
	for k, v := range ar.Acks {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil && v {
			acked[id] = true
		}
	}
	return acked, nil
}
