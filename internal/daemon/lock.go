package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// stateLock is an exclusive advisory lock on state_dir, so that two daemons
// never share queues and cursors. The kernel drops it when the process
// dies, so a crash never leaves a stale lock behind.
type stateLock struct{ f *os.File }

// lockStateDir takes the lock or says who holds it.
func lockStateDir(dir string) (*stateLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	path := filepath.Join(dir, "alertrelay.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		pid := strings.TrimSpace(string(b[:n]))
		return nil, fmt.Errorf("state_dir %s is in use by another alertrelay (pid %s)", dir, pid)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &stateLock{f: f}, nil
}

// StateDirInUse reports whether a running daemon holds dir's lock.
func StateDirInUse(dir string) bool {
	l, err := lockStateDir(dir)
	if err != nil {
		return true
	}
	l.release()
	return false
}

func (l *stateLock) release() {
	if l != nil && l.f != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}
