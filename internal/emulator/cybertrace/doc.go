// Package cybertrace is a test fake of the output side of Kaspersky
// CyberTrace: CyberTrace acting as a TCP client that connects to a SIEM
// listener and pushes one UTF-8 event per LF-terminated line
// (vendor-protocols.md, Part B).
//
// Generator produces detection events, service alerts and lookup-finished
// events that look like the real product's output: the default key=value
// detection template with its glued %RecordContext% (duplicate category and
// ip keys, values with spaces, "-" for empty slots, context fields sorted by
// name), or the ArcSight CEF layout. Output is deterministic for a seed.
//
// Push connects to a listener the way CyberTrace does (optionally over TLS,
// over several parallel connections), optionally writes the session flag
// string, then streams lines at a paced or unlimited rate, with fault
// injection for framing tests (CRLF endings, writes cut at random byte
// offsets) and reconnection after dropped connections.
//
// The package only fakes the wire format. Details the public sources leave
// open (exact date format, flattening of nested feed fields, alert context
// beyond the feed name) are emulator choices, documented where they are made.
package cybertrace
