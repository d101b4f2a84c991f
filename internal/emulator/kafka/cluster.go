// Package kafka is an in-process Kafka cluster that stands in for a real one
// in tests, demos and benchmarks of alertrelay's kafka sink. It is a thin
// wrapper over franz-go's kfake, which speaks the real Kafka protocol
// (produce, fetch, metadata, SASL PLAIN/SCRAM, TLS, the idempotent
// producer's sequence checks) on loopback, and it adds what the sink's tests
// need:
//
//   - a restart on the same ports with the data kept (Restart, SetDown),
//     through kfake's on-disk persistence in a temporary directory;
//   - fault injection on produce requests: a Kafka error code for the next
//     requests (FailNext), quota throttling (ThrottleNext), latency
//     (SetLatency);
//   - a reader that consumes what was produced, with a kgo consumer, to
//     compare records field by field (Records) or event ids exactly (IDs);
//   - counters: records stored (Count), produce requests (Requests) and
//     bytes received (BytesOnWire).
//
// The import name kafkaemu avoids a clash with the sink package.
package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Defaults of Options.
const (
	DefaultTopic      = "alertrelay"
	DefaultPartitions = 3
	DefaultBrokers    = 1
)

// SASL mechanisms of Options.SASLMechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// readTimeout bounds IDs and Count, which take no context.
const readTimeout = 30 * time.Second

// Options configures a Cluster. The zero value is one broker with topic
// "alertrelay" of 3 partitions, no authentication, plaintext.
type Options struct {
	// Topics are created at start with Partitions partitions each.
	// Default: [DefaultTopic].
	Topics     []string
	Partitions int // default DefaultPartitions
	Brokers    int // default DefaultBrokers

	// AutoCreateTopics lets a producer that asks for it create a missing
	// topic (auto.create.topics.enable), with Partitions partitions.
	AutoCreateTopics bool

	// SASLMechanism, if set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512),
	// requires every connection to authenticate as User/Password.
	SASLMechanism  string
	User, Password string

	// TLS, if set, makes the brokers listen with TLS (it must hold the
	// server certificate; set ClientAuth for mutual TLS). ClientTLS is
	// then what the cluster's own reader dials with.
	TLS       *tls.Config
	ClientTLS *tls.Config

	// MaxMessageBytes is the brokers' message.max.bytes; 0 keeps Kafka's
	// default (1,048,588).
	MaxMessageBytes int

	// DiscardRecords acknowledges records without storing them (kfake's
	// BlackholeProduce), for benchmarks: Count still counts them, Records
	// and IDs find nothing.
	DiscardRecords bool

	// DataDir is where the brokers persist their data, so that it survives
	// Restart. Default: a temporary directory removed by Close.
	DataDir string
}

// Cluster is the emulator. Its methods are safe for concurrent use.
type Cluster struct {
	opt     Options
	tempDir bool

	mu      sync.Mutex
	kf      *kfake.Cluster // nil while down
	ports   []int
	started bool
	closed  bool
	stop    chan struct{} // closed by Close: ends latency sleeps

	// obsMu guards what kfake's goroutine records: it must never wait
	// on mu, which is held while kfake shuts down.
	obsMu      sync.Mutex
	observed   map[string]bool // topic names seen in produce requests
	observedID map[[16]byte]bool

	latency  atomic.Int64 // time.Duration
	requests atomic.Int64
	wire     atomic.Int64
}

// Record is one record as consumed back from the cluster.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []kgo.RecordHeader
	// Codec is the compression of the batch the record was stored in:
	// "none", "gzip", "snappy", "lz4" or "zstd".
	Codec string
}

// New returns a cluster that is not running yet: call Start.
func New(opt Options) *Cluster {
	if len(opt.Topics) == 0 {
		opt.Topics = []string{DefaultTopic}
	}
	if opt.Partitions <= 0 {
		opt.Partitions = DefaultPartitions
	}
	if opt.Brokers <= 0 {
		opt.Brokers = DefaultBrokers
	}
	return &Cluster{
		opt:        opt,
		stop:       make(chan struct{}),
		observed:   map[string]bool{},
		observedID: map[[16]byte]bool{},
	}
}

// Start starts the brokers on free loopback ports.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errors.New("kafka emulator: closed")
	case c.started:
		return errors.New("kafka emulator: already started")
	}
	if c.opt.DataDir == "" {
		dir, err := os.MkdirTemp("", "alertrelay-kfake-")
		if err != nil {
			return fmt.Errorf("kafka emulator: %w", err)
		}
		c.opt.DataDir, c.tempDir = dir, true
	}
	if err := c.upLocked(); err != nil {
		return err
	}
	for _, a := range c.kf.ListenAddrs() {
		_, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		c.ports = append(c.ports, port)
	}
	c.started = true
	return nil
}

// upLocked starts kfake, on c.ports when set.
func (c *Cluster) upLocked() error {
	o := c.opt
	opts := []kfake.Opt{
		kfake.NumBrokers(o.Brokers),
		kfake.SeedTopics(int32(o.Partitions), o.Topics...),
		kfake.DefaultNumPartitions(o.Partitions),
		kfake.DataDir(o.DataDir),
		kfake.ListenFn(c.listen),
	}
	if len(c.ports) > 0 {
		opts = append(opts, kfake.Ports(c.ports...))
	}
	if o.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if o.SASLMechanism != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(o.SASLMechanism, o.User, o.Password))
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS.Clone()))
	}
	if o.MaxMessageBytes > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(o.MaxMessageBytes)}))
	}
	if o.DiscardRecords {
		opts = append(opts, kfake.BlackholeProduce())
	}
	kf, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("kafka emulator: %w", err)
	}
	c.kf = kf
	c.observeLocked()
	if o.SASLMechanism == SASLPlain {
		c.checkPlainLocked()
	}
	return nil
}

// plainFailure is what Kafka's PlainServerCallbackHandler answers to a
// wrong user name or password.
const plainFailure = "Authentication failed: Invalid username or password"

// checkPlainLocked answers a SASL/PLAIN authentication with wrong
// credentials as Kafka does, with SASL_AUTHENTICATION_FAILED and a message
// (kfake itself just closes the connection). Right credentials go on to
// kfake. (SCRAM failures still close the connection: the check needs
// kfake's per-connection state.)
func (c *Cluster) checkPlainLocked() {
	kf, user, pass := c.kf, c.opt.User, c.opt.Password
	kf.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		req := r.(*kmsg.SASLAuthenticateRequest)
		parts := bytes.Split(req.SASLAuthBytes, []byte{0})
		if len(parts) != 3 || (string(parts[1]) == user && string(parts[2]) == pass) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(plainFailure)
		return resp, nil, true
	})
}

// observeLocked installs the produce observer (topics, request count) and
// the latency control on the current kfake cluster.
func (c *Cluster) observeLocked() {
	c.kf.Fault(kfake.Fault{
		Keys:    []kmsg.Key{kmsg.Produce},
		Observe: true,
		Count:   -1,
		// When runs on the cluster goroutine, once per partition of the
		// request: record names and ids only, resolve them later.
		When: func(r kmsg.Request) bool {
			req, ok := r.(*kmsg.ProduceRequest)
			if !ok {
				return false
			}
			c.obsMu.Lock()
			for _, t := range req.Topics {
				if t.Topic != "" {
					c.observed[t.Topic] = true
				} else {
					c.observedID[t.TopicID] = true
				}
			}
			c.obsMu.Unlock()
			return false // observing only: never counts as a hit
		},
	})
	kf := c.kf
	kf.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		c.requests.Add(1)
		if d := time.Duration(c.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.stop:
				t.Stop()
			}
		}
		return nil, nil, false
	})
}

// listen is kfake's ListenFn: a loopback listener counting bytes received.
func (c *Cluster) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return countingListener{ln, &c.wire}, nil
}

// Addrs are the brokers' host:port addresses; they stay the same across
// Restart and SetDown.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs := make([]string, len(c.ports))
	for i, p := range c.ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return addrs
}

// Close stops the brokers for good and removes the temporary data
// directory. It is idempotent.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	close(c.stop)
	if c.kf != nil {
		c.kf.Close()
		c.kf = nil
	}
	if c.tempDir {
		_ = os.RemoveAll(c.opt.DataDir)
	}
}

// SetDown(true) stops the brokers (their data is kept on disk): the ports
// refuse connections and open connections are closed. SetDown(false)
// starts them again on the same ports with the same data.
func (c *Cluster) SetDown(down bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.started:
		return errors.New("kafka emulator: not started")
	case c.closed:
		return errors.New("kafka emulator: closed")
	}
	if down {
		if c.kf != nil {
			c.kf.Close()
			c.kf = nil
		}
		return nil
	}
	if c.kf != nil {
		return nil
	}
	// A port just closed can take a moment to be free again.
	var err error
	for range 50 {
		if err = c.upLocked(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Restart is SetDown(true) then SetDown(false).
func (c *Cluster) Restart() error {
	if err := c.SetDown(true); err != nil {
		return err
	}
	return c.SetDown(false)
}

// running returns the running kfake cluster or an error.
func (c *Cluster) running() (*kfake.Cluster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kf == nil {
		return nil, errors.New("kafka emulator: not running")
	}
	return c.kf, nil
}

// FailNext answers the next n produce requests (every partition in them)
// with err, as a broker would: e.g. kerr.NotLeaderForPartition (retriable),
// kerr.MessageTooLarge, kerr.TopicAuthorizationFailed. With topic set, only
// requests for that topic count. The records are not stored.
func (c *Cluster) FailNext(n int, topic string, err *kerr.Error) error {
	kf, e := c.running()
	if e != nil {
		return e
	}
	kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: err, Count: n})
	return nil
}

// ThrottleNext answers the next n produce requests with a quota
// throttle of d (ThrottleMillis) and NOT_ENOUGH_REPLICAS on every
// partition, without storing the records: a client must wait d before
// sending to that broker again, then retry. (kfake has no quotas of its
// own; a real broker would store the records and delay its answer.)
func (c *Cluster) ThrottleNext(n int, d time.Duration) error {
	kf, e := c.running()
	if e != nil {
		return e
	}
	left := n
	kf.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.ProduceRequest)
		left--
		if left > 0 {
			kf.KeepControl()
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.ThrottleMillis = int32(d / time.Millisecond)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.NotEnoughReplicas.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return nil
}

// SetLatency delays the handling of every produce request by d (0: none).
// The brokers handle requests one at a time, so this slows everything.
func (c *Cluster) SetLatency(d time.Duration) { c.latency.Store(int64(d)) }

// Requests is the number of produce requests received, across restarts.
func (c *Cluster) Requests() int { return int(c.requests.Load()) }

// BytesOnWire is the number of bytes the brokers received on their
// connections (produce requests mostly, plus metadata, the reader's fetch
// requests and TLS overhead), across restarts.
func (c *Cluster) BytesOnWire() int64 { return c.wire.Load() }

// Topics are the topics created at start and every topic a producer
// produced to, sorted.
func (c *Cluster) Topics() []string {
	kf, _ := c.running()
	set := map[string]bool{}
	for _, t := range c.opt.Topics {
		set[t] = true
	}
	c.obsMu.Lock()
	for t := range c.observed {
		set[t] = true
	}
	var ids [][16]byte
	for id := range c.observedID {
		ids = append(ids, id)
	}
	c.obsMu.Unlock()
	if kf != nil {
		for _, id := range ids {
			if ti := kf.TopicIDInfo(id); ti != nil {
				set[ti.Topic] = true
				c.obsMu.Lock()
				delete(c.observedID, id)
				c.observed[ti.Topic] = true
				c.obsMu.Unlock()
			}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Count is the number of records stored in every topic (the sum of the
// partitions' high watermarks), 0 while down.
func (c *Cluster) Count() int {
	kf, err := c.running()
	if err != nil {
		return 0
	}
	n := int64(0)
	for _, t := range c.Topics() {
		for _, p := range kf.PartitionInfos(t) {
			n += p.HighWatermark
		}
	}
	return int(n)
}

// Records consumes topic from the start to its current end and returns
// every record, in partition then offset order. It fails if ctx ends
// first or the cluster is down.
func (c *Cluster) Records(ctx context.Context, topic string) ([]Record, error) {
	kf, err := c.running()
	if err != nil {
		return nil, err
	}
	if c.opt.DiscardRecords {
		return nil, nil
	}
	infos := kf.PartitionInfos(topic)
	if infos == nil {
		return nil, fmt.Errorf("kafka emulator: no topic %q", topic)
	}
	want := map[int32]int64{} // partition -> high watermark
	start := map[int32]kgo.Offset{}
	for _, p := range infos {
		if p.HighWatermark > p.LogStartOffset {
			want[p.Partition] = p.HighWatermark
			start[p.Partition] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(c.clientOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))...)
	if err != nil {
		return nil, fmt.Errorf("kafka emulator: %w", err)
	}
	defer cl.Close()
	var out []Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka emulator: reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("kafka emulator: reading %s: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, Record{
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers,
				Codec: codecName(r.Attrs.CompressionType()),
			})
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	slices.SortFunc(out, func(a, b Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out, nil
}

// ReadIDs consumes every topic (Topics) and returns event.id → number of
// records carrying it, read from the record values (documents without an
// id count under "").
func (c *Cluster) ReadIDs(ctx context.Context) (map[string]int, error) {
	ids := map[string]int{}
	for _, t := range c.Topics() {
		recs, err := c.Records(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			m, _ := event.ReadMeta(r.Value)
			ids[string(event.Unquote(nil, m.ID))]++
		}
	}
	return ids, nil
}

// IDs is ReadIDs bounded by 30 seconds; it returns nil if reading fails.
func (c *Cluster) IDs() map[string]int {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	ids, err := c.ReadIDs(ctx)
	if err != nil {
		return nil
	}
	return ids
}

// Distinct is the number of distinct event ids stored (IDs).
func (c *Cluster) Distinct() int { return len(c.IDs()) }

// clientOpts are the connection settings of the cluster's own reader.
func (c *Cluster) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Addrs()...), kgo.FetchMaxWait(100 * time.Millisecond)}
	if c.opt.TLS != nil {
		tc := c.opt.ClientTLS
		if tc == nil {
			tc = &tls.Config{InsecureSkipVerify: true} // #nosec G402 -- our own loopback brokers
		}
		opts = append(opts, kgo.DialTLSConfig(tc.Clone()))
	}
	if c.opt.SASLMechanism != "" {
		opts = append(opts, kgo.SASL(saslMechanism(c.opt.SASLMechanism, c.opt.User, c.opt.Password)))
	}
	return opts
}

func saslMechanism(m, user, pass string) sasl.Mechanism {
	switch m {
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}

func codecName(t uint8) string {
	switch t {
	case 0:
		return "none"
	case 1:
		return "gzip"
	case 2:
		return "snappy"
	case 3:
		return "lz4"
	case 4:
		return "zstd"
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// countingListener counts the bytes read from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{conn, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
