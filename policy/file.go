package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// File is a routes file and the policy last loaded from it without fault.
// Reload and Watch replace the policy when the file changes, and keep it
// when the new contents are bad. It is safe for concurrent use.
type File struct {
	name string
	log  *slog.Logger

	cur atomic.Pointer[Policy]

	mu   sync.Mutex // serialises loads
	seen [sha256.Size]byte
}

// Open loads the routes file at name. A file that cannot be read or holds
// a bad policy is an error: Keyward does not start without the policy it
// was told to use. log receives what each later reload does; nil discards
// it.
func Open(name string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	p, err := parseNamed(name, data)
	if err != nil {
		return nil, err
	}
	f := &File{name: name, log: log, seen: sha256.Sum256(data)}
	f.cur.Store(p)
	return f, nil
}

// Name returns the file's name.
func (f *File) Name() string { return f.name }

// Policy returns the current policy. It is never nil, and never changes:
// a reload stores a new one.
func (f *File) Policy() *Policy { return f.cur.Load() }

// Reload reads the file again and, when it holds a good policy, makes it
// the current one. When it cannot be read or is bad, the current policy
// stays, and the log and the error say exactly what is wrong. The command
// calls it on SIGHUP.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := readFile(f.name)
	if err != nil {
		f.log.Error("routes file not reloaded; the previous policy stays", "file", f.name, "error", err.Error())
		return err
	}
	return f.load(data)
}

// load parses data and stores the policy when it is good. f.mu is held.
func (f *File) load(data []byte) error {
	f.seen = sha256.Sum256(data)
	p, err := parseNamed(f.name, data)
	if err != nil {
		f.log.Error("routes file not reloaded; the previous policy stays", "file", f.name, "error", err.Error())
		return err
	}
	f.cur.Store(p)
	f.log.Info("routes file reloaded", "file", f.name, "routes", len(p.routes), "default", string(p.Default()))
	return nil
}

// Watch reloads the file whenever its contents change, checking every
// interval (one second when interval is not positive), until ctx ends.
// Contents that were already tried are not tried again, so a bad file is
// logged once, not at every check; a file that cannot be read is logged
// once until it can be read again.
func (f *File) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed error
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := readFile(f.name)
		if err != nil {
			if failed == nil || failed.Error() != err.Error() {
				f.log.Error("routes file cannot be read; the current policy stays", "file", f.name, "error", err.Error())
			}
			failed = err
			continue
		}
		failed = nil
		f.mu.Lock()
		if sha256.Sum256(data) != f.seen {
			_ = f.load(data) // load logs what it does.
		}
		f.mu.Unlock()
	}
}

// parseNamed is Parse with the file's name in its errors.
func parseNamed(name string, data []byte) (*Policy, error) {
	p, err := Parse(data)
	var fe *FileError
	if errors.As(err, &fe) {
		fe.Name = name
	}
	return p, err
}
