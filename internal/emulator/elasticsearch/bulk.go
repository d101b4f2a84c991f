package elasticsearch

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alertrelay/alertrelay/internal/emulator/emuhttp"
	"github.com/alertrelay/alertrelay/internal/event"
)

// maxIDBytes is Elasticsearch's limit on _id (UTF-8 bytes).
const maxIDBytes = 512

// ServeHTTP handles one request: latency, body, injected failure,
// authentication, routing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.got.Request(r.Header) // under mu, so that LastHeader and LastQuery are of one request
	s.query = r.URL.Query()
	latency := s.latency
	s.mu.Unlock()

	if !emuhttp.Delay(r.Context(), latency) {
		return // the connection closed meanwhile
	}
	raw, release, err := s.bufs.Read(r.Body, r.ContentLength, s.opt.MaxBodyBytes+1)
	defer release() // what is kept (stored sources) is copied out
	s.got.AddBytes(int64(len(raw)))
	s.mu.Lock()
	fail := s.failN > 0
	code, retryAfter := s.failCode, s.failRA
	if fail {
		s.failN--
	}
	s.mu.Unlock()
	if err != nil {
		return // the connection broke
	}
	if fail {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, code, errorType(code), "injected failure")
		return
	}
	if s.opt.Distribution == DistElasticsearch {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	if !s.authorized(r) {
		reason := "missing authentication credentials for REST request [" + r.URL.Path + "]"
		if r.Header.Get("Authorization") != "" {
			reason = "unable to authenticate with provided credentials"
		}
		w.Header().Add("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", "ApiKey")
		writeError(w, http.StatusUnauthorized, "security_exception", reason)
		return
	}

	path := strings.Trim(r.URL.Path, "/")
	switch {
	case path == "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		s.info(w, r)
	case path == "_bulk" || strings.HasSuffix(path, "/_bulk") && !strings.Contains(strings.TrimSuffix(path, "/_bulk"), "/"):
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			methodNotAllowed(w, r, "POST, PUT")
			return
		}
		target, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimSuffix(path, "_bulk"), "/"))
		s.bulk(w, r, raw, target)
	default:
		writeJSON(w, http.StatusBadRequest, fmt.Appendf(nil, `{"error":"no handler found for uri [%s] and method [%s]","status":400}`,
			jsonText(r.URL.Path), jsonText(r.Method)))
	}
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, fmt.Appendf(nil, `{"error":"Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]","status":405}`,
		jsonText(r.URL.Path), jsonText(r.Method), allow))
}

// info answers GET /.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if s.opt.Distribution == DistOpenSearch {
		body = fmt.Appendf(nil, `{"name":"emulator","cluster_name":"alertrelay-emulator","cluster_uuid":"alertrelay-emulator-uuid",`+
			`"version":{"distribution":"opensearch","number":"%s","build_type":"tar","build_snapshot":false,"lucene_version":"9.12.0",`+
			`"minimum_wire_compatibility_version":"7.10.0","minimum_index_compatibility_version":"7.0.0"},`+
			`"tagline":"The OpenSearch Project: https://opensearch.org/"}`, jsonText(s.opt.Version))
	} else {
		body = fmt.Appendf(nil, `{"name":"emulator","cluster_name":"alertrelay-emulator","cluster_uuid":"alertrelay-emulator-uuid",`+
			`"version":{"number":"%s","build_flavor":"default","build_type":"docker","build_snapshot":false,"lucene_version":"9.12.0",`+
			`"minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},`+
			`"tagline":"You Know, for Search"}`, jsonText(s.opt.Version))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// item is one action of a bulk request and, once applied, its outcome.
type item struct {
	action
	doc     []byte // source line; nil for delete
	eventID string
	hasTS   bool
	validJS bool

	// outcome
	status     int
	replyIndex string // _index in the reply
	result     string
	version    int
	seqNo      int64
	errType    string
	reason     string
}

// bulk parses, applies and answers a bulk request.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, raw []byte, target string) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "application/json", "application/x-ndjson", "application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson":
		default:
			writeJSON(w, http.StatusNotAcceptable, fmt.Appendf(nil, `{"error":"Content-Type header [%s] is not supported","status":406}`, jsonText(ct)))
			return
		}
	}
	if int64(len(raw)) > s.opt.MaxBodyBytes {
		w.WriteHeader(http.StatusRequestEntityTooLarge) // Elasticsearch sends no body
		return
	}
	data := raw
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			var release func()
			data, release, err = s.bufs.Read(zr, 10*int64(len(raw)), s.opt.MaxBodyBytes+1)
			defer release()
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "illegal_argument_exception", "failed to decompress the request body: "+err.Error())
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", "unsupported Content-Encoding ["+enc+"]")
		return
	}
	if int64(len(data)) > s.opt.MaxBodyBytes {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	items, status, typ, reason := s.parseBulk(data, target)
	if status != 0 {
		writeError(w, status, typ, reason)
		return
	}
	start := time.Now()
	errorsFlag := s.apply(items)
	writeJSON(w, http.StatusOK, appendResponse(nil, items, errorsFlag, time.Since(start), parseFilter(r.URL.Query().Get("filter_path"))))
}

// parseBulk splits data into items. A non-zero status is a whole-request
// error.
func (s *Server) parseBulk(data []byte, target string) (items []item, status int, typ, reason string) {
	line := 0
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return nil, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"
		}
		line++
		a, err := parseAction(data[:nl])
		data = data[nl+1:]
		if err != nil {
			return nil, 400, "illegal_argument_exception", fmt.Sprintf("Malformed action/metadata line [%d], %v", line, err)
		}
		if a.index == "" {
			a.index = target
		}
		it := item{action: a}
		if a.op != "delete" {
			nl = bytes.IndexByte(data, '\n')
			if nl < 0 {
				return nil, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"
			}
			line++
			it.doc = bytes.TrimRight(data[:nl], "\r")
			data = data[nl+1:]
			if !s.opt.DiscardDocs {
				doc := bytes.TrimSpace(it.doc)
				m, ok := event.ReadMeta(doc)
				it.validJS = ok && len(doc) > 0 && doc[0] == '{'
				it.hasTS = m.Timestamp != nil
				if m.ID != nil {
					it.eventID = string(event.Unquote(nil, m.ID))
				}
			}
		}
		items = append(items, it)
	}
	var problems []string
	for _, it := range items {
		if it.index == "" {
			problems = append(problems, fmt.Sprintf("%d: index is missing", len(problems)+1))
		}
		if len(it.id) > maxIDBytes {
			problems = append(problems, fmt.Sprintf("%d: id [%s] is too long, must be no longer than 512 bytes but was: %d",
				len(problems)+1, it.id, len(it.id)))
		}
		if (it.op == "delete" || it.op == "update") && !it.hasID {
			problems = append(problems, fmt.Sprintf("%d: id is missing", len(problems)+1))
		}
	}
	if len(items) == 0 {
		problems = append(problems, "1: no requests added")
	}
	if len(problems) > 0 {
		return nil, 400, "action_request_validation_exception", "Validation Failed: " + strings.Join(problems, ";") + ";"
	}
	return items, 0, "", ""
}

func (s *Server) isDataStream(name string) bool {
	for _, p := range s.opt.DataStreamPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// apply runs the items against the store, in order, and reports whether
// any failed.
func (s *Server) apply(items []item) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := false
	fail := func(it *item, status int, typ, reason string) {
		it.status, it.errType, it.reason = status, typ, reason
		failed = true
	}
	for i := range items {
		it := &items[i]
		s.items++
		ds := s.isDataStream(it.index)
		it.replyIndex = it.index
		if ds {
			it.replyIndex = ".ds-" + it.index + s.dsSuffix
		}
		switch it.op {
		case "update":
			fail(it, 400, "illegal_argument_exception", "the alertrelay emulator does not implement update")
			continue
		case "delete":
			k := docKey{it.index, it.id}
			if d, ok := s.store[k]; ok {
				delete(s.store, k)
				it.status, it.result, it.version = 200, "deleted", d.Version+1
			} else {
				it.status, it.result, it.version = 404, "not_found", 1
			}
			s.seq++
			it.seqNo = s.seq
			continue
		}
		if s.itemFailN > 0 {
			s.itemFailN--
			fail(it, s.itemFailCode, errorType(s.itemFailCode), itemFailReason(s.itemFailCode))
			continue
		}
		if len(s.rejSub) > 0 && bytes.Contains(it.doc, s.rejSub) {
			fail(it, 400, "mapper_parsing_exception", "failed to parse: document rejected by the emulator's RejectMatching rule")
			continue
		}
		if s.opt.DiscardDocs {
			s.accepted++
			s.seq++
			it.status, it.result, it.version, it.seqNo = 201, "created", 1, s.seq
			continue
		}
		if !it.validJS {
			fail(it, 400, "mapper_parsing_exception", "failed to parse: the source is not a JSON object")
			continue
		}
		if ds && it.op == "index" {
			fail(it, 400, "illegal_argument_exception",
				"only write ops with an op_type of create are allowed in data streams")
			continue
		}
		if ds && !it.hasTS {
			fail(it, 400, "document_parsing_exception", "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing")
			continue
		}
		if !it.hasID {
			s.autoID++
			it.id, it.hasID = "emu-"+strconv.FormatInt(s.autoID, 36), true
		}
		k := docKey{it.index, it.id}
		d, exists := s.store[k]
		if exists && it.op == "create" {
			s.conflicts++
			fail(it, 409, "version_conflict_engine_exception",
				fmt.Sprintf("[%s]: version conflict, document already exists (current version [%d])", it.id, d.Version))
			continue
		}
		var src []byte
		if !s.opt.IDsOnly {
			src = bytes.Clone(it.doc)
		}
		s.seq++
		s.accepted++
		it.seqNo = s.seq
		if exists {
			d.Version++
			d.Source, d.EventID = src, it.eventID
			it.status, it.result, it.version = 200, "updated", d.Version
			continue
		}
		eid := it.eventID
		if eid == it.id {
			eid = it.id // share the string
		}
		s.store[k] = &Doc{Index: it.index, ID: it.id, EventID: eid, Version: 1, Source: src}
		if !s.opt.IDsOnly {
			s.order = append(s.order, k)
		}
		it.status, it.result, it.version = 201, "created", 1
	}
	return failed
}

// errorType is the Elasticsearch exception type typical of a status.
func errorType(status int) string {
	switch status {
	case 400:
		return "mapper_parsing_exception"
	case 401, 403:
		return "security_exception"
	case 404:
		return "index_not_found_exception"
	case 409:
		return "version_conflict_engine_exception"
	case 429:
		return "es_rejected_execution_exception"
	case 503:
		return "unavailable_shards_exception"
	default:
		return "exception"
	}
}

func itemFailReason(status int) string {
	switch status {
	case 429:
		return "rejected execution of coordinating operation [injected by the emulator]"
	case 503:
		return "[emulator][0] primary shard is not active Timeout: [1m]"
	case 404:
		return "no such index [injected by the emulator]"
	default:
		return "injected item failure"
	}
}

// filter is a parsed filter_path.
type filter struct {
	all         bool // no filter_path
	took        bool
	errors      bool
	itemsAll    bool
	itemFields  map[string]bool
	anyItemKeys bool
}

func parseFilter(fp string) filter {
	if fp == "" {
		return filter{all: true}
	}
	f := filter{itemFields: map[string]bool{}}
	for _, p := range strings.Split(fp, ",") {
		switch p = strings.TrimSpace(p); {
		case p == "took":
			f.took = true
		case p == "errors":
			f.errors = true
		case p == "items" || p == "items.*" || p == "items.**":
			f.itemsAll = true
		case strings.HasPrefix(p, "items.*."):
			f.itemFields[strings.TrimPrefix(p, "items.*.")] = true
			f.anyItemKeys = true
		}
	}
	return f
}

func (f filter) field(name string) bool { return f.all || f.itemsAll || f.itemFields[name] }

// appendResponse renders the bulk reply.
func appendResponse(b []byte, items []item, errorsFlag bool, took time.Duration, f filter) []byte {
	b = append(b, '{')
	sep := false
	comma := func() {
		if sep {
			b = append(b, ',')
		}
		sep = true
	}
	if f.all || f.took {
		comma()
		b = append(b, `"took":`...)
		b = strconv.AppendInt(b, took.Milliseconds(), 10)
	}
	if f.all || f.errors {
		comma()
		b = append(b, `"errors":`...)
		b = strconv.AppendBool(b, errorsFlag)
	}
	if f.all || f.itemsAll || f.anyItemKeys {
		mark := len(b)
		comma()
		b = append(b, `"items":[`...)
		n := 0
		for i := range items {
			b, n = appendItem(b, &items[i], f, n)
		}
		if n == 0 && !f.all {
			b = b[:mark] // Elasticsearch drops what the filter emptied
		} else {
			b = append(b, ']')
		}
	}
	return append(b, '}')
}

// appendItem renders one item; n counts the items written so far.
func appendItem(b []byte, it *item, f filter, n int) ([]byte, int) {
	mark := len(b)
	if n > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"`...)
	b = append(b, it.op...)
	b = append(b, `":{`...)
	inner := len(b)
	field := func(name string) bool {
		if !f.field(name) {
			return false
		}
		if len(b) > inner {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		return true
	}
	if field("_index") {
		b = appendString(b, it.replyIndex)
	}
	if field("_id") {
		b = appendString(b, it.id)
	}
	if it.errType == "" {
		if field("_version") {
			b = strconv.AppendInt(b, int64(it.version), 10)
		}
		if field("result") {
			b = appendString(b, it.result)
		}
		if field("_shards") {
			b = append(b, `{"total":2,"successful":1,"failed":0}`...)
		}
		if field("_seq_no") {
			b = strconv.AppendInt(b, it.seqNo, 10)
		}
		if field("_primary_term") {
			b = append(b, '1')
		}
	}
	if field("status") {
		b = strconv.AppendInt(b, int64(it.status), 10)
	}
	if it.errType != "" && field("error") {
		b = append(b, `{"type":`...)
		b = appendString(b, it.errType)
		b = append(b, `,"reason":`...)
		b = appendString(b, it.reason)
		b = append(b, `,"index_uuid":"emulator","shard":"0","index":`...)
		b = appendString(b, it.replyIndex)
		b = append(b, '}')
	}
	if len(b) == inner {
		return b[:mark], n
	}
	return append(b, "}}"...), n + 1
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes Elasticsearch's error body.
func writeError(w http.ResponseWriter, status int, typ, reason string) {
	var b []byte
	b = append(b, `{"error":{"root_cause":[{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `}],"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `},"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, '}')
	writeJSON(w, status, b)
}

// jsonText is s escaped for use between JSON quotes.
func jsonText(s string) string {
	b := appendString(nil, s)
	return string(b[1 : len(b)-1])
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
