//go:build !linux

package syslog

import (
	"context"
	"net"
	"time"
)

// alive cannot look at the socket's receive queue portably: a connection
// the receiver closed is found by the write that fails.
func alive(net.Conn) error { return nil }

// confirm has no portable way to learn what the receiver acknowledged:
// Write returns once the batch is in the kernel's send buffer.
func confirm(context.Context, net.Conn, time.Time) error { return nil }

// tlsVerdict waits up to wait for the server to reject the client after
// a TLS 1.3 handshake (see the Linux version).
func tlsVerdict(conn net.Conn, wait time.Duration) error {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	var one [1]byte
	_, err := conn.Read(one[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return err
}
