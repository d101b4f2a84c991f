package syslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/format/cef"
)

// doc is what the sink reads from an ECS document (docs/events.md). Every
// field is a text so that an unexpected type (a number where a string was
// expected, an array from a repeated vendor key) degrades to its text
// instead of failing the event.
type doc struct {
	Timestamp text `json:"@timestamp"`
	Event     struct {
		ID       text `json:"id"`
		Kind     text `json:"kind"`
		Dataset  text `json:"dataset"`
		Provider text `json:"provider"`
		Action   text `json:"action"`
		Severity text `json:"severity"`
		Original text `json:"original"`
	} `json:"event"`
	Observer struct {
		Vendor  text `json:"vendor"`
		Product text `json:"product"`
	} `json:"observer"`
	Message text `json:"message"`
	Rule    struct {
		Name        text `json:"name"`
		Description text `json:"description"`
	} `json:"rule"`
	Host struct {
		Name text `json:"name"`
		IP   text `json:"ip"`
	} `json:"host"`
	User struct {
		Name text `json:"name"`
	} `json:"user"`
	Source struct {
		IP text `json:"ip"`
	} `json:"source"`
	Destination struct {
		IP     text `json:"ip"`
		Domain text `json:"domain"`
	} `json:"destination"`
	URL struct {
		Full text `json:"full"`
	} `json:"url"`
	File struct {
		Path text `json:"path"`
		Name text `json:"name"`
		Hash struct {
			MD5    text `json:"md5"`
			SHA1   text `json:"sha1"`
			SHA256 text `json:"sha256"`
		} `json:"hash"`
	} `json:"file"`
	Process struct {
		CommandLine text `json:"command_line"`
	} `json:"process"`
	Threat struct {
		Feed struct {
			Name text `json:"name"`
		} `json:"feed"`
		Indicator struct {
			Name       text `json:"name"`
			Confidence text `json:"confidence"`
		} `json:"indicator"`
	} `json:"threat"`
	Cybertrace struct {
		Category   text            `json:"category"`
		Alert      text            `json:"alert"`
		Confidence text            `json:"confidence"`
		IP         text            `json:"ip"`
		Context    json.RawMessage `json:"context"`
	} `json:"cybertrace"`
	Cynet struct {
		AlertTypeName text `json:"alert_type_name"`
	} `json:"cynet"`
}

// text decodes a JSON string as itself, a number or boolean as its text,
// an array as its elements' texts joined by ",", and null or an object as
// "".
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 {
			*t = text(b[1 : len(b)-1]) // no escapes: the text is the body
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case '[':
		var parts []text
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		ss := make([]string, 0, len(parts))
		for _, p := range parts {
			if p != "" {
				ss = append(ss, string(p))
			}
		}
		*t = text(strings.Join(ss, ","))
	case '{', 'n':
		*t = ""
	default:
		*t = text(b)
	}
	return nil
}

// errNotObject: the document is not a JSON object.
var errNotObject = errors.New("document is not a JSON object")

// sevDoc is the part of a document the per-event severity needs.
type sevDoc struct {
	Event struct {
		Kind     text `json:"kind"`
		Severity text `json:"severity"`
	} `json:"event"`
}

// decodeSeverity decodes only what syslogSeverity reads.
func decodeSeverity(b []byte) (*doc, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errNotObject
	}
	var sd sevDoc
	if err := json.Unmarshal(b, &sd); err != nil {
		return nil, err
	}
	d := &doc{}
	d.Event.Kind, d.Event.Severity = sd.Event.Kind, sd.Event.Severity
	return d, nil
}

// decodeDoc decodes the fields of b the sink uses.
func decodeDoc(b []byte) (*doc, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errNotObject
	}
	d := &doc{}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, err
	}
	return d, nil
}

// CEF custom-string slots and their labels (cs1 … cs6).
const (
	labelMatchedIndicator = "MatchedIndicator" // cs1: threat.indicator.name
	labelFeed             = "Feed"             // cs2: threat.feed.name
	labelConfidence       = "Confidence"       // cs3: cybertrace.confidence / threat.indicator.confidence
	labelCommandLine      = "CommandLine"      // cs4: process.command_line
	labelProvider         = "Provider"         // cs5: event.provider (alertrelay source name)
	labelContext          = "Context"          // cs6: cybertrace.context as "Name:Value " items
)

// cefSeverity is the CEF severity (0-10) of d:
//
//	cynet.alert, event.severity 1 (Information) 1, 2 (Low) 3, 3 (Medium) 5,
//	    4 (High) 8, 5 (Critical) 10, anything else 5
//	cybertrace.detection, threat.indicator.confidence High 8, Medium 5,
//	    Low 3, None 1, absent 5
//	cybertrace.service_alert 3
//	cybertrace.lookup_finished 1
//	anything else: event.severity as for Cynet when present, else 5
func cefSeverity(d *doc) int {
	switch d.Event.Dataset {
	case "cybertrace.detection":
		switch strings.ToLower(string(d.Threat.Indicator.Confidence)) {
		case "high":
			return 8
		case "medium":
			return 5
		case "low":
			return 3
		case "none":
			return 1
		}
		return 5
	case "cybertrace.service_alert":
		return 3
	case "cybertrace.lookup_finished":
		return 1
	}
	switch d.Event.Severity {
	case "1":
		return 1
	case "2":
		return 3
	case "3":
		return 5
	case "4":
		return 8
	case "5":
		return 10
	}
	return 5
}

// syslogSeverity is the syslog severity of d when Config.Severity is
// empty: Cynet's event.severity 1 info, 2 notice, 3 warning, 4 err,
// 5 crit; otherwise warning for event.kind alert and notice for the rest.
func syslogSeverity(d *doc) int {
	switch d.Event.Severity {
	case "1":
		return SevInfo
	case "2":
		return SevNotice
	case "3":
		return SevWarning
	case "4":
		return SevError
	case "5":
		return SevCritical
	}
	if d.Event.Kind == "alert" {
		return SevWarning
	}
	return SevNotice
}

// appendCEF appends the CEF record of d (see docs/sinks/syslog.md for the
// mapping) to dst.
func appendCEF(dst []byte, d *doc) []byte {
	vendor, product := string(d.Observer.Vendor), string(d.Observer.Product)
	if vendor == "" {
		vendor = "alertrelay"
	}
	if product == "" {
		product = "alertrelay"
	}
	sig := firstOf(d.Cybertrace.Category, d.Cybertrace.Alert, d.Cynet.AlertTypeName, d.Event.Action, d.Event.Dataset)
	name := firstOf(d.Message, d.Rule.Name, d.Threat.Feed.Name, d.Cybertrace.Category, d.Cybertrace.Alert, d.Event.Action, d.Event.Dataset)
	dst = cef.AppendHeader(dst, cef.Header{
		DeviceVendor:  vendor,
		DeviceProduct: product,
		SignatureID:   sig,
		Name:          name,
		Severity:      strconv.Itoa(cefSeverity(d)),
	})

	ext := func(key string, v text) {
		dst = cef.AppendExtension(dst, key, []byte(v))
	}
	labelled := func(n int, label string, v text) {
		if v == "" {
			return
		}
		k := "cs" + strconv.Itoa(n)
		dst = cef.AppendExtension(dst, k+"Label", []byte(label))
		dst = cef.AppendExtension(dst, k, []byte(v))
	}
	if t, err := time.Parse(time.RFC3339Nano, string(d.Timestamp)); err == nil {
		dst = cef.AppendExtension(dst, "rt", strconv.AppendInt(nil, t.UnixMilli(), 10))
	}
	ext("externalId", d.Event.ID)
	ext("cat", d.Event.Dataset)
	ext("act", d.Event.Action)
	srcIP := firstText(d.Source.IP, d.Host.IP)
	dstIP := firstText(d.Destination.IP, d.Cybertrace.IP)
	ext("src", ipv4(srcIP))
	ext("shost", d.Host.Name)
	ext("dst", ipv4(dstIP))
	ext("dhost", d.Destination.Domain)
	ext("suser", d.User.Name)
	ext("request", d.URL.Full)
	ext("fileHash", firstText(d.File.Hash.SHA256, d.File.Hash.SHA1, d.File.Hash.MD5))
	ext("fname", d.File.Name)
	ext("filePath", d.File.Path)
	ext("msg", d.Rule.Description)
	labelled(1, labelMatchedIndicator, d.Threat.Indicator.Name)
	labelled(2, labelFeed, d.Threat.Feed.Name)
	labelled(3, labelConfidence, firstText(d.Cybertrace.Confidence, d.Threat.Indicator.Confidence))
	labelled(4, labelCommandLine, d.Process.CommandLine)
	labelled(5, labelProvider, d.Event.Provider)
	labelled(6, labelContext, contextItems(d.Cybertrace.Context))
	if v := ipv6(srcIP); v != "" {
		dst = cef.AppendExtension(dst, "c6a2Label", []byte("Source IPv6 Address"))
		dst = cef.AppendExtension(dst, "c6a2", []byte(v))
	}
	if v := ipv6(dstIP); v != "" {
		dst = cef.AppendExtension(dst, "c6a3Label", []byte("Destination IPv6 Address"))
		dst = cef.AppendExtension(dst, "c6a3", []byte(v))
	}
	return dst
}

func firstText(vs ...text) text {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstOf(vs ...text) string { return string(firstText(vs...)) }

// ipv4 returns v if it is one IPv4 address, else "": CEF's src and dst
// are typed as IPv4 addresses and a SIEM rejects anything else.
func ipv4(v text) text {
	if a, err := netip.ParseAddr(string(v)); err != nil || !a.Is4() {
		return ""
	}
	return v
}

// ipv6 returns v if it is one IPv6 address, else "": it goes to the
// custom IPv6 address fields c6a2 (source) and c6a3 (destination).
func ipv6(v text) text {
	if a, err := netip.ParseAddr(string(v)); err != nil || !a.Is6() || a.Is4In6() {
		return ""
	}
	return v
}

// contextItems renders a cybertrace.context object as CyberTrace's own
// ArcSight output does: "Name:Value" items separated by spaces, in
// document order; an array value is joined with ",".
func contextItems(raw json.RawMessage) text {
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	var b strings.Builder
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return text(b.String())
		}
		key, _ := tok.(string)
		var v text
		if err := dec.Decode(&v); err != nil {
			return text(b.String())
		}
		if key == "" || v == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(key)
		b.WriteByte(':')
		b.WriteString(string(v))
	}
	return text(b.String())
}
