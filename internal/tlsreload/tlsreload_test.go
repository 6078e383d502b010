package tlsreload_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testcert"
	"github.com/keyward/keyward/internal/tlsreload"
)

// echoServer serves cfg on a loopback port, each connection echoing what
// it reads, until the test ends.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects to addr trusting the certificates in pool, and returns the
// connection and the common name of the certificate it was served.
func dial(t *testing.T, addr string, pool *x509.CertPool) (*tls.Conn, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// echo checks that c still carries data both ways.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write on the open connection: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("read on the open connection: %q, %v", buf, err)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	first := testcert.Write(t, dir, "first")
	cert, err := tlsreload.Load(first.CertFile, first.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, third := testcert.New(t, "second"), testcert.New(t, "third")
	pool := first.Pool()
	pool.AddCert(second.Leaf)
	pool.AddCert(third.Leaf)
	addr := echoServer(t, cert.Config())

	open, cn := dial(t, addr, pool)
	if cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}
	echo(t, open, "before")

	// A new pair, written over the files: new handshakes get it, the open
	// connection goes on.
	write(t, first.CertFile, second.CertPEM)
	write(t, first.KeyFile, second.KeyPEM)
	if err := cert.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, cn := dial(t, addr, pool); cn != "second" {
		t.Fatalf("after reload, served %q, want second", cn)
	}
	echo(t, open, "after")
	if cert.Leaf().Subject.CommonName != "second" {
		t.Fatalf("Leaf is %q", cert.Leaf().Subject.CommonName)
	}

	// A certificate whose key is not in the key file yet (a deploy half
	// done): the reload fails, names the key, and the pair in use stays.
	write(t, first.CertFile, third.CertPEM)
	err = cert.Reload()
	if err == nil || !strings.Contains(err.Error(), "--tls-key "+first.KeyFile) {
		t.Fatalf("reload of a mismatched pair: %v, want an error naming --tls-key %s", err, first.KeyFile)
	}
	if _, cn := dial(t, addr, pool); cn != "second" {
		t.Fatalf("after a bad reload, served %q, want second still", cn)
	}
	echo(t, open, "still")
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	a := testcert.Write(t, dir, "a")
	b := testcert.Write(t, dir, "b")
	missing := dir + "/missing.pem"
	tests := []struct {
		name, cert, key, want string
	}{
		{"no cert file", missing, a.KeyFile, "--tls-cert " + missing + ": cannot read the file"},
		{"no key file", a.CertFile, missing, "--tls-key " + missing + ": cannot read the file"},
		{"mismatched", a.CertFile, b.KeyFile, "--tls-key " + b.KeyFile + " is not the key of the certificate in --tls-cert " + a.CertFile},
		{"key for cert", a.KeyFile, a.KeyFile, "--tls-cert " + a.KeyFile + " holds no PEM certificate"},
		{"cert for key", a.CertFile, a.CertFile, "--tls-key " + a.CertFile + " holds no PEM private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsreload.Load(tt.cert, tt.key, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v, want %q", err, tt.want)
			}
		})
	}
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
