package cynet

import (
	"hash/crc32"
	"strconv"
	"time"
)

// This file holds the alert content: a catalog of hosts, users, processes and
// indicators built once from Options.Seed, and a hand-written JSON appender
// that renders one alert from its ClientDbId and its three timestamps.
//
// Everything that is not a timestamp or the Status is a pure function of
// (Seed, ClientDbId), drawn from a splitmix64 stream seeded by both, so an
// alert renders to the same bytes on every request until UpdateAlert or
// SetStatus changes its state. Nothing is stored per alert but a 32-byte
// record (see store.go).

// prng is a splitmix64 stream: tiny, fast, and good enough for test data.
type prng uint64

func newPRNG(seed uint64, id int64) prng {
	// Hash id before mixing it in: plain seed^id*golden would make the
	// stream of id+1 the stream of id shifted by one step.
	return prng(mix64(seed*0xD1B54A32D192ED03 ^ mix64(uint64(id))))
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (p *prng) next() uint64 {
	*p += 0x9E3779B97F4A7C15
	return mix64(uint64(*p))
}

// intn returns a value in [0, n).
func (p *prng) intn(n int) int { return int(p.next() % uint64(n)) }

// pct reports true with probability pc percent.
func (p *prng) pct(pc int) bool { return p.intn(100) < pc }

// pick returns a random element of s.
func pick[T any](p *prng, s []T) T { return s[p.intn(len(s))] }

// weighted returns the index drawn from cumulative-free weights w.
func weighted(p *prng, w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	r := p.intn(total)
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

// Alert types (spec A7).
const (
	typeFile   = 0
	typeDomain = 1
	typeIP     = 2
	typeURL    = 3
)

// Relative weights of AlertType 0..3 (file alerts dominate on real EDRs:
// INFERRED), Severity 1..5 (weighted toward Medium/High) and Status 0..3
// (mostly Open).
var (
	typeWeights     = []int{50, 20, 15, 15}
	severityWeights = []int{5, 15, 35, 35, 10}
	statusWeights   = []int{85, 7, 4, 4}
)

// severityNames are the A7 names, used where the API carries a string
// severity (AutoRemediate.Severity, the description JSON).
var severityNames = [...]string{1: "Information", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}

// incident is one kind of alert of a given AlertType.
type incident struct {
	name, desc, recom, mitre string
	engines                  []string
}

var incidents = [4][]incident{
	typeFile: {
		{"Malicious Binary Executed", "A file identified as malicious was executed on the endpoint",
			"Kill the process, quarantine the file and verify how it reached the host. Consider isolating the host until it is cleaned.",
			"T1204.002 - User Execution: Malicious File", []string{"Cynet AI", "Static Analysis", "Threat Intelligence"}},
		{"File Dumped on the Disk", "A malicious file was written to the disk by a running process",
			"Delete or quarantine the file and investigate the process that wrote it.",
			"T1105 - Ingress Tool Transfer", []string{"Cynet AI", "Static Analysis"}},
		{"Suspicious Process Behavior", "A process performed actions typical of malware (injection, persistence changes)",
			"Review the process tree; if the activity is not expected, kill the process and scan the host.",
			"T1055 - Process Injection", []string{"Behavioral Analysis", "Memory Scanner"}},
		{"Credential Dumping Tool Detected", "A tool able to read credentials from LSASS memory was found",
			"Kill the process, reset the credentials of users logged on to the host and look for lateral movement.",
			"T1003.001 - OS Credential Dumping: LSASS Memory", []string{"Memory Scanner", "Behavioral Analysis"}},
		{"Ransomware Behavior Detected", "A process encrypted or renamed many user files in a short time",
			"Isolate the host immediately, kill the process and restore affected files from backup.",
			"T1486 - Data Encrypted for Impact", []string{"Behavioral Analysis", "Deception"}},
	},
	typeDomain: {
		{"Connection to Malicious Domain", "The endpoint connected to a domain known to be malicious",
			"Block the domain on the perimeter and check the process that initiated the connection.",
			"T1071.001 - Application Layer Protocol: Web Protocols", []string{"Threat Intelligence", "Network Analytics"}},
		{"DNS Query to DGA Domain", "The endpoint resolved a domain that looks algorithmically generated",
			"Investigate the querying process; DGA traffic often indicates a beaconing implant.",
			"T1568.002 - Dynamic Resolution: Domain Generation Algorithms", []string{"Network Analytics", "Cynet AI"}},
		{"Connection to Phishing Domain", "A browser on the endpoint opened a domain used for credential phishing",
			"Reset the user's password if credentials were entered and block the domain.",
			"T1566.002 - Phishing: Spearphishing Link", []string{"Threat Intelligence"}},
	},
	typeIP: {
		{"Connection to Malicious IP", "The endpoint connected to an IP address known to be malicious",
			"Block the address on the firewall and review the process that opened the connection.",
			"T1071 - Application Layer Protocol", []string{"Threat Intelligence", "Network Analytics"}},
		{"Outbound Connection to Known C&C Server", "A process connected to a command-and-control server",
			"Isolate the host, kill the process and hunt for the same indicator on other hosts.",
			"T1071.001 - Application Layer Protocol: Web Protocols", []string{"Threat Intelligence"}},
		{"Communication with Tor Exit Node", "The endpoint exchanged traffic with a Tor exit node",
			"Verify whether Tor usage is allowed; if not, remove the client and block the traffic.",
			"T1090.003 - Proxy: Multi-hop Proxy", []string{"Network Analytics"}},
	},
	typeURL: {
		{"Access to Malicious URL", "The endpoint requested a URL known to serve malware",
			"Block the URL and scan the host for downloaded files.",
			"T1189 - Drive-by Compromise", []string{"Threat Intelligence", "Network Analytics"}},
		{"Phishing URL Accessed", "A user opened a URL that hosts a credential phishing page",
			"Reset the user's credentials if they were entered and notify the user.",
			"T1566.002 - Phishing: Spearphishing Link", []string{"Threat Intelligence"}},
		{"File Downloaded from Malicious URL", "A file was downloaded from a URL flagged as malicious",
			"Quarantine the downloaded file and block the URL.",
			"T1105 - Ingress Tool Transfer", []string{"Threat Intelligence", "Static Analysis"}},
	},
}

// host is one endpoint of the synthetic tenant.
type host struct {
	id     int64
	name   string
	ip     string
	tz     int64 // seconds east of UTC, for EpsLastSeenLocal
	group  string
	users  []string // DOMAIN\user
	userID []int64
}

// proc is a process image: name, path and a fixed SHA-256.
type proc struct {
	name, path, sha string
}

// catalog is the per-seed content every alert draws from.
type catalog struct {
	seed     uint64
	hosts    []host
	parents  []proc // benign parents (explorer.exe, outlook.exe, ...)
	netProcs []proc // processes that open network connections
}

var (
	firstNames = []string{"bob", "alice", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
		"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf"}
	groupNames = []string{"Default Group", "Workstations", "Servers", "Finance Laptops", "R&D"}
	tzOffsets  = []int64{0, 3600, 7200, 10800, -18000, -21600, -28800, 19800}
	malNames   = []string{"invoice_0231.exe", "update_helper.exe", "svch0st.exe", "payload.dll", "mimi.exe",
		"Scan_2025-03.pdf.exe", "setup_x64.msi", "chrome_updater.exe", "rundll.dat", "wupd.ps1",
		"report Q1 (final).xlsm", "AnyDesk_portable.exe", "crypt0r.exe", "tmp5F1A.tmp"}
	malDirs = []string{`c:\users\%u\downloads\`, `c:\users\%u\appdata\local\temp\`, `c:\programdata\`,
		`c:\windows\temp\`, `c:\users\%u\appdata\roaming\microsoft\`, `c:\users\public\`}
	malCmdArgs = []string{"", " /q", " -silent -install", " --connect 443", " -enc SQBFAFgA", " /s /norestart"}
	avNames    = []string{"Trojan:Win32/Wacatac.B!ml", "HackTool:Win64/Mimikatz", "Ransom:Win32/LockBit",
		"Backdoor:Win32/CobaltStrike", "Trojan:Win32/Emotet", "", "PUA:Win32/Presenoker"}
	companies  = []string{"", "", "Microsoft Corporation", "Unknown Publisher", "AnyDesk Software GmbH"}
	badDomains = []string{"login-micros0ft-support.com", "cdn-update-check.net", "secure-docs-share.info",
		"paypa1-verify.com", "files-transfer.top", "telemetry-gw.xyz", "office365-auth.click", "dl.fastcdn-mirror.ru"}
	tlds     = []string{".top", ".xyz", ".info", ".biz", ".ru", ".cn", ".net"}
	urlPaths = []string{"/wp-content/plugins/upd.php", "/invoice/view?id=", "/login/verify.html",
		"/download/setup.exe", "/gate.php?u=", "/static/js/jquery.min.js", "/o365/signin"}
	ipFirstOcts = []int{185, 45, 91, 194, 103, 5, 198, 212, 77, 23}
	modules     = []string{"EPS", "Memory Scanner", "Network Analytics", "Deception", "User Behavior"}
	ruleNames   = []string{"Kill malicious process", "Quarantine malicious file", "Isolate host",
		"Block connection", "Notify only"}
	ruleActions = []string{"KillProcess", "QuarantineFile", "IsolateHost", "BlockTraffic", "None"}
	ruleStates  = []string{"Succeeded", "Succeeded", "Failed", "NotExecuted", "Pending"}
)

// newCatalog builds 400 hosts with 1-3 users each and the process tables.
func newCatalog(seed int64) *catalog {
	c := &catalog{seed: uint64(seed)}
	p := newPRNG(c.seed, -1)
	c.hosts = make([]host, 400)
	for i := range c.hosts {
		h := &c.hosts[i]
		h.id = 5000 + int64(i)*7 + int64(p.intn(7))
		switch i % 10 {
		case 0:
			h.name = "SRV-APP" + pad(i/10, 2)
		case 1, 2:
			h.name = "LT-FIN-" + pad(i, 3)
		default:
			h.name = "WS-" + pad(i, 3)
		}
		h.ip = "10." + strconv.Itoa(1+i/250) + "." + strconv.Itoa(p.intn(16)) + "." + strconv.Itoa(10+i%240)
		h.tz = pick(&p, tzOffsets)
		h.group = pick(&p, groupNames)
		nu := 1 + p.intn(3)
		for j := 0; j < nu; j++ {
			if i%10 == 0 && j == 0 {
				h.users = append(h.users, `NT AUTHORITY\SYSTEM`)
			} else {
				h.users = append(h.users, `ACME\`+pick(&p, firstNames))
			}
			h.userID = append(h.userID, 100+int64(p.intn(900)))
		}
	}
	mk := func(name, path string) proc { return proc{name, path, hexSHA(&p)} }
	c.parents = []proc{
		mk("explorer.exe", `c:\windows\explorer.exe`),
		mk("outlook.exe", `c:\program files\microsoft office\root\office16\outlook.exe`),
		mk("winword.exe", `c:\program files\microsoft office\root\office16\winword.exe`),
		mk("cmd.exe", `c:\windows\system32\cmd.exe`),
		mk("powershell.exe", `c:\windows\system32\windowspowershell\v1.0\powershell.exe`),
		mk("services.exe", `c:\windows\system32\services.exe`),
		mk("chrome.exe", `c:\program files\google\chrome\application\chrome.exe`),
	}
	c.netProcs = []proc{
		mk("chrome.exe", `c:\program files\google\chrome\application\chrome.exe`),
		mk("msedge.exe", `c:\program files (x86)\microsoft\edge\application\msedge.exe`),
		mk("powershell.exe", `c:\windows\system32\windowspowershell\v1.0\powershell.exe`),
		mk("rundll32.exe", `c:\windows\system32\rundll32.exe`),
		mk("svchost.exe", `c:\windows\system32\svchost.exe`),
		mk("firefox.exe", `c:\program files\mozilla firefox\firefox.exe`),
	}
	return c
}

// pad formats n with leading zeros to width w.
func pad(n, w int) string {
	s := strconv.Itoa(n)
	for len(s) < w {
		s = "0" + s
	}
	return s
}

const hexUpper = "0123456789ABCDEF"

// hexSHA returns 64 random upper-case hex digits, like Cynet's Sha256.
func hexSHA(p *prng) string {
	var b [64]byte
	for i := 0; i < 4; i++ {
		v := p.next()
		for j := 0; j < 16; j++ {
			b[i*16+j] = hexUpper[v&15]
			v >>= 4
		}
	}
	return string(b[:])
}

// alertView is the derived content of one alert.
type alertView struct {
	typ, sev, status int
	inc              *incident
	h                *host
	user             string
	userID           int64
	sha, path, cmd   string // file alerts: the file; network alerts: the connecting process
	fileName         string
	parent           proc
	pid, ppid        int
	alertIP          uint32
	remoteIP         string
	domain, url      string
	engine           string
	uniq             string
	scanGUID         string
	productID        int
	riskLevel, vt    int
	endpoints        int
	av, company      string
	fileID           int64
	ruleIdx          int
	ruleID           int64
	remStatus        int
	modules          []string
	confidence       string
}

// view derives the content of alert id; status < 0 means "as generated".
func (c *catalog) view(id int64, status int8) alertView {
	p := newPRNG(c.seed, id)
	var v alertView
	v.typ = weighted(&p, typeWeights)
	v.sev = 1 + weighted(&p, severityWeights)
	v.status = weighted(&p, statusWeights)
	if status >= 0 {
		v.status = int(status)
	}
	list := incidents[v.typ]
	v.inc = &list[p.intn(len(list))]
	v.engine = pick(&p, v.inc.engines)
	v.h = &c.hosts[p.intn(len(c.hosts))]
	ui := p.intn(len(v.h.users))
	v.user, v.userID = v.h.users[ui], v.h.userID[ui]
	v.pid = 1000 + 4*p.intn(16000)
	v.ppid = 500 + 4*p.intn(4000)
	v.uniq = hexSHA(&p)[:32]
	g := hexSHA(&p)
	v.scanGUID = g[:8] + "-" + g[8:12] + "-" + g[12:16] + "-" + g[16:20] + "-" + g[20:32]
	v.confidence = pick(&p, []string{"High", "Medium", "Low"})
	v.ruleIdx = p.intn(len(ruleNames))
	v.ruleID = 10 + int64(v.ruleIdx)
	v.remStatus = p.intn(3)
	v.modules = modules[:1+p.intn(3)]
	short := v.user[indexByte(v.user, '\\')+1:]
	switch v.typ {
	case typeFile:
		v.parent = pick(&p, c.parents)
		v.fileName = pick(&p, malNames)
		dir := pick(&p, malDirs)
		v.path = replaceU(dir, short) + v.fileName
		v.cmd = `"` + v.path + `"` + pick(&p, malCmdArgs)
		v.sha = hexSHA(&p)
		v.riskLevel = 60 + p.intn(41)
		v.vt = p.intn(72)
		v.endpoints = 1 + p.intn(5)
		v.av = pick(&p, avNames)
		v.company = pick(&p, companies)
		v.fileID = 200000 + int64(p.intn(800000))
		v.productID = 0
	default:
		np := pick(&p, c.netProcs)
		v.parent = pick(&p, c.parents)
		v.path = np.path
		v.cmd = `"` + np.path + `"`
		v.fileName = np.name
		v.productID = 1 + p.intn(20)
		switch v.typ {
		case typeDomain:
			v.domain = randomDomain(&p)
		case typeIP:
			v.alertIP = uint32(pick(&p, ipFirstOcts))<<24 | uint32(p.intn(256))<<16 | uint32(p.intn(256))<<8 | uint32(1+p.intn(254))
			v.remoteIP = ipString(v.alertIP)
		case typeURL:
			v.domain = randomDomain(&p)
			scheme := "http://"
			if p.pct(40) {
				scheme = "https://"
			}
			path := pick(&p, urlPaths)
			if path[len(path)-1] == '=' {
				path += strconv.Itoa(p.intn(100000))
			}
			v.url = scheme + v.domain + path
		}
	}
	return v
}

// indexByte is strings.IndexByte without the import.
func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// replaceU substitutes the first "%u" of dir with user.
func replaceU(dir, user string) string {
	for i := 0; i+1 < len(dir); i++ {
		if dir[i] == '%' && dir[i+1] == 'u' {
			return dir[:i] + user + dir[i+2:]
		}
	}
	return dir
}

// randomDomain returns either a look-alike domain from a list or a
// DGA-looking one (8-14 random letters and digits).
func randomDomain(p *prng) string {
	if p.pct(50) {
		return pick(p, badDomains)
	}
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	n := 8 + p.intn(7)
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[p.intn(len(alnum))]
	}
	return string(b) + pick(p, tlds)
}

// ipString formats a network-order IPv4 integer as dotted quad.
func ipString(ip uint32) string {
	b := make([]byte, 0, 15)
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, uint64(ip>>(8*i)&0xff), 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	return string(b)
}

// IPToAlertIP converts a dotted-quad IPv4 address to the integer the
// emulator puts in AlertIp: the four bytes in network (big-endian) order, so
// 10.1.4.17 is 0x0A010411 = 167838737 (an INFERRED choice; the real byte
// order is undocumented, spec A6). It returns false if s is not an IPv4
// address.
func IPToAlertIP(s string) (int64, bool) {
	var v uint32
	parts := 0
	n, digits := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || n > 255 {
				return 0, false
			}
			v = v<<8 | uint32(n)
			parts++
			n, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits == 3 {
			return 0, false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if parts != 4 {
		return 0, false
	}
	return int64(v), true
}

// AlertIPToIP is the inverse of IPToAlertIP.
func AlertIPToIP(v int64) string { return ipString(uint32(v)) }

// jsonSafe marks the bytes that appendStr copies unescaped.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendStr appends s as a JSON string literal. Non-ASCII bytes are copied
// as is (the generator only produces valid UTF-8).
func appendStr[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && jsonSafe[s[j]] {
			j++
		}
		b = append(b, s[i:j]...)
		if j == len(s) {
			break
		}
		switch c := s[j]; c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&15])
		}
		i = j + 1
	}
	return append(b, '"')
}

// Timestamp layouts of the alert object. Cynet mixes zone-less UTC values
// (DateIn, LastSeen, DateChanged) with "Z" ones (*Utc) (spec A6, A10).
const (
	tsPlain  = iota // 2006-01-02T15:04:05
	tsZ             // 2006-01-02T15:04:05Z
	tsMilliZ        // 2006-01-02T15:04:05.000Z (SyncTimeUtc)
)

// appendTS appends the quoted UTC time ns (Unix nanoseconds) in layout kind.
func appendTS(b []byte, ns int64, kind int) []byte {
	t := time.Unix(0, ns).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, '"')
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, int(mo))
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, s)
	switch kind {
	case tsZ:
		b = append(b, 'Z')
	case tsMilliZ:
		ms := t.Nanosecond() / 1e6
		b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	}
	return append(b, '"')
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// renderer renders alerts; it keeps scratch buffers for the JSON-in-string
// members and is not safe for concurrent use.
type renderer struct {
	c     *catalog
	inner []byte // JSON-in-string members
	rows  []row  // page snapshot
	out   []byte // response body
}

// appendAlert appends the JSON object of alert id in state r to b. Member
// order follows the schema sample of spec A6; see the package doc for the
// members and their types.
func (rd *renderer) appendAlert(b []byte, id int64, r record) []byte {
	v := rd.c.view(id, r.status)
	h := v.h
	b = append(b, `{"ClientDbId":`...)
	b = appendInt(b, id)
	b = append(b, `,"Uniqueness":`...)
	b = appendStr(b, v.uniq)
	b = append(b, `,"IncidentName":`...)
	b = appendStr(b, v.inc.name)
	b = append(b, `,"IncidentDescription":`...)
	b = appendStr(b, v.inc.desc)
	b = append(b, `,"IncidentJsonDescription":`...)
	rd.inner = rd.appendDescription(rd.inner[:0], &v, r)
	b = appendStr(b, rd.inner)
	b = append(b, `,"IncidentRecomendation":`...)
	b = appendStr(b, v.inc.recom)
	b = append(b, `,"HostId":`...)
	b = appendInt(b, h.id)
	b = append(b, `,"HostIp":`...)
	b = appendStr(b, h.ip)
	b = append(b, `,"HostName":`...)
	b = appendStr(b, h.name)
	b = append(b, `,"ProductId":`...)
	b = appendInt(b, int64(v.productID))
	b = append(b, `,"Sha256":`...)
	b = appendStr(b, v.sha)
	b = append(b, `,"Path":`...)
	b = appendStr(b, v.path)
	b = append(b, `,"CommandLine":`...)
	b = appendStr(b, v.cmd)
	b = append(b, `,"AlertIp":`...)
	b = appendInt(b, int64(v.alertIP))
	b = append(b, `,"AlertDomain":`...)
	if v.typ == typeDomain {
		b = appendStr(b, v.domain)
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"AlertUrl":`...)
	b = appendStr(b, v.url)
	b = append(b, `,"DomainId":`...)
	var domID, domCRC int64
	if v.domain != "" {
		domCRC = int64(crc32.ChecksumIEEE([]byte(v.domain)))
		domID = 30000 + domCRC%50000
	}
	b = appendInt(b, domID)
	b = append(b, `,"DomainCrc":`...)
	b = appendInt(b, domCRC)
	b = append(b, `,"UserId":`...)
	b = appendInt(b, v.userID)
	b = append(b, `,"UserName":`...)
	b = appendStr(b, v.user)
	b = append(b, `,"Severity":`...)
	b = appendInt(b, int64(v.sev))
	b = append(b, `,"Status":`...)
	b = appendInt(b, int64(v.status))
	b = append(b, `,"AlertType":`...)
	b = appendInt(b, int64(v.typ))
	b = append(b, `,"DateIn":`...)
	b = appendTS(b, r.dateIn, tsPlain)
	b = append(b, `,"LastSeen":`...)
	b = appendTS(b, r.lastSeen, tsPlain)
	b = append(b, `,"DateChanged":`...)
	b = appendTS(b, r.dateChanged, tsPlain)
	b = append(b, `,"FirstSeenUtc":`...)
	b = appendTS(b, r.dateIn, tsZ)
	b = append(b, `,"LastSeenUtc":`...)
	b = appendTS(b, r.lastSeen, tsZ)
	b = append(b, `,"EpsLastSeenLocal":`...)
	b = appendTS(b, r.lastSeen+h.tz*1e9, tsPlain)
	b = append(b, `,"EpsLastSeenUtc":`...)
	b = appendTS(b, r.lastSeen, tsZ)
	b = append(b, `,"RemediationStatus":`...)
	b = appendInt(b, int64(v.remStatus))
	b = append(b, `,"EpsActionStatus":`...)
	b = appendInt(b, int64(v.remStatus))
	b = append(b, `,"EpsRemediationActionPerformed":`...)
	b = appendInt(b, int64(min(v.remStatus, 1)))
	b = append(b, `,"AutoRemediationId":`...)
	b = appendInt(b, v.ruleID)
	b = append(b, `,"File":`...)
	if v.typ == typeFile {
		b = append(b, `{"ClientDbId":`...)
		b = appendInt(b, v.fileID)
		b = append(b, `,"Sha256":`...)
		b = appendStr(b, v.sha)
		b = append(b, `,"CommonFileName":`...)
		b = appendStr(b, v.fileName)
		b = append(b, `,"MetaProductName":`...)
		b = appendStr(b, "")
		b = append(b, `,"Company":`...)
		b = appendStr(b, v.company)
		b = append(b, `,"RiskLevel":`...)
		b = appendInt(b, int64(v.riskLevel))
		b = append(b, `,"EndPoints":`...)
		b = appendInt(b, int64(v.endpoints))
		b = append(b, `,"Antivirus":`...)
		b = appendStr(b, v.av)
		b = append(b, `,"VtRiskLevel":`...)
		b = appendInt(b, int64(v.vt))
		b = append(b, `,"LastSeen":`...)
		b = appendTS(b, r.lastSeen, tsPlain)
		b = append(b, `,"DateIn":`...)
		b = appendTS(b, r.dateIn, tsPlain)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"AutoRemediate":{"AlertId":`...)
	b = appendInt(b, id)
	b = append(b, `,"RuleId":`...)
	b = appendInt(b, v.ruleID)
	b = append(b, `,"RuleName":`...)
	b = appendStr(b, ruleNames[v.ruleIdx])
	b = append(b, `,"Severity":`...)
	b = appendStr(b, severityNames[v.sev])
	b = append(b, `,"Action":`...)
	b = appendStr(b, ruleActions[v.ruleIdx])
	b = append(b, `,"Status":`...)
	b = appendStr(b, ruleStates[v.remStatus])
	b = append(b, `},"AlertGraphJsonResolved":`...)
	rd.inner = rd.appendGraph(rd.inner[:0], &v, true)
	b = appendStr(b, rd.inner)
	b = append(b, `,"AlertGraphJsonRaw":`...)
	rd.inner = rd.appendGraph(rd.inner[:0], &v, false)
	b = appendStr(b, rd.inner)
	b = append(b, `,"ScanGroupName":`...)
	b = appendStr(b, h.group)
	// Members below are only in the newer payloads (spec A6, [MOCK]); they
	// exercise the clients' pass-through of unknown members.
	b = append(b, `,"ScanGuid":`...)
	b = appendStr(b, v.scanGUID)
	b = append(b, `,"Modules":[`...)
	for i, m := range v.modules {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, m)
	}
	b = append(b, `],"Tags":[],"MitreDetails":`...)
	b = appendStr(b, v.inc.mitre)
	return append(b, '}')
}

// appendDescription appends the object that IncidentJsonDescription carries
// as a string: keys with spaces, nested "Parent Process Details" and
// "Extra Info" (spec A6, [LC-test]).
func (rd *renderer) appendDescription(b []byte, v *alertView, r record) []byte {
	b = append(b, `{"Alert Name":`...)
	b = appendStr(b, v.inc.name)
	b = append(b, `,"Hostname":`...)
	b = appendStr(b, v.h.name)
	b = append(b, `,"Host Ip":`...)
	b = appendStr(b, v.h.ip)
	b = append(b, `,"User Name":`...)
	b = appendStr(b, v.user)
	b = append(b, `,"Severity":`...)
	b = appendStr(b, severityNames[v.sev])
	b = append(b, `,"Detection Time":`...)
	b = appendTS(b, r.dateIn, tsZ)
	switch v.typ {
	case typeFile:
		b = append(b, `,"File Name":`...)
		b = appendStr(b, v.fileName)
		b = append(b, `,"File Path":`...)
		b = appendStr(b, v.path)
		b = append(b, `,"File SHA256":`...)
		b = appendStr(b, v.sha)
	case typeDomain:
		b = append(b, `,"Remote Domain":`...)
		b = appendStr(b, v.domain)
	case typeIP:
		b = append(b, `,"Remote Ip":`...)
		b = appendStr(b, v.remoteIP)
		b = append(b, `,"Remote Port":`...)
		b = appendInt(b, int64(pickPort(v.pid)))
	case typeURL:
		b = append(b, `,"Remote Url":`...)
		b = appendStr(b, v.url)
	}
	b = append(b, `,"Command Line":`...)
	b = appendStr(b, v.cmd)
	b = append(b, `,"Process Id":`...)
	b = appendInt(b, int64(v.pid))
	b = append(b, `,"Parent Process Details":{"Process Name":`...)
	b = appendStr(b, v.parent.name)
	b = append(b, `,"Process Path":`...)
	b = appendStr(b, v.parent.path)
	b = append(b, `,"Process SHA256":`...)
	b = appendStr(b, v.parent.sha)
	b = append(b, `,"Process Id":`...)
	b = appendInt(b, int64(v.ppid))
	b = append(b, `},"Extra Info":{"Detection Engine":`...)
	b = appendStr(b, v.engine)
	b = append(b, `,"Confidence":`...)
	b = appendStr(b, v.confidence)
	b = append(b, `,"Mitre Technique":`...)
	b = appendStr(b, v.inc.mitre)
	return append(b, "}}"...)
}

// pickPort derives a plausible remote port from the pid.
func pickPort(pid int) int { return [...]int{443, 80, 8080, 4444, 53, 8443}[pid%6] }

// appendGraph appends the alert graph carried as a string by
// AlertGraphJsonResolved (names) or AlertGraphJsonRaw (ids only).
func (rd *renderer) appendGraph(b []byte, v *alertView, resolved bool) []byte {
	var ioc, kind, verb string
	switch v.typ {
	case typeFile:
		ioc, kind, verb = v.path, "file", "executed"
		if v.inc.name == "File Dumped on the Disk" {
			verb = "wrote"
		}
	case typeDomain:
		ioc, kind, verb = v.domain, "domain", "resolved"
	case typeIP:
		ioc, kind, verb = v.remoteIP, "ip", "connected"
	default:
		ioc, kind, verb = v.url, "url", "requested"
	}
	b = append(b, `{"nodes":[{"id":"h1","type":"host",`...)
	if resolved {
		b = append(b, `"name":`...)
		b = appendStr(b, v.h.name)
	} else {
		b = append(b, `"ref":`...)
		b = appendInt(b, v.h.id)
	}
	b = append(b, `},{"id":"p1","type":"process",`...)
	if resolved {
		b = append(b, `"name":`...)
		b = appendStr(b, v.parent.name)
		b = append(b, ',')
	}
	b = append(b, `"pid":`...)
	b = appendInt(b, int64(v.ppid))
	b = append(b, `},{"id":"p2","type":"process",`...)
	if resolved {
		b = append(b, `"name":`...)
		b = appendStr(b, v.fileName)
		b = append(b, ',')
	}
	b = append(b, `"pid":`...)
	b = appendInt(b, int64(v.pid))
	b = append(b, `},{"id":"i1","type":`...)
	b = appendStr(b, kind)
	if resolved {
		b = append(b, `,"name":`...)
		b = appendStr(b, ioc)
	}
	b = append(b, `}],"edges":[{"source":"h1","target":"p1","type":"runs"},{"source":"p1","target":"p2","type":"created"},{"source":"p2","target":"i1","type":`...)
	b = appendStr(b, verb)
	return append(b, "}]}"...)
}
