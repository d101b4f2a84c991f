//go:build linux

package syslog

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

// rsyslogd runs a real rsyslogd in a temporary directory with a plain TCP,
// a UDP and a TLS (gtls, anonymous client authentication) input on
// loopback, writing every message it receives, with the fields it parsed,
// to out.log through the template lineTemplate.
type rsyslogd struct {
	t                         *testing.T
	bin, dir, conf, out, logf string
	tcpPort, udpPort, tlsPort int
	cmd                       *exec.Cmd
	exited                    chan struct{}
}

// lineTemplate: facility|severity|hostname|app-name|procid|msgid|SD|msg,
// as rsyslog parsed them.
const lineTemplate = `%syslogfacility-text%|%syslogseverity-text%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n`

// findRsyslogd returns rsyslogd's path, or skips the test (fails it when
// ALERTRELAY_REQUIRE_SYSLOGD=1, as in CI).
func findRsyslogd(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/rsyslogd", "rsyslogd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("ALERTRELAY_REQUIRE_SYSLOGD") == "1" {
		t.Fatal("rsyslogd not found and ALERTRELAY_REQUIRE_SYSLOGD=1: install rsyslog and rsyslog-gnutls")
	}
	t.Skip("rsyslogd not found: install rsyslog and rsyslog-gnutls to run the real-daemon tests (CI sets ALERTRELAY_REQUIRE_SYSLOGD=1)")
	return ""
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pc.Close() }()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

func startRsyslogd(t *testing.T, pki *testcert.PKI) *rsyslogd {
	t.Helper()
	r := &rsyslogd{t: t, bin: findRsyslogd(t), dir: t.TempDir()}
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	r.out = filepath.Join(r.dir, "out.log")
	r.logf = filepath.Join(r.dir, "rsyslogd.log")
	r.tcpPort, r.udpPort, r.tlsPort = freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp")
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"
       defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q)
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="%d")
input(type="imtcp" address="127.0.0.1" port="%d" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" address="127.0.0.1" port="%d")
template(name="fields" type="string" string="%s")
action(type="omfile" file=%q template="fields")
`, r.dir, pki.CAFile, pki.ServerCertFile, pki.ServerKeyFile, r.tcpPort, r.tlsPort, r.udpPort, lineTemplate, r.out)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// start runs rsyslogd and waits until its TCP and TLS ports accept.
func (r *rsyslogd) start() {
	r.t.Helper()
	logf, err := os.OpenFile(r.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies (a panic, a killed go test), take rsyslogd
	// with it rather than leave it listening.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		r.t.Fatal(err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range []int{r.tcpPort, r.tlsPort} {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-r.exited:
				r.t.Fatalf("rsyslogd exited at start:\n%s", r.daemonLog())
			default:
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("rsyslogd does not accept on port %d: %v\n%s", port, err, r.daemonLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// stop terminates rsyslogd (SIGTERM, then SIGKILL after 5s) and waits for
// it. It is a no-op when it is not running.
func (r *rsyslogd) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

func (r *rsyslogd) daemonLog() string {
	b, _ := os.ReadFile(r.logf)
	return string(b)
}

// waitLines waits until out.log holds n lines whose app-name is app, and
// returns them.
func (r *rsyslogd) waitLines(app string, n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		b, _ := os.ReadFile(r.out)
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(l, "|", 5); len(f) == 5 && f[3] == app {
				got = append(got, l)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var severityText = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// wantLine is the line rsyslogd should write for doc sent by s.
func wantLine(t *testing.T, s *Sink, doc []byte) string {
	t.Helper()
	d, err := decodeDoc(doc)
	if err != nil {
		t.Fatal(err)
	}
	sev := syslogSeverity(d)
	if s.enc.severity >= 0 {
		sev = s.enc.severity
	}
	msg, _, err := s.enc.appendMessage(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	if s.enc.rfc3164 {
		// TAG and MSG: rsyslog keeps the space after "TAG:" in msg.
		i := bytes.Index(msg, []byte(s.enc.appName+": "))
		return fmt.Sprintf("local4|%s|%s|%s|-|-|-|%s", severityText[sev], s.enc.hostname, s.enc.appName, msg[i+len(s.enc.appName)+1:])
	}
	// <PRI>1 TS HOST APP PROCID MSGID SD MSG: SD and MSG as sent.
	parts := bytes.SplitN(msg, []byte(" "), 7)
	rest := parts[6]
	sd, body := "-", rest[2:]
	if rest[0] == '[' {
		end := bytes.Index(rest, []byte("] "))
		sd, body = string(rest[:end+1]), rest[end+2:]
	}
	return fmt.Sprintf("local4|%s|%s|%s|-|%s|%s|%s", severityText[sev], s.enc.hostname, s.enc.appName, parts[5], sd, body)
}

// TestRsyslogd sends the sample documents to a real rsyslogd over every
// transport and framing and checks, line by line, what it parsed: PRI as
// facility and severity, header fields, structured data with its escapes,
// and the CEF or JSON body byte for byte.
func TestRsyslogd(t *testing.T) {
	pki := testcert.NewT(t)
	r := startRsyslogd(t, pki)
	docs := sinktest.Golden[[]byte](t)
	// A document whose SD values and CEF fields need every escape.
	docs = append(docs, []byte(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"esc\"]\\1","kind":"alert","dataset":"cynet.alert","provider":"p]\"","severity":4},`+
		`"observer":{"vendor":"V|endor","product":"P\\roduct"},"message":"a|b=c","rule":{"description":"x=y\\z|w"},"user":{"name":"ACME\\bob"}}`))

	for _, tc := range []struct {
		app     string
		network string
		port    int
		framing string
		format  string
		body    string
	}{
		{"t-octet", NetworkTCP, r.tcpPort, FramingOctetCounting, FormatRFC5424, BodyCEF},
		{"t-lf", NetworkTCP, r.tcpPort, FramingLF, FormatRFC5424, BodyCEF},
		{"t-3164", NetworkTCP, r.tcpPort, FramingOctetCounting, FormatRFC3164, BodyCEF},
		{"t-json", NetworkTCP, r.tcpPort, FramingOctetCounting, FormatRFC5424, BodyJSON},
		{"t-udp", NetworkUDP, r.udpPort, "", FormatRFC5424, BodyCEF},
		{"t-tls", NetworkTLS, r.tlsPort, "", FormatRFC5424, BodyCEF},
	} {
		t.Run(tc.app, func(t *testing.T) {
			cfg := testConfig(tc.network, "127.0.0.1:"+strconv.Itoa(tc.port))
			cfg.AppName, cfg.Framing, cfg.Format, cfg.Body = tc.app, tc.framing, tc.format, tc.body
			if tc.network == NetworkTLS {
				cfg.TLS = &tlsclient.Config{CAFile: pki.CAFile}
			}
			s, _ := newSink(t, cfg)
			ctx := sinktest.Context(t)
			if err := s.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := s.Write(ctx, sinktest.Batch(docs...)); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, d := range docs {
				want = append(want, wantLine(t, s, d))
			}
			got := r.waitLines(tc.app, len(want))
			if tc.network == NetworkUDP {
				// Datagrams may be reordered in principle; on
				// loopback they are not, but compare as sets.
				if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
					t.Errorf("rsyslogd lines (-want +got):\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rsyslogd lines (-want +got):\n%s\nrsyslogd log:\n%s", diff, r.daemonLog())
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestRsyslogdRestart kills rsyslogd between batches: the next Write fails
// with a retryable error, and once rsyslogd runs again on the same port
// the batch goes through; nothing of the batches Write accepted is lost.
func TestRsyslogdRestart(t *testing.T) {
	pki := testcert.NewT(t)
	r := startRsyslogd(t, pki)
	for _, tc := range []struct {
		app     string
		network string
		port    int
	}{{"r-tcp", NetworkTCP, r.tcpPort}, {"r-tls", NetworkTLS, r.tlsPort}} {
		t.Run(tc.app, func(t *testing.T) {
			cfg := testConfig(tc.network, "127.0.0.1:"+strconv.Itoa(tc.port))
			cfg.AppName = tc.app
			if tc.network == NetworkTLS {
				cfg.TLS = &tlsclient.Config{CAFile: pki.CAFile}
			}
			s, _ := newSink(t, cfg)
			ctx := sinktest.Context(t)
			batch := func(n int) [][]byte {
				var docs [][]byte
				for j := 0; j < 50; j++ {
					docs = append(docs, syntheticDoc(fmt.Sprintf("%s-%d-%02d", tc.app, n, j)))
				}
				return docs
			}
			b1, b2 := batch(1), batch(2)
			if err := s.Write(ctx, sinktest.Batch(b1...)); err != nil {
				t.Fatal(err)
			}
			if got := r.waitLines(tc.app, 50); len(got) != 50 {
				t.Fatalf("%d lines before the restart, want 50", len(got))
			}
			r.stop()
			err := s.Write(ctx, sinktest.Batch(b2...))
			if err == nil || pipeline.IsPermanent(err) {
				t.Fatalf("Write with rsyslogd down: %v, want a retryable error", err)
			}
			r.start()
			// The delivery loop retries: so do we, a few times.
			for i := 0; ; i++ {
				err = s.Write(ctx, sinktest.Batch(b2...))
				if err == nil {
					break
				}
				if i == 5 || pipeline.IsPermanent(err) {
					t.Fatalf("Write after restart: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			got := r.waitLines(tc.app, 100)
			ids := map[string]int{}
			for _, l := range got {
				i := strings.Index(l, "externalId=")
				if i < 0 {
					t.Fatalf("no externalId in %q", l)
				}
				ids[strings.Fields(l[i+len("externalId="):])[0]]++
			}
			for _, d := range append(b1, b2...) {
				if id := docID(t, d); ids[id] != 1 {
					t.Errorf("event %s received %d times", id, ids[id])
				}
			}
		})
	}
}

// TestRsyslogdCheck: Check against a running and a stopped rsyslogd.
func TestRsyslogdCheck(t *testing.T) {
	pki := testcert.NewT(t)
	r := startRsyslogd(t, pki)
	cfg := testConfig(NetworkTLS, "127.0.0.1:"+strconv.Itoa(r.tlsPort))
	cfg.TLS = &tlsclient.Config{CAFile: pki.CAFile}
	s, _ := newSink(t, cfg)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	bad := testConfig(NetworkTLS, "127.0.0.1:"+strconv.Itoa(r.tlsPort)) // no CA: the test certificate is untrusted
	sb, _ := newSink(t, bad)
	if err := sb.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Check without the CA: %v", err)
	}
	r.stop()
	if err := s.Check(context.Background()); err == nil {
		t.Error("Check succeeded with rsyslogd stopped")
	}
}
