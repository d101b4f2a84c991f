package httpclient

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateHeaders(t *testing.T) {
	h := map[string]string{
		"X-Tenant":       "acme",
		"bad name":       "v",
		"content-length": "1",
		"Content-Type":   "text/plain",
		"Authorization":  "Bearer s3cr3t",
		"X-Inject":       "a\r\nHost: evil",
	}
	var got []string
	for _, e := range ValidateHeaders(h, true, "Content-Type") {
		got = append(got, e.Error())
		if strings.Contains(e.Error(), "s3cr3t") || strings.Contains(e.Error(), "evil") {
			t.Errorf("error quotes a value: %v", e)
		}
	}
	want := []string{
		"headers.Authorization: conflicts with auth: set one or the other",
		"headers.Content-Type: is set by the sink and cannot be configured",
		"headers.X-Inject: value contains a control character (CR, LF, NUL...)",
		"headers.bad name: is not a valid header name",
		"headers.content-length: is set by the sink and cannot be configured",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if errs := ValidateHeaders(map[string]string{"Content-Type": "x", "Authorization": "y"}, false); len(errs) != 0 {
		t.Errorf("allowed without auth or reservation: %v", errs)
	}
}
