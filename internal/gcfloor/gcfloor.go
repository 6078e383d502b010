// Package gcfloor owns how often the garbage collector of a server runs
// while its heap is small: at least a fixed headroom of allocation between
// two collections, where Go's default (GOGC=100) allows only as much as the
// live heap, and at least 4 MB.
//
// A server whose live heap is a few megabytes and which allocates a few
// kilobytes a request collects tens of times a second under load. Each
// collection's mark phase takes about a millisecond of CPU on a small heap
// (more with the assists of the goroutines that allocate meanwhile), and on
// a server given one core, every request in flight waits for it: the
// requests caught by a collection make the latency's tail. With a headroom
// of a few tens of megabytes, collections are ten times rarer and cost no
// more each, since marking costs what the live heap holds, not the garbage.
// Once the live heap is larger than the headroom, Go's own rule applies
// unchanged (GOGC=100): the floor costs at most the headroom in memory.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the percent set, so that a nearly empty heap does not
// ask for an absurd one.
const maxPercent = 10000

// defaultPercent is Go's GOGC when the environment sets none.
const defaultPercent = 100

var (
	mu sync.Mutex
	// keeping counts the Keep calls not yet stopped; the first starts
	// the adjustment, the last stop ends it and sets the percent back.
	keeping  int
	headroom uint64
	previous int
	// generation tells a finalizer of a stopped Keep not to re-arm.
	generation int
)

// Keep makes the collector let the heap grow by at least headroom bytes
// between collections, from now until the function it returns is called:
// after each collection it sets the percent of debug.SetGCPercent to
// the percent that makes the goal the live heap plus headroom, at least
// Go's default of 100 (see percent). It does nothing, and returns a
// function that does nothing, when the environment sets GOGC (the
// operator's choice stands) or when headroom is 0. A memory limit
// (GOMEMLIMIT, debug.SetMemoryLimit) still holds: the collector runs
// sooner when the heap nears it, whatever the percent.
//
// Several Keeps may overlap (servers in one test process): the first one's
// headroom holds until the last one is stopped, which sets the percent
// back to what it was.
func Keep(h uint64) (stop func()) {
	if h == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	keeping++
	if keeping == 1 {
		headroom = h
		generation++
		previous = debug.SetGCPercent(percent(h, heap()))
		arm(generation)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			keeping--
			if keeping == 0 {
				generation++
				debug.SetGCPercent(previous)
			}
		})
	}
}

// sentinel is garbage whose finalizer runs after the collection that
// finds it unreachable. It is larger than the tiny allocator's 16 bytes,
// whose objects may share a block and never be finalized.
type sentinel struct{ _ [32]byte }

// arm leaves a sentinel whose finalizer, after the next collection,
// adjusts the percent to the live heap then and arms the next one, as long
// as generation gen is current.
func arm(gen int) {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		mu.Lock()
		defer mu.Unlock()
		if gen != generation {
			return
		}
		debug.SetGCPercent(percent(headroom, heap()))
		arm(gen)
	})
}

// heapMinimum is the runtime's smallest heap goal at GOGC=100
// (defaultHeapMinimum), which it scales by the percent.
const heapMinimum = 4 << 20

// percent is the GOGC that makes the collector's goal the live heap plus
// headroom, at least Go's default. The runtime's goal (gcControllerState's
// heapGoal and heapMinimum) is the larger of live + base·percent/100,
// where base is the live heap, the stacks scanned and the globals, and
// heapMinimum·percent/100; percent takes the smaller of the percents that
// make either the live heap plus headroom.
func percent(headroom uint64, h heapSize) int {
	p := uint64(maxPercent)
	if h.base > 0 {
		p = headroom * 100 / h.base
	}
	p = min(p, (h.live+headroom)*100/heapMinimum)
	return int(min(max(p, defaultPercent), maxPercent))
}

// heapSize is what the collector's goal is made of.
type heapSize struct {
	// live is the heap the last collection found live; base is live and
	// the stacks it scanned and the globals.
	live, base uint64
}

// heap reads the heap's size as the last collection left it.
func heap() heapSize {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	var h heapSize
	for i, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			continue
		}
		if i == 0 {
			h.live = x.Value.Uint64()
		}
		h.base += x.Value.Uint64()
	}
	return h
}
