//go:build linux

package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// rawConn returns the socket under conn (a *net.TCPConn, possibly inside a
// *tls.Conn), or nil.
func rawConn(conn net.Conn) syscall.RawConn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// peekState is what a non-blocking peek at the receive queue found.
type peekState int

const (
	peekEmpty peekState = iota // nothing to read: the connection is open
	peekData                   // the receiver sent bytes
	peekEOF                    // the receiver closed its side (FIN)
)

// peek looks at the receive queue without consuming or blocking.
func peek(rc syscall.RawConn) (peekState, error) {
	var st peekState
	var perr error
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			st = peekEmpty
		case err != nil:
			perr = err
		case n == 0:
			st = peekEOF
		default:
			st = peekData
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	return st, perr
}

// unacked is the number of bytes of the send queue the peer has not
// acknowledged yet (SIOCOUTQ).
func unacked(rc syscall.RawConn) (int, error) {
	var n int32
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// drain reads and discards what the receiver sent, for a short while. A
// syslog receiver sends nothing, but a TLS one sends session tickets
// (handled inside tls.Conn) and alerts (returned as errors). It returns
// nil if the connection is still usable.
func drain(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	var buf [512]byte
	for {
		_, err := conn.Read(buf[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	}
}

// alive reports (nil) whether the receiver still has conn open, without
// blocking.
func alive(conn net.Conn) error {
	rc := rawConn(conn)
	if rc == nil {
		return nil
	}
	st, err := peek(rc)
	switch {
	case err != nil:
		return err
	case st == peekEOF:
		return io.EOF
	case st == peekData:
		return drain(conn)
	}
	return nil
}

// confirm waits until the receiver's TCP stack has acknowledged every byte
// written on conn, then checks that it did not reset the connection. A
// receiver that closed the connection cleanly (FIN) after acknowledging
// the data had read it: Linux answers with a reset, not a FIN, when a
// socket is closed with unread data.
func confirm(ctx context.Context, conn net.Conn, deadline time.Time) error {
	rc := rawConn(conn)
	if rc == nil {
		return nil
	}
	wait := 50 * time.Microsecond
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n, err := unacked(rc)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("the receiver did not acknowledge %d bytes in time", n)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		wait = min(wait*2, 5*time.Millisecond)
	}
	st, err := peek(rc)
	switch {
	case err != nil:
		return err
	case st == peekData:
		return drain(conn)
	}
	return nil
}

// tlsVerdict waits, up to wait, for a TLS 1.3 server to accept or reject
// the client after the handshake: a server that accepts usually sends a
// session ticket, one that rejects the client certificate sends an alert
// and closes. A client finishes its side of a TLS 1.3 handshake before
// the server has checked its certificate, so without this wait the first
// batch would be written into a connection the server is about to drop.
// It returns nil when the server accepted or said nothing.
func tlsVerdict(conn net.Conn, wait time.Duration) error {
	rc := rawConn(conn)
	if rc == nil {
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		st, err := peek(rc)
		switch {
		case err != nil:
			return err
		case st == peekEOF:
			return io.EOF
		case st == peekData:
			return drain(conn)
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}
