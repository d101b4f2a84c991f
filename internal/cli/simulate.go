package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/cybertrace"
	cynetemu "github.com/alertrelay/alertrelay/internal/emulator/cynet"
)

func simulateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "cybertrace":
			return simulateCyberTrace(ctx, args[1:], stdout, stderr)
		case "cynet":
			return simulateCynet(ctx, args[1:], stdout, stderr)
		case "sink":
			return simulateSink(ctx, args[1:], stdout, stderr)
		case "-h", "--help", "help":
			fmt.Fprintln(stdout, "Usage: alertrelay simulate cybertrace|cynet|sink [flags]   (--help after the target lists its flags)")
			return exitOK
		}
	}
	fmt.Fprintln(stderr, "Usage: alertrelay simulate cybertrace|cynet|sink [flags]")
	return exitUsage
}

// simulateSink serves an emulated SIEM until interrupted, counting what
// arrives without keeping it, for load tests (bench/e2e.sh).
func simulateSink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	names := strings.Join(demoTargetNames(), "|")
	fs := newFlags("simulate sink", "simulate sink --type "+names+" --listen ADDR", stderr)
	typ := fs.String("type", "", "the sink type to emulate: "+names)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	open, ok := demoTargets[*typ]
	if !ok {
		fmt.Fprintf(stderr, "simulate sink: --type %q: want one of %s\n", *typ, names)
		return exitUsage
	}
	t, err := open(ctx, emuOptions{addr: *listen, bench: true})
	if err != nil {
		fmt.Fprintf(stderr, "simulate sink: %v\n", err)
		return exitFailure
	}
	defer t.close()
	fmt.Fprintf(stdout, "%s; sink settings:\n%sCtrl-C to stop\n", t.what, t.yaml)
	<-ctx.Done()
	req, wire := t.stats()
	fmt.Fprintf(stdout, "events %d requests %d wire_bytes %d\n", t.received(), req, wire)
	return exitOK
}

// simulateCynet serves the Cynet 360 API emulator until interrupted.
func simulateCynet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("simulate cynet", "simulate cynet --listen ADDR [--backlog N] [--rate R]", stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve the API on")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a certificate from a generated throw-away CA (the CA certificate is written to --cert-out, for tls.ca_file)")
	certOut := fs.String("cert-out", "", "with --tls, write the certificate here (PEM) for tls.ca_file")
	backlog := fs.Int("backlog", 1000, "alerts present at start, spread over the last hour")
	rate := fs.Float64("rate", 1, "new alerts per second (0: none)")
	burst := fs.Bool("burst", false, "generate in bursts (10x rate for 1 s every 10 s)")
	ttl := fs.Duration("token-ttl", time.Hour, "access token lifetime")
	maxPage := fs.Int("max-page-size", 1000, "largest Limit honoured")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	api := cynetemu.New(cynetemu.Options{TokenTTL: *ttl, MaxPageSize: *maxPage, Seed: time.Now().UnixNano()})
	if *backlog > 0 {
		api.AddAlertsAt(*backlog, time.Now().Add(-time.Hour))
	}
	start := api.Start
	if *useTLS {
		start = api.StartTLS
	}
	if err := start(*listen); err != nil {
		fmt.Fprintf(stderr, "simulate cynet: %v\n", err)
		return exitFailure
	}
	defer api.Close()
	if *useTLS && *certOut != "" {
		if err := os.WriteFile(*certOut, api.CertPEM(), 0o644); err != nil {
			fmt.Fprintf(stderr, "simulate cynet: %v\n", err)
			return exitFailure
		}
	}
	if *rate > 0 {
		api.StartGenerator(ctx, *rate, *burst)
	}
	fmt.Fprintf(stdout, "Cynet 360 API emulator on %s (user %q, password %q, client_id %s); Ctrl-C to stop\n",
		api.URL(), cynetemu.DefaultUser, cynetemu.DefaultPassword, cynetemu.DefaultClientID)
	<-ctx.Done()
	fmt.Fprintf(stdout, "served %d requests (%d token, %d page); %d alerts\n", api.Requests(), api.TokenRequests(), api.PageRequests(), api.Alerts())
	return exitOK
}

func simulateCyberTrace(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("simulate cybertrace", "simulate cybertrace --to ADDR [--count N] [--rate R] [--conns C]", stderr)
	to := fs.String("to", "127.0.0.1:9998", "listener address (host:port)")
	count := fs.Int("count", 1000, "lines to send in all; -1 sends until interrupted")
	rate := fs.Float64("rate", 0, "lines per second over all connections; 0 is as fast as possible")
	conns := fs.Int("conns", 1, "parallel connections")
	flags := fs.String("flags", "", "session flags written first with no newline, e.g. X-KF-SendFinishedEventX-KF-ReplyBack")
	crlf := fs.Int("crlf-every", 0, "end every Nth line with CRLF (0: never)")
	split := fs.Bool("split-writes", false, "cut writes at random offsets (mid-line, mid-UTF-8)")
	format := fs.String("format", "kv", "detection layout: kv or cef")
	date := fs.String("date", "-", `date slot: "-" as in the vendor sample, "" for none, or a Go time layout`)
	seed := fs.Int64("seed", 1, "generator seed")
	reconnect := fs.Bool("reconnect", false, "reconnect with back-off when the connection drops, as CyberTrace does")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	caFile := fs.String("ca-file", "", "CA bundle that signed the listener's certificate (with --tls)")
	certFile := fs.String("cert-file", "", "client certificate for mTLS (with --tls)")
	keyFile := fs.String("key-file", "", "client key for mTLS (with --tls)")
	serverName := fs.String("server-name", "", "TLS server name (default: the host of --to)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *format != "kv" && *format != "cef" {
		fmt.Fprintf(stderr, "simulate: --format must be kv or cef\n")
		return exitUsage
	}
	cfg := cybertrace.PushConfig{
		Addr: *to, Count: *count, Rate: *rate, Conns: *conns, Flags: *flags,
		CRLFEvery: *crlf, SplitWrites: *split, Seed: *seed, Reconnect: *reconnect,
		Gen: cybertrace.DefaultGenOptions(),
	}
	cfg.Gen.CEF = *format == "cef"
	cfg.Gen.DateFormat = *date
	if *useTLS {
		tc, err := clientTLS(*caFile, *certFile, *keyFile, *serverName)
		if err != nil {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return exitUsage
		}
		cfg.TLS = tc
	}
	start := time.Now()
	cfg.ProgressEvery = time.Second
	cfg.OnProgress = func(sent int64) {
		el := time.Since(start).Seconds()
		fmt.Fprintf(stderr, "\rsent %d lines (%.0f/s)   ", sent, float64(sent)/max(el, 1e-9))
	}
	st, err := cybertrace.Push(ctx, cfg)
	fmt.Fprintln(stderr)
	fmt.Fprintf(stdout, "sent %d lines, %d bytes over %d connection(s) in %s (%.0f lines/s)\n",
		st.Lines, st.Bytes, len(st.Conns), st.Elapsed.Round(time.Millisecond), st.LinesPerSecond())
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "simulate: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func clientTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}
