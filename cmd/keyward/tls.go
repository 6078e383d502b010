package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward/keyward/internal/tlsreload"
	"github.com/keyward/keyward/manage"
)

// tlsOptions are the flags of keyward serve about TLS: the certificate
// its listeners serve, whether it takes plain HTTP, and HSTS.
type tlsOptions struct {
	certFile, keyFile string
	requireTLS        bool
	// requireTLSErr is why KEYWARD_REQUIRE_TLS could not be read, if it
	// could not; it matters only when --require-tls is not given.
	requireTLSErr error
	hsts          string

	// certificate is the pair of certFile and keyFile, read by check;
	// nil without TLS. Every listener serves it, and SIGHUP reloads it.
	certificate *tlsreload.Certificate
	// hstsMaxAge is hsts read by check; 0 for no HSTS.
	hstsMaxAge time.Duration
}

// tlsFlags adds the TLS flags to f, their defaults from the environment.
func (a *app) tlsFlags(f *pflag.FlagSet, o *tlsOptions) {
	f.StringVar(&o.certFile, "tls-cert", a.env("KEYWARD_TLS_CERT", ""),
		"PEM file of the certificate (with its chain) to serve HTTPS with, beside --tls-key; reloaded on SIGHUP (env KEYWARD_TLS_CERT)")
	f.StringVar(&o.keyFile, "tls-key", a.env("KEYWARD_TLS_KEY", ""),
		"PEM file of the private key of --tls-cert; reloaded on SIGHUP (env KEYWARD_TLS_KEY)")
	def := false
	if s := a.getenv("KEYWARD_REQUIRE_TLS"); s != "" {
		var err error
		if def, err = strconv.ParseBool(s); err != nil {
			o.requireTLSErr = fmt.Errorf("KEYWARD_REQUIRE_TLS: %q is not true or false", s)
		}
	}
	f.BoolVar(&o.requireTLS, "require-tls", def,
		"answer requests over plain HTTP 403 tls_required, except those a proxy in --trusted-proxies says came over HTTPS (X-Forwarded-Proto) and the health checks (env KEYWARD_REQUIRE_TLS)")
	f.StringVar(&o.hsts, "hsts", a.env("KEYWARD_HSTS", ""),
		"set Strict-Transport-Security with this max-age on answers over HTTPS: 1y, 180d, 26w or seconds (env KEYWARD_HSTS)")
}

// check reads the TLS flags: both files or neither, the certificate
// itself (a file that cannot be read, or a key that is not the
// certificate's, names the file), and --hsts. --require-tls without a
// certificate or a trusted proxy that could say a request came over HTTPS
// would refuse every request, so it is refused.
func (o *tlsOptions) check(trusted []netip.Prefix, logger *slog.Logger) error {
	switch {
	case o.certFile != "" && o.keyFile == "":
		return usageError{errors.New("--tls-key is missing: --tls-cert needs the file of its private key beside it (env KEYWARD_TLS_KEY)")}
	case o.certFile == "" && o.keyFile != "":
		return usageError{errors.New("--tls-cert is missing: --tls-key needs the file of its certificate beside it (env KEYWARD_TLS_CERT)")}
	}
	age, err := parseHSTS(o.hsts)
	if err != nil {
		return usageError{fmt.Errorf("--hsts: %w (env KEYWARD_HSTS)", err)}
	}
	o.hstsMaxAge = age
	if o.requireTLS && o.certFile == "" && len(trusted) == 0 {
		return usageError{errors.New("--require-tls without --tls-cert and --tls-key, nor --trusted-proxies to say which requests came over HTTPS, would refuse every request; serve TLS, or name the proxy that terminates it")}
	}
	if o.certFile == "" {
		if age > 0 && len(trusted) == 0 {
			logger.Warn("--hsts is set, but without --tls-cert nor --trusted-proxies no answer goes over HTTPS, so none carries it")
		}
		return nil
	}
	if o.certificate, err = tlsreload.Load(o.certFile, o.keyFile, logger); err != nil {
		return usageError{err}
	}
	return nil
}

// parseHSTS reads --hsts: "" or 0 for none, a number of years (1y, 365
// days each), a duration of the other flags (180d, 26w, 8760h) or a whole
// number of seconds, as the header's max-age counts them.
func parseHSTS(s string) (time.Duration, error) {
	const example = "use a form such as 1y, 180d or 31536000 (seconds), or 0 for none"
	switch {
	case s == "" || s == "0":
		return 0, nil
	case strings.HasSuffix(s, "y"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "y"))
		if err != nil || n < 1 || n > 100 {
			return 0, fmt.Errorf("%q is not a number of years from 1 to 100; %s", s, example)
		}
		return time.Duration(n) * 365 * 24 * time.Hour, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(manage.MaxDuration/time.Second) {
			return 0, fmt.Errorf("%d seconds is out of range; %s", n, example)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := manage.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w; %s", err, example)
	}
	if d < time.Second {
		return 0, fmt.Errorf("%q is less than a second; %s", s, example)
	}
	return d, nil
}
