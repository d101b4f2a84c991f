package sentinel

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/tlsclient"
)

const testSecret = "s3cr3t~Value.With-Chars"

// validConfig is a complete config with defaults.
func validConfig() Config {
	var c Config
	c.SetDefaults()
	c.Endpoint = "https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com"
	c.DCRImmutableID = "dcr-00112233445566778899aabbccddeeff"
	c.Stream = "Custom-AlertRelay_CL"
	c.TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	c.ClientID = "3f2a1c9e-1111-4222-8333-444455556666"
	c.ClientSecret = config.NewSecret(testSecret)
	return c
}

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{
		Authority:    "https://login.microsoftonline.com",
		Scope:        "https://monitor.azure.com//.default",
		APIVersion:   "2023-01-01",
		Compression:  "gzip",
		MaxBodyBytes: 1048576,
		Timeout:      30 * time.Second,
	}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b config.Secret) bool { return a.Reveal() == b.Reveal() })); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		fields []string // the FieldError paths expected, sorted
	}{
		{"valid", func(*Config) {}, nil},
		{"http endpoint and authority (emulator)", func(c *Config) {
			c.Endpoint, c.Authority = "http://127.0.0.1:8080", "http://127.0.0.1:8080"
		}, nil},
		{"endpoint with path prefix and slash", func(c *Config) { c.Endpoint += "/prefix/" }, nil},
		{"sovereign cloud", func(c *Config) {
			c.Authority, c.Scope = "https://login.microsoftonline.us", "https://monitor.azure.us//.default"
		}, nil},
		{"tls with https", func(c *Config) { c.TLS = &tlsclient.Config{CAFile: "/etc/ca.pem"} }, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{
			"api_version", "authority", "client_id", "client_secret", "compression", "dcr_immutable_id",
			"endpoint", "max_body_bytes", "scope", "stream", "tenant_id", "timeout"}},
		{"endpoint scheme", func(c *Config) { c.Endpoint = "ftp://x" }, []string{"endpoint"}},
		{"endpoint no host", func(c *Config) { c.Endpoint = "https://" }, []string{"endpoint"}},
		{"endpoint credentials", func(c *Config) { c.Endpoint = "https://u:p@x" }, []string{"endpoint"}},
		{"endpoint query", func(c *Config) { c.Endpoint = "https://x/?api-version=1" }, []string{"endpoint"}},
		{"endpoint not a url", func(c *Config) { c.Endpoint = "https://x y\x7f" }, []string{"endpoint"}},
		{"authority query", func(c *Config) { c.Authority = "https://login.microsoftonline.com?x" }, []string{"authority"}},
		{"dcr without prefix", func(c *Config) { c.DCRImmutableID = "00112233445566778899aabbccddeeff" }, []string{"dcr_immutable_id"}},
		{"dcr with slash", func(c *Config) { c.DCRImmutableID = "dcr-00/../x" }, []string{"dcr_immutable_id"}},
		{"stream without prefix", func(c *Config) { c.Stream = "AlertRelay_CL" }, []string{"stream"}},
		{"stream with space", func(c *Config) { c.Stream = "Custom-Alert Relay" }, []string{"stream"}},
		{"tenant with slash", func(c *Config) { c.TenantID = "a/b" }, []string{"tenant_id"}},
		{"tenant domain", func(c *Config) { c.TenantID = "contoso.onmicrosoft.com" }, nil},
		{"client with space", func(c *Config) { c.ClientID = "a b" }, []string{"client_id"}},
		{"scope with space", func(c *Config) { c.Scope = "a b" }, []string{"scope"}},
		{"api version", func(c *Config) { c.APIVersion = "2023-01-01&x=y" }, []string{"api_version"}},
		{"compression", func(c *Config) { c.Compression = "zstd" }, []string{"compression"}},
		{"max body too big", func(c *Config) { c.MaxBodyBytes = 1<<20 + 1 }, []string{"max_body_bytes"}},
		{"max body too small", func(c *Config) { c.MaxBodyBytes = 1000 }, []string{"max_body_bytes"}},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"timeout"}},
		{"tls without https", func(c *Config) {
			c.Endpoint, c.Authority = "http://127.0.0.1:1", "http://127.0.0.1:1"
			c.TLS = &tlsclient.Config{CAFile: "/etc/ca.pem"}
		}, []string{"tls"}},
		{"tls half a key pair", func(c *Config) { c.TLS = &tlsclient.Config{CertFile: "/c.pem"} }, []string{"tls.key_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			var fields []string
			for _, err := range c.Validate() {
				fe, ok := err.(*config.FieldError)
				if !ok {
					t.Fatalf("%T is not a *config.FieldError: %v", err, err)
				}
				if strings.Contains(fe.Msg, testSecret) {
					t.Errorf("message reveals the secret: %v", fe)
				}
				fields = append(fields, fe.Field)
			}
			slices.Sort(fields)
			fields = slices.Compact(fields)
			if diff := cmp.Diff(tc.fields, fields); diff != "" {
				t.Errorf("fields with errors (-want +got):\n%s\nerrors: %v", diff, c.Validate())
			}
		})
	}
}

// TestDCRMatchesRows checks that docs/sinks/sentinel-dcr.json is valid
// JSON and that its input stream declares exactly the members of a row,
// with the types the rows give them.
func TestDCRMatchesRows(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/sinks/sentinel-dcr.json")
	if err != nil {
		t.Fatal(err)
	}
	var dcr struct {
		Location   string `json:"location"`
		Kind       string `json:"kind"`
		Properties struct {
			Description        string `json:"description"`
			StreamDeclarations map[string]struct {
				Columns []struct{ Name, Type string } `json:"columns"`
			} `json:"streamDeclarations"`
			Destinations struct {
				LogAnalytics []struct {
					Name                string `json:"name"`
					WorkspaceResourceID string `json:"workspaceResourceId"`
				} `json:"logAnalytics"`
			} `json:"destinations"`
			DataFlows []struct {
				Streams      []string `json:"streams"`
				Destinations []string `json:"destinations"`
				TransformKql string   `json:"transformKql"`
				OutputStream string   `json:"outputStream"`
			} `json:"dataFlows"`
		} `json:"properties"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dcr); err != nil {
		t.Fatalf("sentinel-dcr.json: %v", err)
	}
	p := dcr.Properties
	decl, ok := p.StreamDeclarations["Custom-AlertRelay_CL"]
	if !ok || len(p.StreamDeclarations) != 1 {
		t.Fatalf("want one stream declaration, Custom-AlertRelay_CL, got %v", p.StreamDeclarations)
	}
	got := map[string]string{}
	for _, c := range decl.Columns {
		got[c.Name] = c.Type
	}
	// The members appendRow writes, and the type their values have.
	want := map[string]string{
		"TimeGenerated": "datetime", "EventId": "string", "Dataset": "string",
		"SourceName": "string", "Kind": "string", "Event": "dynamic",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stream columns (-rows +dcr):\n%s", diff)
	}
	row, _ := appendRow(nil, []byte(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"i","dataset":"d","provider":"p","kind":"k"}}`), time.Now())
	var members map[string]json.RawMessage
	if err := json.Unmarshal(row, &members); err != nil {
		t.Fatal(err)
	}
	for k := range members {
		if _, ok := want[k]; !ok {
			t.Errorf("row member %s is not declared in the DCR", k)
		}
	}
	if len(p.DataFlows) != 1 || p.DataFlows[0].OutputStream != "Custom-AlertRelay_CL" ||
		!slices.Equal(p.DataFlows[0].Streams, []string{"Custom-AlertRelay_CL"}) ||
		!strings.HasPrefix(p.DataFlows[0].TransformKql, "source") {
		t.Errorf("dataFlows %+v", p.DataFlows)
	}
	if len(p.Destinations.LogAnalytics) != 1 || !slices.Equal(p.DataFlows[0].Destinations, []string{p.Destinations.LogAnalytics[0].Name}) {
		t.Errorf("destinations %+v do not match the data flow's", p.Destinations)
	}
	// The copy in docs/sinks/sentinel.md is the same JSON.
	md, err := os.ReadFile("../../../docs/sinks/sentinel.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "```json\n{\n  \"location\"")
	block, _, ok2 := strings.Cut(rest, "\n```")
	var inDoc, inFile any
	if !ok || !ok2 || json.Unmarshal([]byte(`{"location"`+block), &inDoc) != nil || json.Unmarshal(raw, &inFile) != nil {
		t.Fatal("no DCR JSON block in docs/sinks/sentinel.md")
	}
	if diff := cmp.Diff(inFile, inDoc); diff != "" {
		t.Errorf("the DCR in sentinel.md differs from sentinel-dcr.json (-file +doc):\n%s", diff)
	}
	if dcr.Kind != "Direct" {
		t.Errorf("kind %q, want Direct (a DCR with its own logs ingestion endpoint)", dcr.Kind)
	}
}
