// Package tlsreload owns the server's certificate (serve --tls-cert and
// --tls-key): it reads the pair at start, hands every listener one
// *tls.Config whose GetCertificate returns the pair in use, and reads the
// files again on Reload (SIGHUP), so that new handshakes get the new
// certificate while the connections already open go on with theirs.
package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// Certificate is a certificate and key pair read from two files, that
// Reload replaces as a whole. It is safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]
}

// Load reads the pair in certFile and keyFile (PEM, the certificate file
// holding the chain, leaf first). A file that cannot be read, or a key
// that is not the certificate's, is an error that names the file at
// fault; the server must not start without a certificate it can serve.
func Load(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	pair, err := c.read()
	if err != nil {
		return nil, err
	}
	c.current.Store(pair)
	return c, nil
}

// read reads and checks the pair in the files.
func (c *Certificate) read() (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, c.explain(err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: the certificate cannot be read: %w", c.certFile, err)
		}
	}
	return &pair, nil
}

// explain turns tls.LoadX509KeyPair's error into one that names the file
// at fault and what to do: LoadX509KeyPair names neither which file it
// could not open nor, when the key does not match, either file.
func (c *Certificate) explain(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		flag := "--tls-cert"
		if pathErr.Path == c.keyFile && pathErr.Path != c.certFile {
			flag = "--tls-key"
		}
		return fmt.Errorf("%s %s: cannot read the file: %w", flag, pathErr.Path, pathErr.Err)
	}
	msg := err.Error()
	switch {
	case containsAny(msg, "private key does not match public key", "private key type does not match public key type"):
		return fmt.Errorf("--tls-key %s is not the key of the certificate in --tls-cert %s: give the pair's key", c.keyFile, c.certFile)
	case containsAny(msg, "certificate input"):
		return fmt.Errorf("--tls-cert %s holds no PEM certificate (-----BEGIN CERTIFICATE-----): %w", c.certFile, err)
	case containsAny(msg, "key input", "for the private key"):
		return fmt.Errorf("--tls-key %s holds no PEM private key (-----BEGIN PRIVATE KEY-----): %w", c.keyFile, err)
	case containsAny(msg, "private key"):
		return fmt.Errorf("--tls-key %s: the private key cannot be read: %w", c.keyFile, err)
	}
	return fmt.Errorf("--tls-cert %s: the certificate cannot be read: %w", c.certFile, err)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Reload reads the files again. A good pair replaces the one in use, for
// the handshakes that follow; connections open already keep theirs. A bad
// one (unreadable, half written, a key that is not the certificate's)
// leaves the pair in use in place, and the log says what is wrong with it.
func (c *Certificate) Reload() error {
	pair, err := c.read()
	if err != nil {
		c.log.Error("the TLS certificate was not reloaded: the one in use stays", "err", err)
		return err
	}
	c.current.Store(pair)
	c.log.Info("TLS certificate reloaded", "cert", c.certFile, "subject", pair.Leaf.Subject.String(),
		"not_after", pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// Leaf returns the certificate in use.
func (c *Certificate) Leaf() *x509.Certificate {
	return c.current.Load().Leaf
}

// Config returns a server configuration that serves the pair in use at
// each handshake, for every listener of the process to share. It offers
// HTTP/2 and HTTP/1.1 and takes TLS 1.2 at least.
func (c *Certificate) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load(), nil
		},
	}
}
