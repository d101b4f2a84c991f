package cynet

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodePage(t *testing.T) {
	sync := time.Date(2025, 3, 1, 8, 5, 12, 407e6, time.UTC)
	for _, tt := range []struct {
		name string
		body string
		want []string
		sync time.Time
		err  bool
	}{
		{name: "envelope (spec A10)", body: `{"SyncTimeUtc":"2025-03-01T08:05:12.407Z",
 "Entities":[{"ClientDbId":88231,"Path":"c:\\users\\bob\\inv.exe","IncidentJsonDescription":"{\"a\":\"]}\"}"},
  {"ClientDbId":2, "Tags":[1,[2,{"x":"}"}]]} ]}`,
			want: []string{`{"ClientDbId":88231,"Path":"c:\\users\\bob\\inv.exe","IncidentJsonDescription":"{\"a\":\"]}\"}"}`, `{"ClientDbId":2, "Tags":[1,[2,{"x":"}"}]]}`},
			sync: sync},
		{name: "members in another order, unknown ones", body: `{"Extra":{"a":[1]},"Entities":[{"ClientDbId":1}],"SyncTimeUtc":"2025-03-01T08:05:12.407Z","n":null}`,
			want: []string{`{"ClientDbId":1}`}, sync: sync},
		{name: "empty page", body: `{"SyncTimeUtc":"2025-03-01T08:05:12.407Z","Entities":[]}`, sync: sync},
		{name: "null entities", body: `{"SyncTimeUtc":"2025-03-01T08:05:12.407Z","Entities":null}`, sync: sync},
		{name: "no entities member", body: `{"SyncTimeUtc":"2025-03-01T08:05:12.407Z"}`, sync: sync},
		{name: "bare array", body: ` [ {"ClientDbId":1} , {"ClientDbId":2} ] `, want: []string{`{"ClientDbId":1}`, `{"ClientDbId":2}`}},
		{name: "null", body: `null`},
		{name: "empty body", body: ``},
		{name: "html", body: `<html><body>502 Bad Gateway</body></html>`, err: true},
		{name: "cut short", body: `{"SyncTimeUtc":"2025-03-01T08:05:12.407Z","Entities":[{"ClientDbId":1},{"Client`, err: true},
		{name: "entities not an array", body: `{"Entities":{"ClientDbId":1}}`, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodePage(strings.NewReader(tt.body), nil)
			if tt.err {
				var r *retryable
				if !errors.As(err, &r) {
					t.Fatalf("err = %v, want a retryable error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.entities {
				got = append(got, string(e))
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("entities (-want +got):\n%s", d)
			}
			if !p.sync.Equal(tt.sync) {
				t.Errorf("sync = %v, want %v", p.sync, tt.sync)
			}
		})
	}
}

// FuzzDecodePage: never panics, and whenever encoding/json accepts the
// body as an envelope or array, the entities found are exactly the ones
// encoding/json finds.
func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{`{"SyncTimeUtc":"2025-03-01T08:05:12.407Z","Entities":[{"ClientDbId":1,"a":"]\"}"}]}`,
		`[{"a":1},{"b":[2]}]`, `null`, `{"Entities":null}`, `{"Entities":[1,"x",true,null,{}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(strings.NewReader(string(body)), nil)
		var env struct{ Entities []json.RawMessage }
		var arr []json.RawMessage
		var want []json.RawMessage
		switch {
		case json.Unmarshal(body, &arr) == nil:
			want = arr
		case json.Unmarshal(body, &env) == nil:
			want = env.Entities
		default:
			return // not valid JSON of either shape: any error or result is fine
		}
		if err != nil {
			t.Fatalf("valid body rejected: %v", err)
		}
		if len(want) != len(p.entities) {
			t.Fatalf("%d entities, encoding/json finds %d", len(p.entities), len(want))
		}
		for i := range want {
			var a, b any
			json.Unmarshal(want[i], &a)
			if json.Unmarshal(p.entities[i], &b) != nil || !cmp.Equal(a, b) {
				t.Fatalf("entity %d = %s, want %s", i, p.entities[i], want[i])
			}
		}
	})
}
