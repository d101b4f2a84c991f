// Package cynet is a test emulator of the Cynet 360 alert REST API, as
// reconstructed in vendor-protocols.md Part A (items A1-A11) and Part C
// (items 12-16). It serves the token and alert endpoints over loopback HTTP
// or HTTPS, holds up to millions of generated alerts, and injects the
// faults a poller must survive. Section references below are to that
// document; "INFERRED" marks a choice the public sources leave open, made
// here and kept overridable where it matters.
//
// # Endpoints (A2, A3)
//
//   - POST /api/account/token and POST /api/account_token (A2, C16: the
//     underscore spelling of one integration is served too). Body
//     {"user_name","password"} checked against Options.Users. Not JSON, or
//     not an object: 400 {"message"}. Unknown user, wrong password or a
//     missing member: 401 with a plain-text body (A9 INFERRED). Success: 200
//     {"access_token":"<opaque JWT-shaped random string>"}, plus
//     "expires_in" (seconds) only with Options.ExpiresIn (A2 INFERRED: the
//     real server normally omits it). Tokens live Options.TokenTTL (default
//     3600 s, A2) on the Options.Now clock; an expired one gets 401.
//     Other methods: 405.
//   - GET /api/alerts/bulk?LastSeen=&Limit=&Offset= (A3, A4): alerts with
//     LastSeen >= the parameter, paged.
//   - GET /api/alerts?LastSeen= (A3): the same filter, no paging: the first
//     MaxPageSize rows (INFERRED cap).
//   - GET /api/alerts/bulkByDateChanged?DateChanged=&Limit=&Offset= (A3
//     SINGLE): the same on DateChanged, which UpdateAlert and SetStatus move.
//   - GET /api/alerts/count?DateChanged= (A3 SINGLE [MOCK]): a bare JSON
//     integer; all alerts without the parameter; LastSeen= is accepted
//     instead (INFERRED).
//   - Anything else: 404 {"message"}; a wrong method on a known path: 405.
//     Paths and query parameter names are matched exactly, case-sensitive
//     (INFERRED strictness: the PascalCase names are CORROBORATED, and a
//     strict emulator catches a client that misspells them).
//
// # Authentication of alert requests (A2, A11, C14)
//
// Header names are matched case-insensitively: access_token, Access_token
// (Go's canonical form) and ACCESS_TOKEN are the same header, as HTTP
// requires. The token is the raw value, not "Bearer ..." (A2).
// Missing, empty, unknown or expired access_token: 401 (plain text).
// Then a client_id that is missing or not in Options.ClientIDs: 403 (plain
// text; A11 INFERRED). Hyphenated names (access-token) are different
// headers and do not authenticate.
//
// # Parameters (A4)
//
// LastSeen and DateChanged are required (absent or empty: 400 {"message"};
// INFERRED). Accepted formats: "2006-01-02 15:04:05" (space; "+" or %20 in
// the URL), "2006-01-02T15:04:05Z", and ISO with fractional seconds and Z,
// the three of A4; leniently (.NET-style, INFERRED) also "T" without zone,
// fractions after a space, numeric offsets such as +02:00 and a bare date.
// A value without zone is UTC; all comparisons are in UTC at full
// precision. Anything else: 400 {"message":"..."}.
// Limit defaults to 100 (DefaultLimit, the value both paging clients use),
// must be >= 1 and is clamped to Options.MaxPageSize (default 1000; the real
// maximum is unknown, A4). Offset defaults to 0 and must be >= 0. Bad
// integers: 400.
//
// # Order and paging (A5, A8, C15)
//
// Every listing is ordered by (time ascending, ClientDbId ascending), time
// being LastSeen (DateChanged for bulkByDateChanged). The order is total
// and stable, so offset paging over an unchanging store returns every alert
// exactly once; a page shorter than Limit (possibly empty) ends it, as
// clients expect (A5). Alerts added or updated while a client pages can
// shift rows, as on the real server; DuplicateAcrossPages makes that
// deterministic. Queries binary-search a sorted index: a page costs
// O(log n + Limit) whatever the store size.
//
// # Response (A5, C12)
//
// 200 with Content-Type application/json and the envelope
// {"SyncTimeUtc":"2025-03-01T08:05:12.407Z","Entities":[...]}: SyncTimeUtc
// is Options.Now() in UTC with milliseconds (truncated), read under the
// store lock, so every alert stamped at or before it is in the snapshot;
// Entities is [] when nothing matches, never null (unless SetNullEntities).
//
// # Alerts (A6, A7, C13)
//
// Members, in this order: ClientDbId (int64, from FirstAlertID = 1000 up, in
// the order alerts are added), Uniqueness, IncidentName, IncidentDescription,
// IncidentJsonDescription (a JSON object encoded as a string, keys with
// spaces: "Alert Name", "Hostname", "Host Ip", "User Name", "Severity",
// "Detection Time", per-type "File Name"/"File Path"/"File SHA256" or
// "Remote Domain"/"Remote Ip"/"Remote Port"/"Remote Url", "Command Line",
// "Process Id", "Parent Process Details" {"Process Name", "Process Path",
// "Process SHA256", "Process Id"}, "Extra Info" {"Detection Engine",
// "Confidence", "Mitre Technique"}), IncidentRecomendation (the vendor's
// spelling), HostId, HostIp, HostName, ProductId, Sha256 (64 upper-case
// hex digits on file alerts, "" otherwise), Path and CommandLine (the file,
// or the process that connected), AlertIp, AlertDomain, AlertUrl, DomainId,
// DomainCrc, UserId, UserName ("ACME\bob", "NT AUTHORITY\SYSTEM" on
// servers), Severity (int 1-5, mostly 3-4), Status (int 0-3, mostly 0),
// AlertType (0 file, 1 domain, 2 IP, 3 URL), DateIn, LastSeen, DateChanged
// ("2006-01-02T15:04:05", UTC without zone), FirstSeenUtc, LastSeenUtc,
// EpsLastSeenUtc ("...Z"), EpsLastSeenLocal (the host's local time, no zone:
// a trap for clients that read it), RemediationStatus, EpsActionStatus,
// EpsRemediationActionPerformed, AutoRemediationId, File (object on file
// alerts with ClientDbId, Sha256, CommonFileName, MetaProductName, Company,
// RiskLevel, EndPoints, Antivirus, VtRiskLevel, LastSeen, DateIn; null
// otherwise: INFERRED), AutoRemediate (object, always present, whose
// Severity is a STRING such as "High"), AlertGraphJsonResolved and
// AlertGraphJsonRaw (JSON in strings), ScanGroupName, then the newer members
// ScanGuid, Modules, Tags ([]) and MitreDetails that only the mock shows
// (SINGLE), to exercise pass-through of unknown members. There is no Id,
// AlertId (outside AutoRemediate), MD5 or SHA-1 member.
//
// AlertIp is an integer (A6); the byte order is undocumented. INFERRED:
// network order as an unsigned value, 10.1.4.17 = 0x0A010411 = 167838737;
// addresses above 127.x are positive numbers above 2^31 (not negative int32).
// IPToAlertIP and AlertIPToIP convert. The dotted form is also in the
// description's "Remote Ip".
//
// Content is a pure function of (Options.Seed, ClientDbId): the same alert
// renders to the same bytes on every request until its state changes.
// Only a 32-byte record (DateIn, LastSeen, DateChanged, Status) and two
// 16-byte index keys are stored per alert, and alerts are rendered when
// served: a full alert is about 3.3 KB of JSON, so pre-marshalled storage of
// a 1,000,000-alert backlog would need 3.3 GB, against about 70 MB this way.
//
// Alerts from AddAlerts get LastSeen = DateChanged = Options.Now() at the
// call; DateIn (= FirstSeenUtc) equals it for 60% of them and is up to two
// hours earlier otherwise. UpdateAlert moves LastSeen, LastSeenUtc,
// EpsLastSeen* and DateChanged to now (the alert fired again: pollers must
// emit it again, A8 step 4); SetStatus changes Status and DateChanged only.
// StartGenerator adds alerts at a steady or bursty rate and updates 1% as
// many existing alerts.
//
// # Faults (A9, A11)
//
// Thread-safe setters, effective immediately: FailNext (alert endpoints:
// 429/5xx with optional Retry-After in seconds or HTTP-date, before
// authentication), FailTokenNext (token endpoints), DropNext (close the
// connection without a response), SetLatency (every request),
// DuplicateAcrossPages, ExpireTokens, SetBareArray (the bare array one
// low-weight client expects, A3 [VIC]), SetNullEntities, SetNoContent (204,
// empty body: A9 says treat as empty), SetGarbage (200 with an HTML page).
// Response-shape faults apply to the three list endpoints after
// authentication and parameter checks. Counters: Requests, TokenRequests,
// PageRequests, LastHeaders.
//
// Not emulated: the V3 /api/v2/login flow (A1, SINGLE), hosts/users and
// remediation endpoints (A3), real rate limiting (undocumented, A9: use
// FailNext).
package cynet
