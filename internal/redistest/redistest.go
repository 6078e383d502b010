// Package redistest starts throwaway Redis servers for tests, from the
// redis-server binary installed on the machine (Debian package
// redis-server, /usr/bin/redis-server), and gives each test a logical
// database of its own, emptied when the test ends. Tests never touch a Redis
// they did not start: not even the machine's own, which may listen on 6379.
//
// A server listens on 127.0.0.1 on a free port, keeps nothing on disk (no
// RDB snapshots, no append-only file), and works in a temporary directory.
// It is stopped by Stop, and, should the test binary die without stopping
// it, by the kernel: the server gets SIGKILL when its parent dies.
//
// Each call of Database takes the next logical database number (the server
// is started with 10,000 of them), so tests of one package may share a
// server and run in parallel without seeing each other's keys. Database
// returns a redis:// URL naming that database, which go-redis's ParseURL
// and the --redis flag both read; Client returns a client on it.
//
// A missing binary fails the test, never skips it: ./scripts/test installs
// it.
//
// A package whose tests share one server starts it lazily and stops it in
// TestMain:
//
//	var rd = redistest.New()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		rd.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) { client := rd.Client(t); … }
//
// A test of a Redis outage stops a server of its own (from Start, or New)
// with Halt and starts it again with Resume on the same port: URLs and
// clients stay valid and reconnect, but the data is gone, as it would be
// after a real restart of a Redis that keeps nothing on disk.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// databases is the number of logical databases a server has, and so the
// number of calls of Database it serves.
const databases = 10000

// Server is a throwaway Redis server, started on first use. It is safe for
// concurrent use.
type Server struct {
	mu      sync.Mutex
	started bool
	err     error // why the server could not start
	dir     string
	bin     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process has exited
	n       int           // databases handed out
}

// New returns a server that starts on the first call of Database or
// Client.
func New() *Server { return &Server{} }

// Start starts a server for the test alone and returns it; the server
// stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Stop)
	s.ensure(t)
	return s
}

// Database returns the URL (redis://127.0.0.1:PORT/N) of a logical
// database of the server that no other test uses, starting the server on
// first use, and empties the database when the test ends. It fails the test
// when the server cannot start.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.ensure(t)
	s.mu.Lock()
	s.n++
	db, port := s.n, s.port
	s.mu.Unlock()
	if db >= databases {
		t.Fatalf("redistest: all %d databases of the server are taken; start another server", databases-1)
	}
	url := fmt.Sprintf("redis://127.0.0.1:%d/%d", port, db)
	t.Cleanup(func() {
		s.mu.Lock()
		running := s.cmd != nil && s.port == port
		s.mu.Unlock()
		if !running {
			return // Stopped or halted: its keys are gone.
		}
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), DB: db})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.FlushDB(ctx).Err(); err != nil {
			t.Errorf("redistest: empty database %d: %v", db, err)
		}
	})
	return url
}

// Client returns a client of a new database of the server (see Database),
// closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(s.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Addr returns the server's address, 127.0.0.1:PORT, starting it on first
// use.
func (s *Server) Addr(t testing.TB) string {
	t.Helper()
	s.ensure(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", s.port)
}

// Stop stops the server, if it was started, and removes its directory.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.stopProcess()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// Halt kills the server as a crash or an outage would: every connection
// ends and new ones are refused until Resume. It fails the test when the
// server is not running.
func (s *Server) Halt(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatal("redistest: Halt of a server that is not running")
	}
	s.stopProcess()
}

// Resume starts a server stopped by Halt again, on the same port, empty,
// and waits until it answers. It fails the test when the server cannot
// start, for instance when its port was taken meanwhile.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil || s.dir == "" {
		t.Fatal("redistest: Resume of a server that is running or was never started")
	}
	if err := s.run(s.port); err != nil {
		t.Fatalf("redistest: start again on port %d: %v", s.port, err)
	}
}

// ensure starts the server on first use, and fails the test when it could
// not start, then or before.
func (s *Server) ensure(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	if !s.started {
		s.started = true
		s.err = s.start()
	}
	err := s.err
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// start finds the binary, makes the directory and starts the server,
// retrying on another port when the one chosen was taken meanwhile.
func (s *Server) start() error {
	bin, err := binary()
	if err != nil {
		return err
	}
	s.bin = bin
	s.dir, err = os.MkdirTemp("", "redistest-")
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			err = s.run(port)
		}
		if err == nil {
			return nil
		}
		if attempt >= 3 || !errors.Is(err, errPortTaken) {
			os.RemoveAll(s.dir)
			s.dir = ""
			return err
		}
	}
}

var errPortTaken = errors.New("port taken")

// run starts redis-server on port and waits until it answers PING. The
// caller holds mu.
func (s *Server) run(port int) error {
	logPath := filepath.Join(s.dir, "redis.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(s.bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--databases", strconv.Itoa(databases),
		"--daemonize", "no",
		"--logfile", "",
		"--maxclients", "1000",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.port = cmd, exited, port

	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1,
		DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err = c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			log, _ := os.ReadFile(logPath)
			if strings.Contains(string(log), "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("redistest: redis-server exited before answering:\n%s", log)
		case <-ctx.Done():
			s.stopProcess()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redistest: redis-server does not answer on port %d: %v\n%s", port, err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopProcess kills the server process and waits for it. The caller holds
// mu.
func (s *Server) stopProcess() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// binary returns the path of redis-server: the one in PATH, or else
// /usr/bin/redis-server.
func binary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server", nil
	}
	return "", errors.New("redistest: redis-server is not installed: not in PATH nor at /usr/bin/redis-server. " +
		"Install it (Debian: apt-get install redis-server), or run ./scripts/test, which installs it")
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
