package cef

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

func TestAppendHeader(t *testing.T) {
	got := string(AppendHeader(nil, Header{
		DeviceVendor:  "Kaspersky Lab",
		DeviceProduct: "Kaspersky CyberTrace for ArcSight",
		DeviceVersion: "2.0",
		SignatureID:   "2",
		Name:          "CyberTrace Detection Event",
		Severity:      "8",
	}))
	want := "CEF:0|Kaspersky Lab|Kaspersky CyberTrace for ArcSight|2.0|2|CyberTrace Detection Event|8|"
	if got != want {
		t.Errorf("AppendHeader = %q, want %q", got, want)
	}

	got = string(AppendHeader([]byte("<134>"), Header{Version: -3, DeviceVendor: `a|b\c`, Name: "x\ny\rz", Severity: "="}))
	want = `<134>CEF:0|a\|b\\c||||x y z|=|`
	if got != want {
		t.Errorf("AppendHeader = %q, want %q", got, want)
	}
}

func TestAppendExtension(t *testing.T) {
	tests := []struct {
		dst, key, value, want string
	}{
		{"|", "src", "1.2.3.4", "|src=1.2.3.4"},
		{"", "src", "1.2.3.4", "src=1.2.3.4"},
		{"a=1", "b", "2", "a=1 b=2"},
		{"a=1 ", "b", "2", "a=1 b=2"},
		{"a=1", "b", "", "a=1"},
		{"a=1", "", "x", "a=1"},
		{"|", "msg", "a=b\\c\nd\re|f", `|msg=a\=b\\c\nd\re|f`},
		{"|", "msg", "ends|", "|msg=ends| "},
		{"|", "bad key=", "v", "|bad_key_=v"},
	}
	for _, tt := range tests {
		if got := string(AppendExtension([]byte(tt.dst), tt.key, []byte(tt.value))); got != tt.want {
			t.Errorf("AppendExtension(%q, %q, %q) = %q, want %q", tt.dst, tt.key, tt.value, got, tt.want)
		}
	}
}

// TestEncodeRoundTrip encodes nasty values and checks Parse reads them back.
func TestEncodeRoundTrip(t *testing.T) {
	h := Header{
		Version:       1,
		DeviceVendor:  `Vendor|With\Pipes||`,
		DeviceProduct: "CEF:0|fake|header",
		DeviceVersion: `\`,
		SignatureID:   "a=b c=d",
		Name:          "multi\nline\rname",
		Severity:      "",
	}
	values := []struct{ key, value string }{
		{"msg", "CyberTrace detected KL_Malicious_Hash_MD5"},
		{"request", "http://x/?a=b&c=d k=v"},
		{"act", `C:\Windows\x.exe \n literal \= too \`},
		{"cs1", "line1\nline2\r\nline3"},
		{"cs2", "pipe|"},
		{"cs3", " leading space and inner  double"},
		{"cs4", "=x= y=z ="},
		{"cs5", `\\\\`},
		{"cs6Label", "Context"},
		{"cs6", "first_seen:11.07.2019 22:11 url:http://a/b?c=d popularity:1"},
		{"ad.x[0]", "ünïcødé ✓"},
		{"trail", "trailing spaces   "},
		{"dash", "-"},
		{"spaces", "   "},
		{"empty", ""},
		{"last", "|"},
	}
	line := AppendHeader([]byte("<13>host "), h)
	for _, v := range values {
		line = AppendExtension(line, v.key, []byte(v.value))
	}
	var ev event.Event
	if err := Parse(line, &ev); err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	want := hdr("1", h.DeviceVendor, h.DeviceProduct, h.DeviceVersion, h.SignatureID, "multi line name", h.Severity)
	for _, v := range values {
		// Parse drops trailing spaces, empty values and "-".
		val := strings.TrimRight(v.value, " ")
		if val == "" || val == "-" {
			continue
		}
		want = append(want, field{"extension", v.key, val})
	}
	want = append(want, ctx("first_seen", "11.07.2019 22:11", "url", "http://a/b?c=d", "popularity", "1")...)
	if diff := cmp.Diff(want, fieldsOf(&ev)); diff != "" {
		t.Errorf("round trip of %q (-want +got):\n%s", line, diff)
	}
	if string(ev.Prefix) != "<13>host" {
		t.Errorf("Prefix = %q", ev.Prefix)
	}
}
