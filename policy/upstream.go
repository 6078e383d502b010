package policy

import (
	"errors"
	"fmt"
	"net/url"
)

// ParseUpstream reads the URL of an upstream that the gateway proxies
// requests to (a route's upstream and upstream_test, serve --upstream and
// --upstream-test): http or https, with a host, and optionally a path
// that prefixes every request's; no user, query or fragment, which the
// gateway would have to merge into every request's. Its error says what to
// write instead, and is meant to follow the name of the field or flag.
func ParseUpstream(s string) (*url.URL, error) {
	const example = "write a URL such as http://127.0.0.1:9000 or https://api.internal/base"
	if s == "" {
		return nil, errors.New("is empty; " + example)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q cannot be read as a URL; %s", s, example)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q does not start with http:// or https://; %s", s, example)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q names no host; %s", s, example)
	case u.User != nil:
		return nil, fmt.Errorf("%q holds a user name or password, which the gateway does not send; %s", u.Redacted(), example)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("%q has a query string; %s, and leave the query to each request", s, example)
	case u.Fragment != "":
		return nil, fmt.Errorf("%q has a #fragment; %s", s, example)
	}
	return u, nil
}
