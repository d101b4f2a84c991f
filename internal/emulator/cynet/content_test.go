package cynet

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fullAlert decodes every member the spec describes (A6), with the types it
// gives; unknown members are checked separately.
type fullAlert struct {
	ClientDbId                    int64
	Uniqueness                    string
	IncidentName                  string
	IncidentDescription           string
	IncidentJsonDescription       string
	IncidentRecomendation         string
	HostId                        int64
	HostIp                        string
	HostName                      string
	ProductId                     int
	Sha256                        string
	Path                          string
	CommandLine                   string
	AlertIp                       int64
	AlertDomain                   string
	AlertUrl                      string
	DomainId                      int64
	DomainCrc                     int64
	UserId                        int64
	UserName                      string
	Severity                      int
	Status                        int
	AlertType                     int
	DateIn                        string
	LastSeen                      string
	DateChanged                   string
	FirstSeenUtc                  string
	LastSeenUtc                   string
	EpsLastSeenLocal              string
	EpsLastSeenUtc                string
	RemediationStatus             int
	EpsActionStatus               int
	EpsRemediationActionPerformed int
	AutoRemediationId             int64
	File                          *struct {
		ClientDbId      int64
		Sha256          string
		CommonFileName  string
		MetaProductName string
		Company         string
		RiskLevel       int
		EndPoints       int
		Antivirus       string
		VtRiskLevel     int
		LastSeen        string
		DateIn          string
	}
	AutoRemediate *struct {
		AlertId  int64
		Severity string
		RuleName string
	}
	AlertGraphJsonResolved string
	AlertGraphJsonRaw      string
	ScanGroupName          string
	Tags                   []any
	MitreDetails           string
}

var (
	sha256Re   = regexp.MustCompile(`^[0-9A-F]{64}$`)
	plainTSRe  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)
	zTSRe      = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	userNameRe = regexp.MustCompile(`^(ACME|NT AUTHORITY)\\[A-Za-z]+$`)
)

func TestAlertContent(t *testing.T) {
	clk := newClock()
	s := New(Options{Now: clk.Now, Seed: 42})
	const n = 2000
	first := s.AddAlerts(n)
	types := map[int]int{}
	sev := map[int]int{}
	status := map[int]int{}
	names := map[string]bool{}
	uniq := map[string]bool{}
	for id := first; id < first+n; id++ {
		b, ok := s.AlertJSON(id)
		if !ok {
			t.Fatalf("alert %d missing", id)
		}
		var a fullAlert
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("alert %d: %v\n%s", id, err, b)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"Id", "AlertId", "Sha256Hex", "Md5"} {
			if _, bad := raw[k]; bad {
				t.Fatalf("unexpected top-level member %s", k)
			}
		}
		for _, k := range []string{"ScanGuid", "Modules", "Tags", "MitreDetails"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("extra member %s missing", k)
			}
		}
		if a.ClientDbId != id || uniq[a.Uniqueness] {
			t.Fatalf("alert %d: id %d, uniqueness %q repeated", id, a.ClientDbId, a.Uniqueness)
		}
		uniq[a.Uniqueness] = true
		types[a.AlertType]++
		sev[a.Severity]++
		status[a.Status]++
		names[a.IncidentName] = true

		// IncidentJsonDescription: JSON inside a string, keys with spaces.
		var d struct {
			Hostname    string `json:"Hostname"`
			HostIP      string `json:"Host Ip"`
			AlertName   string `json:"Alert Name"`
			RemoteIP    string `json:"Remote Ip"`
			FileSHA     string `json:"File SHA256"`
			ParentProcd struct {
				SHA string `json:"Process SHA256"`
			} `json:"Parent Process Details"`
			Extra struct {
				Engine string `json:"Detection Engine"`
			} `json:"Extra Info"`
		}
		if err := json.Unmarshal([]byte(a.IncidentJsonDescription), &d); err != nil {
			t.Fatalf("IncidentJsonDescription of %d: %v", id, err)
		}
		if d.Hostname != a.HostName || d.HostIP != a.HostIp || d.AlertName != a.IncidentName ||
			!sha256Re.MatchString(d.ParentProcd.SHA) || d.Extra.Engine == "" {
			t.Fatalf("description of %d: %+v", id, d)
		}
		var g struct{ Nodes, Edges []map[string]any }
		if err := json.Unmarshal([]byte(a.AlertGraphJsonResolved), &g); err != nil || len(g.Nodes) == 0 || len(g.Edges) == 0 {
			t.Fatalf("AlertGraphJsonResolved of %d: %v", id, err)
		}
		if !json.Valid([]byte(a.AlertGraphJsonRaw)) {
			t.Fatalf("AlertGraphJsonRaw of %d", id)
		}

		if a.AutoRemediate == nil || a.AutoRemediate.AlertId != id || a.AutoRemediate.Severity != severityNames[a.Severity] {
			t.Fatalf("AutoRemediate of %d: %+v", id, a.AutoRemediate)
		}
		if !userNameRe.MatchString(a.UserName) || a.IncidentRecomendation == "" || a.Tags == nil {
			t.Fatalf("alert %d: user %q, recommendation %q, tags %v", id, a.UserName, a.IncidentRecomendation, a.Tags)
		}
		for _, ts := range []string{a.DateIn, a.LastSeen, a.DateChanged, a.EpsLastSeenLocal} {
			if !plainTSRe.MatchString(ts) {
				t.Fatalf("alert %d: zone-less timestamp %q", id, ts)
			}
		}
		for _, ts := range []string{a.FirstSeenUtc, a.LastSeenUtc, a.EpsLastSeenUtc} {
			if !zTSRe.MatchString(ts) {
				t.Fatalf("alert %d: UTC timestamp %q", id, ts)
			}
		}
		if a.LastSeen != "2025-03-01T08:00:00" || a.LastSeenUtc != "2025-03-01T08:00:00Z" || a.DateIn > a.LastSeen {
			t.Fatalf("alert %d: DateIn %s LastSeen %s", id, a.DateIn, a.LastSeen)
		}
		if a.FirstSeenUtc != a.DateIn+"Z" {
			t.Fatalf("alert %d: FirstSeenUtc %s DateIn %s", id, a.FirstSeenUtc, a.DateIn)
		}

		switch a.AlertType {
		case typeFile:
			if !sha256Re.MatchString(a.Sha256) || a.File == nil || a.File.Sha256 != a.Sha256 || a.Path == "" ||
				a.CommandLine == "" || d.FileSHA != a.Sha256 || a.AlertIp != 0 || a.AlertDomain != "" || a.AlertUrl != "" {
				t.Fatalf("file alert %d: %s", id, b)
			}
		case typeDomain:
			if a.AlertDomain == "" || a.DomainCrc == 0 || a.File != nil || a.Sha256 != "" {
				t.Fatalf("domain alert %d: %s", id, b)
			}
		case typeIP:
			v, ok := IPToAlertIP(d.RemoteIP)
			if !ok || a.AlertIp != v || a.AlertIp <= 0 || AlertIPToIP(a.AlertIp) != d.RemoteIP {
				t.Fatalf("IP alert %d: AlertIp %d, Remote Ip %q", id, a.AlertIp, d.RemoteIP)
			}
		case typeURL:
			if !strings.HasPrefix(a.AlertUrl, "http") || a.File != nil {
				t.Fatalf("URL alert %d: %s", id, b)
			}
		default:
			t.Fatalf("alert %d: AlertType %d", id, a.AlertType)
		}
	}
	for typ := 0; typ < 4; typ++ {
		if types[typ] < n/20 {
			t.Errorf("AlertType %d: %d of %d", typ, types[typ], n)
		}
	}
	if sev[3]+sev[4] < n/2 || sev[1] == 0 || sev[5] == 0 || len(sev) != 5 {
		t.Errorf("severity mix %v", sev)
	}
	if status[0] < n*3/4 || len(status) != 4 {
		t.Errorf("status mix %v", status)
	}
	for _, want := range []string{"Malicious Binary Executed", "File Dumped on the Disk", "Connection to Malicious Domain",
		"Connection to Malicious IP", "Access to Malicious URL"} {
		if !names[want] {
			t.Errorf("IncidentName %q never generated", want)
		}
	}
}

func TestAlertDeterminism(t *testing.T) {
	a, b, c := New(Options{Seed: 7}), New(Options{Seed: 7}), New(Options{Seed: 8})
	when := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, s := range []*Server{a, b, c} {
		s.AddAlertsAt(50, when)
	}
	same := 0
	for id := FirstAlertID; id < FirstAlertID+50; id++ {
		x, _ := a.AlertJSON(id)
		y, _ := b.AlertJSON(id)
		z, _ := c.AlertJSON(id)
		if diff := cmp.Diff(string(x), string(y)); diff != "" {
			t.Fatalf("same seed, alert %d differs:\n%s", id, diff)
		}
		if string(x) == string(z) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d alerts identical across seeds", same)
	}
	if _, ok := a.AlertJSON(FirstAlertID + 50); ok {
		t.Error("AlertJSON of a missing alert")
	}
}

func TestAlertIPEncoding(t *testing.T) {
	for s, want := range map[string]int64{"10.1.4.17": 0x0A010411, "0.0.0.1": 1, "255.255.255.255": 0xFFFFFFFF, "185.1.2.3": 0xB9010203} {
		got, ok := IPToAlertIP(s)
		if !ok || got != want || AlertIPToIP(got) != s {
			t.Errorf("%s: %#x %v, want %#x", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "a.b.c.d", "1..2.3", "1.2.3.0004"} {
		if _, ok := IPToAlertIP(s); ok {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC)
	for _, v := range []string{"2025-03-01 08:30:00", "2025-03-01T08:30:00Z", "2025-03-01T08:30:00.000000Z",
		"2025-03-01T08:30:00", "2025-03-01T10:30:00+02:00", "2025-03-01 08:30:00.000"} {
		got, err := ParseTime(v)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%q: %v %v", v, got, err)
		}
	}
	if got, err := ParseTime("2025-03-01"); err != nil || !got.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date only: %v %v", got, err)
	}
}
