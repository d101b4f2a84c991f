package httpclient

import (
	"strings"
	"testing"
)

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name, raw string
		secrets   []string
		want      string
	}{
		{"plain", `{"error":"bad"}`, nil, `{"error":"bad"}`},
		{"controls", "line1\r\n\tline2\x00\x01end\n", nil, "line1 line2 end"},
		{"invalid utf8", "a\xffb", nil, "a?b"},
		{"long", long, nil, long[:256] + "..."},
		{"secret", "token s3cr3t-token echoed", []string{"s3cr3t-token"}, "token [redacted] echoed"},
		{"secret across the cut", strings.Repeat("y", 250) + "s3cr3t-token tail", []string{"s3cr3t-token"}, strings.Repeat("y", 250) + "[redacted]..."},
		{"secret after the cut", strings.Repeat("y", 256) + "s3cr3t-token", []string{"s3cr3t-token"}, strings.Repeat("y", 256) + "..."},
	} {
		var secrets [][]byte
		for _, s := range tc.secrets {
			secrets = append(secrets, []byte(s))
		}
		if got := Excerpt([]byte(tc.raw), secrets); got != tc.want {
			t.Errorf("%s: excerpt = %q, want %q", tc.name, got, tc.want)
		}
	}
}
