package splunkhec

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/alertrelay/alertrelay/internal/event"
)

// notFoundText is Splunk's reply text for an unknown path (code 404).
const notFoundText = "The requested URL was not found on this server."

// ServeHTTP handles one request: routing, body, injected failure, method,
// authentication, channel, decoding, then the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.got.Request(r.Header)

	var kind string
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/services/collector", "/services/collector/1.0", "/services/collector/event", "/services/collector/event/1.0":
		kind = "event"
	case "/services/collector/raw", "/services/collector/raw/1.0":
		kind = "raw"
	case "/services/collector/ack", "/services/collector/ack/1.0":
		kind = "ack"
	case "/services/collector/health", "/services/collector/health/1.0":
		s.health(w)
		return
	default:
		writeReply(w, http.StatusNotFound, 404, notFoundText, "")
		return
	}

	raw, release, err := s.bufs.Read(r.Body, r.ContentLength, s.opt.MaxBodyBytes+1)
	defer release() // everything kept is copied out of the body
	s.got.AddBytes(int64(len(raw)))
	s.mu.Lock()
	failing := false
	if s.failSkip > 0 {
		s.failSkip--
	} else if s.failN > 0 {
		failing = true
		s.failN--
	}
	f := s.fail
	if kind == "ack" {
		s.ackPolls++
	}
	s.mu.Unlock()
	if err != nil {
		return // the connection broke: nothing to answer
	}
	if failing {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.code < 0 {
			http.Error(w, "injected failure", f.status)
		} else {
			writeReply(w, f.status, f.code, CodeText(f.code), "")
		}
		return
	}
	if r.Method != http.MethodPost {
		// Splunk answers a GET on the collector with 405 and a body that
		// says 404.
		writeReply(w, http.StatusMethodNotAllowed, 404, notFoundText, "")
		return
	}
	if status, code := s.authenticate(r); code >= 0 {
		writeReply(w, status, code, CodeText(code), "")
		return
	}
	if int64(len(raw)) > s.opt.MaxBodyBytes {
		http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if channel == "" {
		channel = r.URL.Query().Get("channel")
	}
	if kind == "ack" && !s.opt.Ack {
		writeReply(w, http.StatusBadRequest, CodeAckDisabled, CodeText(CodeAckDisabled), "")
		return
	}
	if s.opt.Ack || kind == "ack" {
		switch {
		case channel == "":
			writeReply(w, http.StatusBadRequest, CodeChannelMissing, CodeText(CodeChannelMissing), "")
			return
		case !isGUID(channel):
			writeReply(w, http.StatusBadRequest, CodeInvalidChannel, CodeText(CodeInvalidChannel), "")
			return
		}
	}
	data, release, ok := s.decode(w, r, raw)
	if !ok {
		return
	}
	defer release()
	switch kind {
	case "ack":
		s.ack(w, channel, data)
	case "event":
		if len(bytes.TrimSpace(data)) == 0 {
			writeReply(w, http.StatusBadRequest, CodeNoData, CodeText(CodeNoData), "")
			return
		}
		s.handleEvents(w, channel, data)
	case "raw":
		if len(bytes.TrimSpace(data)) == 0 {
			writeReply(w, http.StatusBadRequest, CodeNoData, CodeText(CodeNoData), "")
			return
		}
		s.handleRaw(w, r, channel, data)
	}
}

// writeReply writes {"text":text,"code":code<extra>}.
func writeReply(w http.ResponseWriter, status, code int, text, extra string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	b := make([]byte, 0, 64+len(extra))
	b = append(b, `{"text":`...)
	b = strconv.AppendQuote(b, text)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, extra...)
	b = append(b, '}')
	_, _ = w.Write(b)
}

func (s *Server) health(w http.ResponseWriter) {
	s.mu.Lock()
	sick := s.sick
	s.mu.Unlock()
	if sick {
		writeReply(w, http.StatusServiceUnavailable, CodeUnhealthyQueues, CodeText(CodeUnhealthyQueues), "")
		return
	}
	writeReply(w, http.StatusOK, CodeHealthy, CodeText(CodeHealthy), "")
}

// authenticate returns the status and HEC code of an authentication
// failure, or code -1.
func (s *Server) authenticate(r *http.Request) (int, int) {
	s.mu.Lock()
	disabled := s.disabled
	s.mu.Unlock()
	if s.opt.Token != "" {
		h := r.Header.Get("Authorization")
		switch {
		case h == "":
			return http.StatusUnauthorized, CodeTokenRequired
		case !strings.HasPrefix(h, "Splunk "):
			return http.StatusUnauthorized, CodeInvalidAuthorization
		case subtle.ConstantTimeCompare([]byte(h[len("Splunk "):]), []byte(s.opt.Token)) != 1:
			return http.StatusForbidden, CodeInvalidToken
		}
	}
	if disabled {
		return http.StatusForbidden, CodeTokenDisabled
	}
	return 0, -1
}

// decode undoes Content-Encoding; on failure it has answered. The caller
// calls release once done with the data.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, raw []byte) (data []byte, release func(), ok bool) {
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return raw, func() {}, true
	case "gzip":
		zr, _ := s.gzPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(raw))
		} else {
			err = zr.Reset(bytes.NewReader(raw))
		}
		var data []byte
		release := func() {}
		if err == nil {
			data, release, err = s.bufs.Read(zr, 10*int64(len(raw)), s.opt.MaxBodyBytes+1)
			s.gzPool.Put(zr)
		}
		if err != nil {
			release()
			writeReply(w, http.StatusBadRequest, CodeInvalidDataFormat, CodeText(CodeInvalidDataFormat), "")
			return nil, nil, false
		}
		if int64(len(data)) > s.opt.MaxBodyBytes {
			release()
			http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
			return nil, nil, false
		}
		s.mu.Lock()
		s.gzipped++
		s.mu.Unlock()
		return data, release, true
	default:
		http.Error(w, "unsupported Content-Encoding "+strconv.Quote(enc), http.StatusUnsupportedMediaType)
		return nil, nil, false
	}
}

// handleEvents checks and records an /event body.
func (s *Server) handleEvents(w http.ResponseWriter, channel string, data []byte) {
	strict := !s.opt.IDsOnly && !s.opt.DiscardDocs
	envs, serr := scanEvents(nil, data, strict)
	if s.indexes != nil {
		for n, e := range envs {
			if e.index != nil && !s.indexes[unquote(e.index)] {
				serr, envs = &scanError{CodeIncorrectIndex, n}, envs[:n]
				break
			}
		}
	}
	if serr != nil {
		if s.opt.IndexBeforeInvalid {
			s.record(s.eventsOf(channel, envs), len(envs), channel, false)
		}
		writeReply(w, http.StatusBadRequest, serr.code, CodeText(serr.code), `,"invalid-event-number":`+strconv.Itoa(serr.event))
		return
	}
	s.succeed(w, channel, s.eventsOf(channel, envs), len(envs))
}

// eventsOf renders envelopes as Events (only their IDs with IDsOnly,
// nothing with DiscardDocs).
func (s *Server) eventsOf(channel string, envs []envelope) []Event {
	if s.opt.DiscardDocs {
		return nil
	}
	evs := make([]Event, len(envs))
	for i, e := range envs {
		evs[i].ID = eventID(e.event)
		if s.opt.IDsOnly {
			continue
		}
		evs[i].Endpoint, evs[i].Channel = "event", channel
		evs[i].Time = string(bytes.Trim(e.time, `"`))
		evs[i].Host, evs[i].Source = unquote(e.host), unquote(e.source)
		evs[i].Sourcetype, evs[i].Index = unquote(e.sourcetype), unquote(e.index)
		evs[i].Fields, evs[i].Event = string(e.fields), string(e.event)
	}
	return evs
}

// handleRaw checks and records a /raw body.
func (s *Server) handleRaw(w http.ResponseWriter, r *http.Request, channel string, data []byte) {
	q := r.URL.Query()
	index := q.Get("index")
	if index != "" && s.indexes != nil && !s.indexes[index] {
		writeReply(w, http.StatusBadRequest, CodeIncorrectIndex, CodeText(CodeIncorrectIndex), "")
		return
	}
	lines := splitLines(data)
	var evs []Event
	if !s.opt.DiscardDocs {
		evs = make([]Event, len(lines))
		for i, l := range lines {
			if len(l) > 0 && l[0] == '{' {
				evs[i].ID = eventID(l)
			}
			if s.opt.IDsOnly {
				continue
			}
			evs[i] = Event{Endpoint: "raw", Channel: channel, Host: q.Get("host"), Source: q.Get("source"),
				Sourcetype: q.Get("sourcetype"), Index: index, Event: string(l), ID: evs[i].ID}
		}
	}
	s.succeed(w, channel, evs, len(lines))
}

// succeed records n events and answers Success, with an ackId when the
// token has acknowledgement.
func (s *Server) succeed(w http.ResponseWriter, channel string, evs []Event, n int) {
	extra := ""
	if ackID := s.record(evs, n, channel, s.opt.Ack); ackID >= 0 {
		extra = `,"ackId":` + strconv.FormatInt(ackID, 10)
	}
	writeReply(w, http.StatusOK, CodeSuccess, CodeText(CodeSuccess), extra)
}

// record stores n events (evs, if kept). With ack it assigns the request
// the next ackId of its channel, which turns true after the indexing delay
// (never, while NeverAckNext lasts), and returns it; otherwise -1.
func (s *Server) record(evs []Event, n int, channel string, ack bool) int64 {
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got.Add(n, ids...)
	if !s.opt.IDsOnly && !s.opt.DiscardDocs {
		s.events = append(s.events, evs...)
	}
	if !ack {
		return -1
	}
	ch := s.channels[channel]
	if ch == nil {
		ch = &ackChannel{pending: map[int64]time.Time{}}
		s.channels[channel] = ch
	}
	id := ch.next
	ch.next++
	at := time.Now().Add(s.ackDelay)
	if s.neverAck > 0 {
		s.neverAck--
		at = time.Time{}
	}
	ch.pending[id] = at
	return id
}

// eventID returns the event.id of a JSON document, or "".
func eventID(doc []byte) string {
	m, _ := event.ReadRouting(doc)
	if m.ID == nil {
		return ""
	}
	if bytes.IndexByte(m.ID, '\\') < 0 {
		return string(m.ID)
	}
	return string(event.Unquote(nil, m.ID))
}

// unquote returns the text of a JSON string value, or "" for nil.
func unquote(v []byte) string {
	if !isString(v) {
		return string(v)
	}
	return string(event.Unquote(nil, v[1:len(v)-1]))
}

// ack answers an acknowledgement query.
func (s *Server) ack(w http.ResponseWriter, channel string, data []byte) {
	var q struct {
		Acks []int64 `json:"acks"`
	}
	if err := json.Unmarshal(data, &q); err != nil || q.Acks == nil {
		writeReply(w, http.StatusBadRequest, CodeInvalidDataFormat, CodeText(CodeInvalidDataFormat), "")
		return
	}
	now := time.Now()
	b := []byte(`{"acks":{`)
	s.mu.Lock()
	ch := s.channels[channel]
	for i, id := range q.Acks {
		done := false
		if ch != nil {
			if at, ok := ch.pending[id]; ok && !at.IsZero() && !now.Before(at) {
				done = true
				delete(ch.pending, id) // reported once, then forgotten
			}
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `":`...)
		b = strconv.AppendBool(b, done)
	}
	s.mu.Unlock()
	b = append(b, "}}"...)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// isGUID reports whether s has the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
// in hexadecimal.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
