package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
)

const checkCfg = `state_dir: $DIR
sources:
  ct: {type: cybertrace, listen: 127.0.0.1:0}
sinks:
  siem:
    type: http
    url: %URL%/ingest
    auth: {bearer_token: right-token}
  local:
    type: file
    path: $DIR/out.ndjson
`

// TestConnect: validate --connect reaches the http sink's receiver, reports
// a refused token as an authentication failure, and skips the file sink.
func TestConnect(t *testing.T) {
	recv := httpsink.New(httpsink.Options{BearerToken: "right-token"})
	if err := recv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	for _, tc := range []struct {
		name, token, want string
	}{
		{"good token", "right-token", ""},
		{"wrong token", "wrong-token", "authentication failed"},
	} {
		cfg := strings.NewReplacer("%URL%", recv.URL(), "$DIR", t.TempDir(), "right-token", tc.token).Replace(checkCfg)
		f, errs := CheckBytes([]byte(cfg))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		res, err := Connect(context.Background(), f, Options{Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Component != "sink siem" {
			t.Fatalf("%s: results %+v, want one for sink siem", tc.name, res)
		}
		switch got := res[0].Err; {
		case tc.want == "" && got != nil:
			t.Errorf("%s: %v", tc.name, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, got, tc.want)
		case got != nil && strings.Contains(got.Error(), tc.token):
			t.Errorf("%s: the error shows the token: %v", tc.name, got)
		}
	}
	if recv.Count() != 0 {
		t.Errorf("the check delivered %d events, want none", recv.Count())
	}
}

// TestReadyWaitsForSinks: a running daemon is not ready while its sink's
// destination is down, becomes ready when it comes up, and then stays
// ready through a later outage, which /healthz reports instead.
func TestReadyWaitsForSinks(t *testing.T) {
	recv := httpsink.New(httpsink.Options{})
	if err := recv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	recv.SetDown(true)
	cfg := strings.ReplaceAll(checkCfg, "%URL%", recv.URL())
	cfg = strings.Replace(cfg, "    auth: {bearer_token: right-token}\n", "", 1)
	d, _, stop := startWith(t, cfg, Options{}, func(d *Daemon) { d.checkEvery = 20 * time.Millisecond })
	defer stop()
	healthy := func(want bool) func() bool {
		return func() bool {
			ok, body := d.Health().Report()
			return ok == want && strings.Contains(string(body), "sink siem")
		}
	}
	waitFor(t, healthy(false))
	if d.Ready() {
		t.Fatal("ready while the sink's destination is down")
	}
	recv.SetDown(false)
	waitFor(t, d.Ready)
	waitFor(t, healthy(true))
	recv.SetDown(true)
	waitFor(t, healthy(false))
	if !d.Ready() {
		t.Error("readiness lost on a later outage; only /healthz should degrade")
	}
}
