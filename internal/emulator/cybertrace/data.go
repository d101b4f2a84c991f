package cybertrace

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Session flags a client may write, with no newline, as the first message
// on a connection (vendor-protocols.md B3). Concatenate them, e.g.
// FlagSendFinishedEvent+FlagReplyBack.
const (
	FlagReplyBack         = "X-KF-ReplyBack"
	FlagSendFinishedEvent = "X-KF-SendFinishedEvent"
	FlagSaveStatistic     = "X-KF-SaveStatistic"
)

// CEFHeader is the header of a CyberTrace detection event in the ArcSight
// CEF layout (vendor-protocols.md B9). The extension follows after one space.
const CEFHeader = "CEF:0|Kaspersky Lab|Kaspersky CyberTrace for ArcSight|2.0|2|CyberTrace Detection Event|8|"

// seedLines are the four detection lines printed by Kaspersky's Python
// listener tutorial (seed 004), verbatim.
var seedLines = [...]string{
	"- category=KL_Malicious_Hash_MD5 matchedIndicator=776735A8CA96DB15B422879DA599F474 url=- src=- ip=- md5=776735A8CA96DB15B422879DA599F474 sha1=- sha256=- usrName=- confidence=100 MD5=776735A8CA96DB15B422879DA599F474 SHA1=3B66A1D70562E291DA023E87B349DD89DFE00213 SHA256=1963CBCBB9FDAAD45F782FAAA467EE2C115C3111C003AE14D01181880B03F6ED file_size=1431 first_seen=10.07.2015 23:53 last_seen=14.07.2020 13:35 popularity=1 threat=HEUR:Trojan.Win32.Generic",
	"- category=KL_IP_Reputation matchedIndicator=192.0.2.1 url=- src=- ip=192.0.2.1 md5=- sha1=- sha256=- usrName=- confidence=100 category=test first_seen=01.01.2017 00:00 ip=192.0.2.1 ip_geo=ru last_seen=17.07.2020 09:02 popularity=1 threat_score=75",
	"- category=KL_Malicious_Hash_MD5 matchedIndicator=FEAF2058298C1E174C2B79AFFC7CF4DF url=- src=- ip=- md5=FEAF2058298C1E174C2B79AFFC7CF4DF sha1=- sha256=- usrName=- confidence=100 MD5=FEAF2058298C1E174C2B79AFFC7CF4DF SHA1=D01D17F6B13C7255A234F558ED85078EA5DD3F3D SHA256=4CA914C9791CF2BF2AC69F9A2B21006F0361E247F2CE92F0A9F166DBC6B43670 file_size=1989 first_seen=10.07.2015 23:53 last_seen=14.07.2020 13:35 popularity=1 threat=HEUR:Trojan.Win32.Generic",
	"- category=KL_IP_Reputation matchedIndicator=192.0.2.3 url=- src=- ip=192.0.2.3 md5=- sha1=- sha256=- usrName=- confidence=100 category=test first_seen=15.01.2017 00:00 ip=192.0.2.3 ip_geo=ru last_seen=17.07.2020 08:51 popularity=1 threat_score=75",
}

// SeedLines returns the four detection lines that Kaspersky's Python
// listener tutorial shows as received from a real CyberTrace, verbatim and
// without line terminators. They use the "-" date slot.
func SeedLines() []string { return slices.Clone(seedLines[:]) }

// alertNames are the service alerts of vendor-protocols.md B6.
var alertNames = [...]string{
	"KL_ALERT_ServiceStarted",
	"KL_ALERT_ServiceStopped",
	"KL_ALERT_ServiceUnavailable",
	"KL_ALERT_ConfigurationUpdated",
	"KL_ALERT_UpdatedFeed",
	"KL_ALERT_OutdatedFeed",
	"KL_ALERT_FeedBecameAvailable",
	"KL_ALERT_FeedBecameUnavailable",
}

// alertWeights parallel alertNames: feed updates dominate in practice.
var alertWeights = [...]int{1, 1, 1, 1, 6, 2, 1, 1}

// alertHasFeed reports whether the alert carries a feed context field (B6).
func alertHasFeed(i int) bool { return i >= 4 }

// AlertNames returns the service alert names the Generator emits
// (vendor-protocols.md B6).
func AlertNames() []string { return slices.Clone(alertNames[:]) }

// feedFiles are feed names used in the feed context of service alerts.
var feedFiles = [...]string{
	"Malicious_URL_Data_Feed.json",
	"Phishing_URL_Data_Feed.json",
	"Botnet_CnC_URL_Data_Feed.json",
	"IP_Reputation_Data_Feed.json",
	"Malicious_Hash_Data_Feed.json",
	"Ransomware_URL_Data_Feed.json",
	"APT_URL_Data_Feed.json",
	"APT_IP_Data_Feed.json",
	"APT_Hash_Data_Feed.json",
	"IoT_URL_Data_Feed.json",
	"ICS_Hash_Data_Feed.json",
	"Mobile_Malicious_Hash_Data_Feed.json",
	"Mobile_BotnetCnC_Hash_Data_Feed.json",
	"Vulnerability_Data_Feed.json",
	"Demo_Botnet_CnC_URL_Data_Feed.json",
}

// feedKind selects the feed record schema (vendor-protocols.md B8).
type feedKind uint8

const (
	kindURL feedKind = iota
	kindPhish
	kindIP
	kindHash
)

// actionable selects the CEF actionable-field mapping (B9).
type actionable uint8

const (
	actNone actionable = iota
	actURL
	actPhish
	actHash
)

// hashSel selects which hash of a hash record was matched.
type hashSel uint8

const (
	hashMD5 hashSel = iota
	hashSHA1
	hashSHA256
)

// kvs is one static record field.
type kvs struct{ name, value string }

// fixture is a fixed feed record for a Kaspersky demo indicator.
type fixture struct {
	// url kinds: observed URL base ("http://host" or a full URL) and mask.
	url, mask, domain string
	// hash kinds.
	md5, sha1, sha256 string
	// ip kinds.
	ip string
	// fields are the record's fields other than the hash and mask/ip
	// fields, which are added from the members above.
	fields []kvs
}

// category is one detection category and the records that can match it.
type category struct {
	name      string
	kind      feedKind
	hash      hashSel
	act       actionable
	weight    int
	fixtures  []*fixture
	synthetic int // percent of detections using a random record
	urlField  bool
	extraInfo bool // malicious URL: optional IP/geo/whois.* fields
}

// Demo hash records. The first two carry exactly the values of the seed
// lines; the others get derived SHA1/SHA256 values.
var (
	fxHash776 = &fixture{
		md5:    "776735A8CA96DB15B422879DA599F474",
		sha1:   "3B66A1D70562E291DA023E87B349DD89DFE00213",
		sha256: "1963CBCBB9FDAAD45F782FAAA467EE2C115C3111C003AE14D01181880B03F6ED",
		fields: []kvs{{"file_size", "1431"}, {"first_seen", "10.07.2015 23:53"}, {"last_seen", "14.07.2020 13:35"}, {"popularity", "1"}, {"threat", "HEUR:Trojan.Win32.Generic"}},
	}
	fxHashFEA = &fixture{
		md5:    "FEAF2058298C1E174C2B79AFFC7CF4DF",
		sha1:   "D01D17F6B13C7255A234F558ED85078EA5DD3F3D",
		sha256: "4CA914C9791CF2BF2AC69F9A2B21006F0361E247F2CE92F0A9F166DBC6B43670",
		fields: []kvs{{"file_size", "1989"}, {"first_seen", "10.07.2015 23:53"}, {"last_seen", "14.07.2020 13:35"}, {"popularity", "1"}, {"threat", "HEUR:Trojan.Win32.Generic"}},
	}
	fxHashC91 = derivedHash("C912705B4BBB14EC7E78FA8B370532C9",
		kvs{"file_size", "1024"}, kvs{"first_seen", "01.02.2013 10:00"}, kvs{"last_seen", "14.07.2020 13:35"}, kvs{"popularity", "1"}, kvs{"threat", "HEUR:Trojan.Win32.Generic"})
	fxHashAPT = derivedHash("7A2E65A0F70EE0615EC0CA34240CF082",
		kvs{"file_size", "208896"}, kvs{"first_seen", "12.03.2018 09:41"}, kvs{"last_seen", "02.11.2020 17:05"}, kvs{"popularity", "1"}, kvs{"threat", "HEUR:Trojan.Win32.APT.gen"})
	fxHashICS = derivedHash("7A8F30B40C6564EFF95E678F7C43346C",
		kvs{"file_size", "73728"}, kvs{"first_seen", "21.09.2017 14:02"}, kvs{"last_seen", "30.06.2020 06:48"}, kvs{"popularity", "2"}, kvs{"threat", "HEUR:Trojan.Win32.Generic"})
	fxHashMobile = derivedHash("60300A92E1D0A55C7FDD360EE40A9DC1",
		kvs{"file_size", "1548288"}, kvs{"first_seen", "05.05.2019 11:20"}, kvs{"last_seen", "19.08.2020 22:14"}, kvs{"popularity", "3"}, kvs{"threat", "HEUR:Trojan-Dropper.AndroidOS.Agent.gen"})
)

// derivedHash builds a hash fixture whose SHA1/SHA256 are derived from the
// MD5 text (the demo feeds only publish the MD5).
func derivedHash(md5 string, fields ...kvs) *fixture {
	s1 := sha1.Sum([]byte("cybertrace-demo:" + md5))
	s2 := sha256.Sum256([]byte("cybertrace-demo:" + md5))
	return &fixture{
		md5:    md5,
		sha1:   strings.ToUpper(hex.EncodeToString(s1[:])),
		sha256: strings.ToUpper(hex.EncodeToString(s2[:])),
		fields: fields,
	}
}

// categories is the detection mix; weights are relative.
//
// KL_Ransomware_URL and KL_Mobile_Malicious_Hash_MD5 are not in the
// (truncated) category list we have; the names follow the vendor's pattern.
var categories = []*category{
	{
		name: "KL_Malicious_URL", kind: kindURL, act: actURL, weight: 22, synthetic: 40, extraInfo: true,
		fixtures: []*fixture{
			{url: "http://fakess123.nu", mask: "fakess123.nu/*", domain: "fakess123.nu",
				fields: []kvs{{"category", "malware"}, {"first_seen", "10.07.2015 23:53"}, {"last_seen", "01.03.2025 07:12"}, {"popularity", "5"}, {"threat", "HEUR:Trojan.Script.Generic"}}},
			{url: "http://5a015004f9fc05290d87e86d69c4b237.com", mask: "5a015004f9fc05290d87e86d69c4b237.com/*", domain: "5a015004f9fc05290d87e86d69c4b237.com",
				fields: []kvs{{"category", "test"}, {"first_seen", "01.01.2017 00:00"}, {"last_seen", "17.07.2020 09:02"}, {"popularity", "1"}, {"threat", "HEUR:Trojan.Win32.Generic"}}},
		},
	},
	{
		name: "KL_Phishing_URL", kind: kindPhish, act: actPhish, weight: 12, synthetic: 40,
		fixtures: []*fixture{
			{url: "http://fakess123ap.nu", mask: "fakess123ap.nu/*", domain: "fakess123ap.nu",
				fields: []kvs{{"attack_type", "Phishing page"}, {"first_seen", "19.05.2024 08:32"}, {"id", "8412273"}, {"industry", "Finance"}, {"last_seen", "20.05.2024 11:05"}, {"popularity", "1"}, {"stolen_data_type", "Login credentials, Payment cards"}, {"targeted_organization", "Example Bank"}, {"type", "phishing"}}},
		},
	},
	{
		name: "KL_BotnetCnC_URL", kind: kindURL, weight: 7,
		fixtures: []*fixture{
			{url: "http://a7396d61caffe18a4cffbb3b428c9b60.com", mask: "a7396d61caffe18a4cffbb3b428c9b60.com/*", domain: "a7396d61caffe18a4cffbb3b428c9b60.com",
				fields: []kvs{{"category", "botnet_cnc"}, {"first_seen", "14.02.2016 03:27"}, {"last_seen", "17.07.2020 09:02"}, {"popularity", "2"}, {"threat", "Backdoor.Win32.Agent.gen"}}},
		},
	},
	{
		name: "KL_Ransomware_URL", kind: kindURL, weight: 3,
		fixtures: []*fixture{
			{url: "http://fakess123r.nu", mask: "fakess123r.nu/*", domain: "fakess123r.nu",
				fields: []kvs{{"category", "ransomware"}, {"first_seen", "11.07.2019 22:11"}, {"last_seen", "06.09.2025 23:13"}, {"popularity", "3"}, {"threat", "HEUR:Trojan-Ransom.Win32.Generic"}}},
		},
	},
	{
		// The APT record has an empty threat value, rendered "threat=" (spec
		// C4: empty record fields may appear as key= with nothing after).
		name: "KL_APT_URL", kind: kindURL, weight: 4,
		fixtures: []*fixture{
			{url: "http://b046f5b25458638f6705d53539c79f62.com", mask: "b046f5b25458638f6705d53539c79f62.com/*", domain: "b046f5b25458638f6705d53539c79f62.com",
				fields: []kvs{{"category", "apt"}, {"first_seen", "03.04.2018 12:00"}, {"last_seen", "29.06.2020 15:41"}, {"popularity", "1"}, {"threat", ""}}},
		},
	},
	{
		name: "KL_IoT_URL", kind: kindURL, weight: 3,
		fixtures: []*fixture{
			{url: "http://e593461621ee0f9134c632d00bf108fd.com/.i", mask: "e593461621ee0f9134c632d00bf108fd.com/.i", domain: "e593461621ee0f9134c632d00bf108fd.com",
				fields: []kvs{{"category", "iot"}, {"first_seen", "08.08.2018 18:18"}, {"last_seen", "16.07.2020 02:37"}, {"popularity", "4"}, {"threat", "HEUR:Backdoor.Linux.Mirai.b"}}},
		},
	},
	{
		name: "KL_IP_Reputation", kind: kindIP, weight: 14, synthetic: 35,
		fixtures: []*fixture{
			{ip: "192.0.2.1", fields: []kvs{{"category", "test"}, {"first_seen", "01.01.2017 00:00"}, {"ip_geo", "ru"}, {"last_seen", "17.07.2020 09:02"}, {"popularity", "1"}, {"threat_score", "75"}}},
			{ip: "192.0.2.3", fields: []kvs{{"category", "test"}, {"first_seen", "15.01.2017 00:00"}, {"ip_geo", "ru"}, {"last_seen", "17.07.2020 08:51"}, {"popularity", "1"}, {"threat_score", "75"}}},
			{ip: "192.0.2.0", fields: []kvs{{"category", "test"}, {"first_seen", "01.01.2017 00:00"}, {"ip_geo", "ru"}, {"last_seen", "17.07.2020 09:00"}, {"popularity", "1"}, {"threat_score", "75"}}},
		},
	},
	{
		name: "KL_APT_IP", kind: kindIP, weight: 3,
		fixtures: []*fixture{
			{ip: "192.0.2.4", fields: []kvs{{"category", "test"}, {"first_seen", "03.04.2018 12:00"}, {"ip_geo", "ru"}, {"last_seen", "29.06.2020 15:41"}, {"popularity", "1"}, {"threat_score", "100"}}},
		},
	},
	{
		name: "KL_Malicious_Hash_MD5", kind: kindHash, hash: hashMD5, act: actHash, weight: 18, synthetic: 40, urlField: true,
		fixtures: []*fixture{fxHash776, fxHashFEA, fxHashC91},
	},
	{
		name: "KL_Malicious_Hash_SHA1", kind: kindHash, hash: hashSHA1, act: actHash, weight: 3, synthetic: 40, urlField: true,
		fixtures: []*fixture{fxHash776, fxHashFEA, fxHashC91},
	},
	{
		name: "KL_Malicious_Hash_SHA256", kind: kindHash, hash: hashSHA256, act: actHash, weight: 2, synthetic: 40, urlField: true,
		fixtures: []*fixture{fxHash776, fxHashFEA, fxHashC91},
	},
	{
		name: "KL_APT_Hash_MD5", kind: kindHash, hash: hashMD5, weight: 3,
		fixtures: []*fixture{fxHashAPT},
	},
	{
		name: "KL_ICS_Hash_MD5", kind: kindHash, hash: hashMD5, weight: 2,
		fixtures: []*fixture{fxHashICS},
	},
	{
		name: "KL_Mobile_Malicious_Hash_MD5", kind: kindHash, hash: hashMD5, weight: 2,
		fixtures: []*fixture{fxHashMobile},
	},
}

// Categories returns the detection category names the Generator emits.
func Categories() []string {
	out := make([]string, len(categories))
	for i, c := range categories {
		out[i] = c.name
	}
	return out
}

// Pools for random values. No value contains a space followed by an
// identifier and '=', so the spec's key=value tokenisation stays unambiguous.
var (
	userNames = [...]string{
		"alice", "bob", "j.smith", "svc_backup", "administrator",
		`CORP\alice`, `CORP\j.doe`, `EXAMPLE\svc-sql`, `CORP\Administrator`,
		`CORP\иванов.и`, "jürgen.müller", `DOMAIN\zoë`, "o.popov", "v.sokolova",
	}
	urlSuffixes = [...]string{
		"/", "/index.php", "/download/setup.exe",
		"/login.php?user=admin&session=Zm9vYmFyYmF6==",
		"/dl?id=4711&ref=mail",
		"/track?u=aHR0cDovL2V4YW1wbGUudGVzdA==&v=2",
		"/wp-admin/admin-ajax.php?action=get&x=a=b",
		"/gate.php?bot=1&os=win10&cmd=",
		"/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82.html",
	}
	hostWords   = [...]string{"cdn-update", "docs-share", "secure-login", "mail-check", "pay-verify", "files", "static-img", "auth-portal"}
	hostTLDs    = [...]string{"test", "example", "invalid"}
	urlCats     = [...]string{"malware", "malware", "exploit", "ransomware", "botnet_cnc", "fraud"}
	urlThreats  = [...]string{"HEUR:Trojan.Script.Generic", "HEUR:Trojan-Downloader.Script.Generic", "HEUR:Exploit.Script.Generic", "Trojan-Downloader.JS.Agent.gen", "not-a-virus:HEUR:AdWare.Script.Generic"}
	hashThreats = [...]string{"HEUR:Trojan.Win32.Generic", "HEUR:Trojan-Dropper.Win32.Agent.gen", "Trojan-Spy.Win32.Agent.gen", "UDS:DangerousObject.Multi.Generic", "HEUR:Exploit.MSOffice.Generic", "not-a-virus:HEUR:AdWare.Win32.Generic", "HEUR:Trojan-Ransom.Win32.Generic"}
	geos        = [...]string{"ru", "us", "cn", "de", "nl", "br", "fr", "ua"}
	ipCats      = [...]string{"test", "spam", "scanner", "botnet_cnc", "malware"}
	industries  = [...]string{"Finance", "E-commerce", "Telecommunications", "Government", "Social networks", "Delivery services"}
	orgs        = [...]string{"Example Bank", "ExamplePay Inc.", "Contoso Mail", "Société Exemple", "Sparkasse Köln-Beispiel", "Fabrikam Delivery"}
	attackTypes = [...]string{"Phishing page", "Credential harvesting", "Fake login form", "Scam page"}
	stolenData  = [...]string{"Login credentials", "Login credentials, Payment cards", "Personal data", "Payment cards"}
	whoisOrgs   = [...]string{"Example Hosting, Inc.", "Namecheap, Inc.", "REG.RU LLC", "Privacy service provided by Withheld for Privacy ehf"}
	sources     = [...][2]string{{"-", "-"}, {"Squid", "Proxy"}, {"Palo Alto Networks", "PAN-OS"}, {"Microsoft", "Windows"}, {"Kaspersky", "KSC"}}
)
