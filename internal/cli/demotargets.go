package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	esemu "github.com/alertrelay/alertrelay/internal/emulator/elasticsearch"
	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	kafkaemu "github.com/alertrelay/alertrelay/internal/emulator/kafka"
	sentinelemu "github.com/alertrelay/alertrelay/internal/emulator/sentinel"
	hecemu "github.com/alertrelay/alertrelay/internal/emulator/splunkhec"
	syslogemu "github.com/alertrelay/alertrelay/internal/emulator/syslog"
)

// demoTarget is an emulated SIEM: what `demo --sink NAME` delivers to, and
// what `simulate sink` serves for the end-to-end benchmark.
type demoTarget struct {
	what     string        // "the emulated Splunk HEC at http://..."
	yaml     string        // the sink's settings, indented under the sink
	received func() int    // events the emulator holds
	last     func() []byte // the last event as the emulator stored it (nil in bench mode)
	stats    func() (requests int, wire int64)
	close    func()
}

// emuOptions say where an emulator listens and whether it keeps events
// (demo) or only counts them (bench: flat memory over millions, and as
// little CPU as the protocol allows, since the emulator shares the
// machine with the daemon it measures).
type emuOptions struct {
	addr  string
	bench bool
}

// demoTargets starts the emulator of each sink type the demo can show.
var demoTargets = map[string]func(ctx context.Context, o emuOptions) (*demoTarget, error){
	"elasticsearch": func(ctx context.Context, o emuOptions) (*demoTarget, error) {
		srv := esemu.New(esemu.Options{APIKeyID: "demo", APIKey: "demo-key", DiscardDocs: o.bench})
		if err := srv.Start(o.addr); err != nil {
			return nil, err
		}
		return &demoTarget{
			what:     "the emulated Elasticsearch at " + srv.URL(),
			yaml:     fmt.Sprintf("    url: %s\n    auth: {api_key: \"demo:demo-key\"}\n", srv.URL()),
			received: srv.Count,
			stats:    func() (int, int64) { return srv.Requests(), srv.BytesOnWire() },
			last: func() []byte {
				return lastOf(srv.Docs(), func(d esemu.Doc) []byte {
					return fmt.Appendf(nil, "_index %s, _id %s:\n%s", d.Index, d.ID, d.Source)
				})
			},
			close: srv.Close,
		}, nil
	},
	"kafka": func(ctx context.Context, o emuOptions) (*demoTarget, error) {
		if o.addr != "127.0.0.1:0" {
			return nil, fmt.Errorf("the Kafka emulator picks its own ports; --listen is not supported")
		}
		c := kafkaemu.New(kafkaemu.Options{Topics: []string{"alertrelay"}, DiscardRecords: o.bench})
		if err := c.Start(); err != nil {
			return nil, err
		}
		return &demoTarget{
			what:     "the emulated Kafka cluster at " + strings.Join(c.Addrs(), ","),
			yaml:     fmt.Sprintf("    brokers: [%s]\n    topic: alertrelay\n", strings.Join(c.Addrs(), ", ")),
			received: c.Count,
			stats:    func() (int, int64) { return c.Requests(), c.BytesOnWire() },
			last: func() []byte {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				recs, _ := c.Records(rctx, "alertrelay")
				return lastOf(recs, func(r kafkaemu.Record) []byte {
					return fmt.Appendf(nil, "topic %s partition %d offset %d key %s (%s):\n%s", r.Topic, r.Partition, r.Offset, r.Key, r.Codec, r.Value)
				})
			},
			close: c.Close,
		}, nil
	},
	"sentinel": func(ctx context.Context, o emuOptions) (*demoTarget, error) {
		srv := sentinelemu.New(sentinelemu.Options{DiscardRows: o.bench})
		if err := srv.Start(o.addr); err != nil {
			return nil, err
		}
		return &demoTarget{
			what: "the emulated Azure Monitor Logs Ingestion API at " + srv.URL(),
			yaml: fmt.Sprintf("    endpoint: %[1]s\n    authority: %[1]s\n    tenant_id: %s\n    client_id: %s\n    client_secret: %q\n    dcr_immutable_id: %s\n    stream: %s\n",
				srv.URL(), sentinelemu.DefaultTenantID, sentinelemu.DefaultClientID, sentinelemu.DefaultClientSecret,
				sentinelemu.DefaultDCRImmutableID, sentinelemu.DefaultStream),
			received: srv.Count,
			stats:    func() (int, int64) { return srv.Requests(), srv.BytesOnWire() },
			last:     func() []byte { return lastOf(srv.Rows(), identity) },
			close:    srv.Close,
		}, nil
	},
	"splunkhec": func(ctx context.Context, o emuOptions) (*demoTarget, error) {
		const token = "00000000-0000-0000-0000-00000000demo"
		srv := hecemu.New(hecemu.Options{Token: token, DiscardDocs: o.bench})
		if err := srv.Start(o.addr); err != nil {
			return nil, err
		}
		return &demoTarget{
			what:     "the emulated Splunk HEC at " + srv.URL(),
			yaml:     fmt.Sprintf("    url: %s\n    token: %q\n    compression: gzip\n", srv.URL(), token),
			received: srv.Count,
			stats:    func() (int, int64) { return srv.Requests(), srv.BytesOnWire() },
			last: func() []byte {
				return lastOf(srv.Events(), func(e hecemu.Event) []byte {
					return fmt.Appendf(nil, "time %s host %s source %s sourcetype %s index %q:\n%s", e.Time, e.Host, e.Source, e.Sourcetype, e.Index, e.Event)
				})
			},
			close: srv.Close,
		}, nil
	},
	"syslog": func(ctx context.Context, o emuOptions) (*demoTarget, error) {
		srv := syslogemu.New(syslogemu.Options{DiscardDocs: o.bench})
		if err := srv.Start(o.addr); err != nil {
			return nil, err
		}
		return &demoTarget{
			what:     "the emulated syslog receiver at tcp://" + srv.Addr(),
			yaml:     fmt.Sprintf("    address: %s\n    network: tcp\n    body: cef\n", srv.Addr()),
			received: srv.Count,
			stats:    func() (int, int64) { return srv.Connections(), srv.BytesOnWire() },
			last: func() []byte {
				return lastOf(srv.Messages(), func(m syslogemu.Received) []byte { return m.Raw })
			},
			close: srv.Close,
		}, nil
	},
	"http": func(ctx context.Context, o emuOptions) (*demoTarget, error) {
		srv := httpsink.New(httpsink.Options{DiscardDocs: o.bench})
		if err := srv.Start(o.addr); err != nil {
			return nil, err
		}
		return &demoTarget{
			what:     "the emulated webhook at " + srv.URL(),
			yaml:     fmt.Sprintf("    url: %s/ingest\n", srv.URL()),
			received: srv.Count,
			stats:    func() (int, int64) { return srv.Requests(), srv.BytesOnWire() },
			last:     func() []byte { return lastOf(srv.Docs(), identity) },
			close:    srv.Close,
		}, nil
	},
}

// lastOf renders the last of items, or nil when there is none.
func lastOf[T any](items []T, render func(T) []byte) []byte {
	if len(items) == 0 {
		return nil
	}
	return render(items[len(items)-1])
}

func identity(b []byte) []byte { return b }

func demoTargetNames() []string {
	var names []string
	for n := range demoTargets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
