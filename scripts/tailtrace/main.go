// Command tailtrace reads a Go execution trace of a server under load
// (keyward serve --debug-addr, /debug/pprof/trace) and tells what makes the
// tail of its latency: what ran on the processor besides the requests
// (Keyward's background goroutines, the runtime's), for how long and how
// often; which blocking system calls held the processor; how many requests
// each garbage collection caught; and, for the time the processor was busy
// during each request, its percentiles with and without each kind of work.
//
// It is its own module, so that Keyward does not depend on
// golang.org/x/exp. Run it from its directory:
//
//	go run . TRACE
//
// scripts/trace-load takes the trace and runs it.
package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// kinds name the goroutines by the functions on their stacks, first match
// first.
var kinds = []struct {
	re   *regexp.Regexp
	kind string
}{
	{regexp.MustCompile(`^net/http\.\(\*conn\)\.serve$`), "requests"},
	{regexp.MustCompile(`^github\.com/valyala/fasthttp\.\(\*workerPool\)\.workerFunc$`), "requests"},
	{regexp.MustCompile(`^net/http\.\(\*connReader\)\.backgroundRead$`), "requests (net/http background read)"},
	{regexp.MustCompile(`^net/http\.\(\*Server\)\.Serve$`), "accept loop"},
	{regexp.MustCompile(`\(\*Verifier\)\.pollLoop$`), "verify: change feed poll"},
	{regexp.MustCompile(`\(\*Verifier\)\.flushLoop$`), "verify: last-use flush"},
	{regexp.MustCompile(`\(\*Verifier\)\.PruneChanges$`), "verify: feed pruning"},
	{regexp.MustCompile(`otter/v2\.updateCoarseClock$`), "otter: coarse clock"},
	{regexp.MustCompile(`maypok86/otter`), "otter: other"},
	{regexp.MustCompile(`^database/sql\.`), "database/sql"},
	{regexp.MustCompile(`^modernc\.org/sqlite\.`), "sqlite driver"},
	{regexp.MustCompile(`^runtime\.gcBgMarkWorker$`), "GC: mark worker"},
	{regexp.MustCompile(`^runtime\.(bgsweep|bgscavenge|forcegchelper|runfinq|runCleanups)$`), "runtime: sweep, scavenge, finalizers"},
	{regexp.MustCompile(`^runtime/trace\.|^net/http/pprof\.|^runtime\.traceStartReadCPU|^runtime\.traceAdvance`), "the trace itself"},
	{regexp.MustCompile(`^os/signal\.`), "signal handling"},
}

// assist is the kind of a goroutine's running time in a GC mark assist.
const assist = "GC: assists"

type goroutine struct {
	funcs      map[string]bool
	kind       string
	running    trace.Time // when it started running, or 0
	syscall    trace.Time // when it entered a system call, or 0
	woken      trace.Time // when a network wait ended, or 0
	assisting  bool
	waitReason string
}

// span is a stretch of time of goroutine g.
type span struct {
	start, end trace.Time
	g          trace.GoID
	assist     bool
}

func (s span) d() time.Duration { return time.Duration(s.end - s.start) }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tailtrace TRACE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail(err)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		fail(err)
	}
	gs := map[trace.GoID]*goroutine{}
	get := func(id trace.GoID) *goroutine {
		g := gs[id]
		if g == nil {
			g = &goroutine{funcs: map[string]bool{}}
			gs[id] = g
		}
		return g
	}
	var running, syscalls, requests, marks []span
	var first, last, markStart trace.Time
	procs := map[trace.ProcID]bool{}
	// cut ends g's running span at t and starts another, so that a span is
	// all in an assist or all out of one.
	cut := func(id trace.GoID, g *goroutine, t trace.Time) {
		if g.running != 0 {
			running = append(running, span{g.running, t, id, g.assisting})
			g.running = t
		}
	}
	for {
		ev, err := r.ReadEvent()
		if err != nil {
			break
		}
		t := ev.Time()
		if first == 0 {
			first = t
		}
		last = t
		if p := ev.Proc(); p != trace.NoProc {
			procs[p] = true
		}
		switch ev.Kind() {
		case trace.EventRangeBegin, trace.EventRangeActive, trace.EventRangeEnd:
			rg := ev.Range()
			begin := ev.Kind() != trace.EventRangeEnd
			switch {
			case rg.Name == "GC mark assist" && rg.Scope.Kind == trace.ResourceGoroutine:
				id := rg.Scope.Goroutine()
				g := get(id)
				cut(id, g, t)
				g.assisting = begin
			case rg.Name == "GC concurrent mark phase" && begin:
				markStart = t
			case rg.Name == "GC concurrent mark phase" && markStart != 0:
				marks = append(marks, span{markStart, t, 0, false})
			}
			continue
		case trace.EventStateTransition:
		default:
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		g := get(id)
		for _, s := range []trace.Stack{st.Stack, ev.Stack()} {
			if s == trace.NoStack || (s == ev.Stack() && ev.Goroutine() != id) {
				continue
			}
			for fr := range s.Frames() {
				g.funcs[fr.Func] = true
			}
		}
		from, to := st.Goroutine()
		if from == trace.GoRunning && g.running != 0 {
			running = append(running, span{g.running, t, id, g.assisting})
			g.running = 0
		}
		if from == trace.GoSyscall && g.syscall != 0 {
			syscalls = append(syscalls, span{g.syscall, t, id, false})
			g.syscall = 0
		}
		switch to {
		case trace.GoRunning:
			g.running = t
		case trace.GoSyscall:
			g.syscall = t
		case trace.GoRunnable:
			if from == trace.GoWaiting && g.waitReason == "network" {
				g.woken = t
			}
		case trace.GoWaiting:
			g.waitReason = st.Reason
			// A request: from the wake-up after a network wait to the
			// next network wait, once it has read and answered.
			if st.Reason == "network" && g.woken != 0 {
				requests = append(requests, span{g.woken, t, id, false})
				g.woken = 0
			}
		}
	}
	for _, g := range gs {
		g.kind = kindOf(g.funcs)
		if g.kind == "other" && os.Getenv("TAILTRACE_OTHER") != "" {
			fmt.Fprintln(os.Stderr, "other:", sortedKeys(g.funcs))
		}
	}
	kindOfSpan := func(s span) string {
		if s.assist {
			return assist
		}
		return gs[s.g].kind
	}
	total := time.Duration(last - first)
	fmt.Printf("trace of %v, %d processor(s) (GOMAXPROCS), %d requests\n\n", total.Round(time.Millisecond), len(procs), len(requests))

	// 1. What ran, by kind.
	type usage struct {
		gs            map[trace.GoID]bool
		runs, sys     []time.Duration
		run, sysTotal time.Duration
	}
	by := map[string]*usage{}
	use := func(k string) *usage {
		if by[k] == nil {
			by[k] = &usage{gs: map[trace.GoID]bool{}}
		}
		return by[k]
	}
	for _, s := range running {
		u := use(kindOfSpan(s))
		u.gs[s.g] = true
		u.runs = append(u.runs, s.d())
		u.run += s.d()
	}
	for _, s := range syscalls {
		u := use(gs[s.g].kind)
		u.sys = append(u.sys, s.d())
		u.sysTotal += s.d()
	}
	var ks []string
	for k := range by {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return by[ks[i]].run > by[ks[j]].run })
	fmt.Println("What ran on the processor, by goroutine (running time; a slice is one stretch of running):")
	fmt.Printf("%-38s %7s %8s %10s %6s %9s %9s %9s | %7s %9s %9s\n", "goroutines", "number", "slices", "running", "share", "slice p50", "p99", "max", "syscalls", "in them", "longest")
	for _, k := range ks {
		u := by[k]
		slices.Sort(u.runs)
		slices.Sort(u.sys)
		fmt.Printf("%-38.38s %7d %8d %10v %5.2f%% %9v %9v %9v | %7d %9v %9v\n", k, len(u.gs), len(u.runs), u.run.Round(time.Microsecond),
			100*float64(u.run)/float64(total), q(u.runs, .5), q(u.runs, .99), q(u.runs, 1), len(u.sys), u.sysTotal.Round(time.Microsecond), q(u.sys, 1))
	}

	// 2. Keyward's periodic work, round by round.
	sort.Slice(running, func(i, j int) bool { return running[i].start < running[j].start })
	fmt.Println("\nKeyward's periodic work, by round (slices less than 10 ms apart):")
	type round struct {
		start, end trace.Time
		run        time.Duration
	}
	rounds := map[string][]round{}
	for _, s := range running {
		k := kindOfSpan(s)
		if !strings.HasPrefix(k, "verify:") {
			continue
		}
		l := rounds[k]
		if n := len(l); n > 0 && s.start-l[n-1].end < trace.Time(10*time.Millisecond) {
			l[n-1].end, l[n-1].run = s.end, l[n-1].run+s.d()
		} else {
			l = append(l, round{s.start, s.end, s.d()})
		}
		rounds[k] = l
	}
	for _, k := range sortedKeys(rounds) {
		var runs, walls []time.Duration
		for _, r := range rounds[k] {
			runs = append(runs, r.run)
			walls = append(walls, time.Duration(r.end-r.start))
		}
		slices.Sort(runs)
		slices.Sort(walls)
		fmt.Printf("  %-26s %3d rounds (%.1f/s); running per round p50 %v, max %v; wall time p50 %v, max %v\n", k, len(runs),
			float64(len(runs))/total.Seconds(), q(runs, .5), q(runs, 1), q(walls, .5), q(walls, 1))
	}

	// 3. Blocking system calls of goroutines other than requests, and
	// whether the processor ran anything else meanwhile.
	fmt.Println("\nSystem calls of 300 µs or more outside requests (with one processor, the others wait unless the runtime hands it off):")
	for _, sc := range syscalls {
		k := gs[sc.g].kind
		if sc.d() < 300*time.Microsecond || strings.HasPrefix(k, "requests") || gs[sc.g].funcs["os/signal.signal_recv"] {
			continue
		}
		var others time.Duration
		for _, s := range running {
			if s.g != sc.g && s.start < sc.end && s.end > sc.start {
				others += time.Duration(min(s.end, sc.end) - max(s.start, sc.start))
			}
		}
		fmt.Printf("  %-26s %9v; other goroutines ran %v of it\n", k, sc.d().Round(time.Microsecond), others.Round(time.Microsecond))
	}

	// 4. Requests: wall time on the server, and the time the processor was
	// busy during each, by kind of work.
	type req struct {
		wall, busy time.Duration
		by         map[string]time.Duration
	}
	reqs := make([]req, len(requests))
	for i, rq := range requests {
		x := req{wall: rq.d(), by: map[string]time.Duration{}}
		j := sort.Search(len(running), func(j int) bool { return running[j].start >= rq.start })
		for j = max(0, j-64); j < len(running) && running[j].start < rq.end; j++ {
			s := running[j]
			a, b := max(s.start, rq.start), min(s.end, rq.end)
			if b <= a {
				continue
			}
			k := kindOfSpan(s)
			switch {
			case k == assist:
			case s.g == rq.g:
				k = "the request itself"
			case strings.HasPrefix(k, "requests"):
				k = "other requests"
			}
			x.by[k] += time.Duration(b - a)
			x.busy += time.Duration(b - a)
		}
		reqs[i] = x
	}
	walls := make([]time.Duration, len(reqs))
	busy := make([]time.Duration, len(reqs))
	for i, x := range reqs {
		walls[i], busy[i] = x.wall, x.busy
	}
	slices.Sort(walls)
	slices.Sort(busy)
	fmt.Printf("\nRequests, from the wake-up that brings one in to the wait for the next:\n")
	fmt.Printf("  wall time on the server: p50 %v, p99 %v (p99/p50 %.1f), p99.9 %v, max %v\n", q(walls, .5), q(walls, .99), ratio(walls), q(walls, .999), q(walls, 1))
	fmt.Printf("  processor busy meanwhile: p50 %v, p99 %v (p99/p50 %.1f), p99.9 %v\n", q(busy, .5), q(busy, .99), ratio(busy), q(busy, .999))
	fmt.Println("  (wall time less busy time: the process's thread off the CPU, taken by other work on the machine, or idle in the poller)")
	fmt.Printf("\n  %-38s %12s %9s %9s %9s %7s\n", "busy time without the work of", "in requests", "p50", "p99", "p99.9", "p99/p50")
	all := map[string]bool{}
	for _, x := range reqs {
		for k := range x.by {
			all[k] = true
		}
	}
	type row struct {
		k          string
		hit        int
		without    []time.Duration
		p99Without time.Duration
	}
	var rows []row
	for k := range all {
		rw := row{k: k, without: make([]time.Duration, len(reqs))}
		for i, x := range reqs {
			rw.without[i] = x.busy - x.by[k]
			if x.by[k] > 0 {
				rw.hit++
			}
		}
		slices.Sort(rw.without)
		rw.p99Without = q(rw.without, .99)
		rows = append(rows, rw)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].p99Without < rows[j].p99Without })
	fmt.Printf("  %-38s %12s %9v %9v %9v %7.1f\n", "(nothing left out)", "", q(busy, .5), q(busy, .99), q(busy, .999), ratio(busy))
	for _, rw := range rows {
		fmt.Printf("  %-38.38s %11.1f%% %9v %9v %9v %7.1f\n", rw.k, 100*float64(rw.hit)/float64(len(reqs)), q(rw.without, .5), rw.p99Without, q(rw.without, .999), ratio(rw.without))
	}

	// 5. Garbage collection.
	var markTotal time.Duration
	var markDs []time.Duration
	for _, m := range marks {
		markTotal += m.d()
		markDs = append(markDs, m.d())
	}
	slices.Sort(markDs)
	gcWork := 0
	for _, x := range reqs {
		if x.by[assist] > 0 || x.by["GC: mark worker"] > 0 {
			gcWork++
		}
	}
	fmt.Printf("\nGarbage collection: %d cycles (%.1f/s, one per %d requests); mark phases p50 %v, max %v, %.1f%% of the time;\n",
		len(marks), float64(len(marks))/total.Seconds(), len(reqs)/max(1, len(marks)), q(markDs, .5), q(markDs, 1), 100*float64(markTotal)/float64(total))
	fmt.Printf("  %.1f%% of requests had GC work (mark worker or assists) run during them\n", 100*float64(gcWork)/float64(max(1, len(reqs))))
	var cpu time.Duration
	for _, s := range running {
		cpu += s.d()
	}
	fmt.Printf("\nRunning time per request, all goroutines: %v\n", (cpu / time.Duration(max(1, len(reqs)))).Round(10*time.Nanosecond))
}

// kindOf names a goroutine by the functions seen on its stacks.
func kindOf(funcs map[string]bool) string {
	for _, k := range kinds {
		for f := range funcs {
			if k.re.MatchString(f) {
				return k.kind
			}
		}
	}
	if len(funcs) == 0 {
		return "(no stack seen)"
	}
	return "other"
}

// q returns the p quantile of sorted d, rounded for reading.
func q(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	x := d[int(float64(len(d)-1)*p)]
	switch {
	case x >= 10*time.Millisecond:
		return x.Round(100 * time.Microsecond)
	case x >= 100*time.Microsecond:
		return x.Round(time.Microsecond)
	}
	return x.Round(100 * time.Nanosecond)
}

// ratio is the p99 of sorted d over its p50.
func ratio(d []time.Duration) float64 {
	if p50 := q(d, .5); p50 > 0 {
		return float64(q(d, .99)) / float64(p50)
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tailtrace:", err)
	os.Exit(1)
}
