package httpclient

import (
	"net/textproto"
	"sort"
	"strings"

	"github.com/alertrelay/alertrelay/internal/config"
)

// framingHeaders are set by the sink or by net/http and may never be
// configured.
var framingHeaders = []string{
	"Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Upgrade", "Te", "Trailer", "Host", "Expect",
}

// ValidateHeaders checks a sink's `headers:` block: every name an RFC 9110
// token, no framing header, none of alsoReserved (canonical names the sink
// sets itself), no Authorization when the sink's own auth is configured,
// and no control character in a value. Errors are keyed "headers.<name>",
// sorted by name, and never quote a value (it may be a secret).
func ValidateHeaders(headers map[string]string, authConfigured bool, alsoReserved ...string) []error {
	reserved := map[string]bool{}
	for _, h := range append(framingHeaders, alsoReserved...) {
		reserved[h] = true
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []error
	for _, k := range names {
		field := "headers." + k
		switch canon := textproto.CanonicalMIMEHeaderKey(k); {
		case !ValidHeaderName(k):
			errs = append(errs, config.Errorf(field, "is not a valid header name"))
		case reserved[canon]:
			errs = append(errs, config.Errorf(field, "is set by the sink and cannot be configured"))
		case canon == "Authorization" && authConfigured:
			errs = append(errs, config.Errorf(field, "conflicts with auth: set one or the other"))
		}
		if !ValidHeaderValue(headers[k]) {
			errs = append(errs, config.Errorf(field, "value contains a control character (CR, LF, NUL...)"))
		}
	}
	return errs
}

// ValidHeaderName reports whether k is an RFC 9110 token.
func ValidHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidHeaderValue reports whether v has no control character other than
// horizontal tab (a CR or LF would let a value inject headers).
func ValidHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
