// Package pgtest starts throwaway PostgreSQL servers for tests, from the
// PostgreSQL binaries installed on the machine (initdb and postgres, found
// under /usr/lib/postgresql/*/bin or in PATH), and gives each test a new,
// empty database of its own, dropped when the test ends. Tests never touch a
// database they did not create, nor a server they did not start.
//
// A server lives in a temporary directory, listens on 127.0.0.1 on a free
// port, trusts every local connection and skips fsync. Run as root, it runs
// as the unprivileged user postgres (or nobody), since PostgreSQL refuses to
// run as root. It is stopped by Stop, and, should the test binary die
// without stopping it, by the kernel: the server gets SIGQUIT when its
// parent dies.
//
// Missing binaries fail the test, never skip it: ./scripts/test installs
// them.
//
// A package whose tests share one server starts it lazily and stops it in
// TestMain:
//
//	var pg = pgtest.New()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) { dsn := pg.Database(t); … }
//
// A single test may instead call Start, which starts a server for that test
// alone.
//
// A test of a storage outage stops a server of its own with Halt and starts
// it again with Resume, on the same data directory and port: its databases
// and the DSNs returned by Database stay valid.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Server is a throwaway PostgreSQL server, started on first use. It is safe
// for concurrent use.
type Server struct {
	mu      sync.Mutex
	started bool
	err     error // why the server could not start
	dir     string
	bin     string              // directory of the PostgreSQL binaries
	cred    *syscall.Credential // user the server runs as; nil: this one
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process has exited
	admin   *pgxpool.Pool
	n       int // databases created
}

// New returns a server that starts on the first call of Database.
func New() *Server { return &Server{} }

// Start starts a server for the test alone and returns the DSN of a new,
// empty database on it; the server stops when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	s := New()
	t.Cleanup(s.Stop)
	return s.Database(t)
}

// Database returns the DSN (a postgres:// URL) of a new, empty database on
// the server, starting the server on first use, and drops the database when
// the test ends. It fails the test when the server cannot start.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	if !s.started {
		s.started = true
		s.err = s.start()
	}
	err, admin := s.err, s.admin
	s.n++
	name := fmt.Sprintf("keyward_test_%d", s.n)
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.admin != admin {
			return // The server was stopped, and its databases are gone.
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// Stop stops the server, if it was started, and removes its directory.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	s.kill()
}

// Halt stops the server, started by Database, as an outage would: with a
// fast shutdown, which ends every connection. Its data directory and port
// are kept for Resume. It fails the test when the server is not running.
func (s *Server) Halt(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.dir == "" {
		t.Fatal("pgtest: Halt of a server that is not running")
	}
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	s.stopProcess()
}

// stopProcess stops the server process with a fast shutdown (SIGINT), or
// SIGKILL after 10 s, and waits for it. The caller holds mu.
func (s *Server) stopProcess() {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

// Resume starts a server stopped by Halt again, on the same data directory
// and port, and waits until it accepts connections. It fails the test when
// the server cannot start, for instance when its port was taken meanwhile.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil || s.dir == "" {
		t.Fatal("pgtest: Resume of a server that is running or was never started")
	}
	if err := s.run(s.bin, filepath.Join(s.dir, "data"), s.cred, s.port); err != nil {
		t.Fatalf("pgtest: start again on port %d: %v", s.port, err)
	}
}

// dsn returns the URL of database name on the server.
func (s *Server) dsn(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// start runs initdb and starts the server, retrying on another port when
// the one chosen was taken meanwhile.
func (s *Server) start() error {
	bin, err := binDir()
	if err != nil {
		return err
	}
	cred, err := credential()
	if err != nil {
		return err
	}
	s.bin, s.cred = bin, cred
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			s.kill()
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = s.dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		s.kill()
		return fmt.Errorf("pgtest: %s: %v\n%s", strings.Join(initdb.Args, " "), err, out)
	}

	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			s.kill()
			return err
		}
		err = s.run(bin, data, cred, port)
		if err == nil {
			return nil
		}
		if attempt >= 3 || !errors.Is(err, errPortTaken) {
			s.kill()
			return err
		}
	}
}

var errPortTaken = errors.New("port taken")

// run starts postgres on port and waits until it accepts connections.
func (s *Server) run(bin, data string, cred *syscall.Credential, port int) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.port = cmd, exited, port

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		pool, err := pgxpool.New(ctx, s.dsn("postgres")+"&connect_timeout=2&pool_max_conns=4")
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				s.admin = pool
				return nil
			}
			pool.Close()
		}
		select {
		case <-exited:
			s.cmd = nil
			log, _ := os.ReadFile(logPath)
			if strings.Contains(string(log), "could not bind") || strings.Contains(string(log), "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("pgtest: postgres exited before accepting connections:\n%s", log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres does not accept connections on port %d: %v\n%s", port, err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill stops the server process, if any, with a fast shutdown (SIGKILL
// after 10 s), and removes the directory.
func (s *Server) kill() {
	if s.cmd != nil {
		s.stopProcess()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// binDir returns the directory of initdb and postgres: the newest
// /usr/lib/postgresql/VERSION/bin, or else the directory of an initdb in
// PATH.
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return vb - va
	})
	if p, err := exec.LookPath("initdb"); err == nil {
		found = append(found, p)
	}
	for _, initdb := range found {
		dir := filepath.Dir(initdb)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("pgtest: the PostgreSQL server binaries (initdb, postgres) are not installed: " +
		"none under /usr/lib/postgresql/*/bin nor in PATH. Install them (Debian: apt-get install postgresql), " +
		"or run ./scripts/test, which installs them")
}

// credential returns the user to run PostgreSQL as: nil (the current user)
// unless that is root, which PostgreSQL refuses, and then postgres or
// nobody.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root, and PostgreSQL refuses to: create an unprivileged user postgres (useradd --system postgres) to run it as")
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
