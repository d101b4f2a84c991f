package file

import (
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
)

// Defaults applied by SetDefaults.
const (
	DefaultMaxBytes     = 100 << 20 // 100 MiB
	DefaultMaxFiles     = 10
	DefaultSyncInterval = time.Second
	DefaultMode         = "0640"
)

// Limits checked by Validate.
const (
	// MinMaxBytes is the smallest non-zero MaxBytes.
	MinMaxBytes = 4096
	// MaxMaxFiles is the largest MaxFiles (Filebeat's number_of_files cap):
	// every rotation renames up to MaxFiles-1 files.
	MaxMaxFiles = 1024
)

// Config configures a file sink.
type Config struct {
	// Path is the active file. Rotated files are Path.1 (newest) to
	// Path.<MaxFiles-1> (oldest). Required.
	Path string `yaml:"path"`

	// MaxBytes is the size at which the active file is rotated: a batch that
	// would take the file past MaxBytes goes to a fresh file instead. 0
	// never rotates. Otherwise at least MinMaxBytes.
	MaxBytes int64 `yaml:"max_bytes"`

	// MaxFiles is the number of files kept, the active one included (like
	// Filebeat's number_of_files): MaxFiles 10 keeps Path and Path.1 to
	// Path.9. MaxFiles 1 keeps no rotated file: rotation deletes the full
	// file. Between 1 and MaxMaxFiles.
	MaxFiles int `yaml:"max_files"`

	// SyncInterval is how often written data is fsynced; 0 fsyncs before
	// every Write returns.
	SyncInterval time.Duration `yaml:"sync_interval"`

	// Mode is the permission, in octal ("0640"), of the files the sink
	// creates. It is applied exactly, regardless of the umask; a file that
	// already exists keeps its permissions. It must give the owner read and
	// write access (0600): the sink reopens the file after a restart.
	Mode string `yaml:"mode"`
}

// SetDefaults sets every zero field except Path, which has no default, to
// its default. MaxBytes 0 (never rotate) and SyncInterval 0 (fsync on every
// Write) are meaningful, so call SetDefaults on a zero Config before the YAML
// is decoded into it: an explicit "max_bytes: 0" or "sync_interval: 0" then
// survives, whereas calling it after decoding would replace them.
func (c *Config) SetDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
}

// Validate returns every problem in c as a *config.FieldError keyed by the
// YAML name of the setting. It does not touch the filesystem.
func (c *Config) Validate() []error {
	var errs []error
	switch {
	case c.Path == "":
		errs = append(errs, config.Errorf("path", "is required"))
	case strings.HasSuffix(c.Path, "/"):
		errs = append(errs, config.Errorf("path", "%q names a directory; give a file name", c.Path))
	}
	if c.MaxBytes != 0 && c.MaxBytes < MinMaxBytes {
		errs = append(errs, config.Errorf("max_bytes", "must be 0 (never rotate) or at least %d, got %d", MinMaxBytes, c.MaxBytes))
	}
	if c.MaxFiles < 1 || c.MaxFiles > MaxMaxFiles {
		errs = append(errs, config.Errorf("max_files", "must be between 1 and %d, got %d", MaxMaxFiles, c.MaxFiles))
	}
	if c.SyncInterval < 0 {
		errs = append(errs, config.Errorf("sync_interval", "must not be negative, got %s", c.SyncInterval))
	}
	if _, err := parseMode(c.Mode); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// parseMode parses an octal permission string.
func parseMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, config.Errorf("mode", "is required")
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return 0, config.Errorf("mode", "must be an octal permission between 0000 and 0777, got %q", s)
	}
	if v&0o600 != 0o600 {
		return 0, config.Errorf("mode", "must give the owner read and write access (0600), got %q", s)
	}
	return fs.FileMode(v), nil
}
