package connlimit

// DefaultPerAddr is the PerAddr a server should default to. A client of an
// API key service is a backend or a proxy holding a pool of kept-alive
// connections, one per request in flight: 256 requests in flight from one
// host is far more than one needs (a cached verification takes
// microseconds), and 256 connections are a small part of the files a
// process may open. A proxy that carries many clients is exempted instead.
const DefaultPerAddr = 256

// MaxDefaultTotal is the most that DefaultTotal returns. A kept-alive idle
// connection of net/http costs about 18 KB of Go memory (its goroutine's
// stack and its buffers; measured with go1.26 on linux/amd64), so 10,000 of
// them take about 180 MB; a file limit of a million, which systemd and
// Docker commonly give, would otherwise let idle connections take
// gigabytes before any limit held.
const MaxDefaultTotal = 10_000

// DefaultTotal returns the Total a server should default to, given the
// process's limit on open files (see FileLimit; 0 when unknown): three
// quarters of that limit, so that a quarter is left for what else the
// server opens (the database's files and connections, the listener, its
// logs), and at most MaxDefaultTotal. Past the file limit, Accept would fail
// and the database could no longer open a connection; with this default,
// new clients wait instead, and what is open goes on working.
func DefaultTotal(fileLimit int) int {
	if fileLimit <= 0 {
		return MaxDefaultTotal
	}
	return max(1, min(MaxDefaultTotal, fileLimit/4*3))
}
