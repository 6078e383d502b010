package verify

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// maxSpendBatch is the most spends one transaction takes: a batch of them
// holds its keys' rows locked until it commits, so it is kept short enough
// that the requests of other nodes waiting on those rows are not held up
// long.
const maxSpendBatch = 256

// spender counts the requests of metered keys in the store by group
// commit: a verification queues its Spend and waits, while one goroutine
// takes everything queued (up to maxSpendBatch) and runs it as one
// transaction (keyward.Meter.SpendBatch). While a batch runs the next one
// gathers, so the store sees one write transaction per batch rather than
// one per request (SPEC §7), and a lone request waits for one transaction,
// as it would alone: the goroutine never waits for more to come.
//
// Every request still learns whether its spend was allowed before it is
// answered, so credits and quotas stay exact. The goroutine runs only
// while there is work, and Verifier.Close waits for it.
type spender struct {
	store   keyward.Meter
	timeout time.Duration

	mu      sync.Mutex
	queue   []*spendWait
	running bool          // a goroutine is taking batches
	closed  bool          // Close was called: no goroutine starts any more
	stopped chan struct{} // made by close when a goroutine runs; closed when it ends

	// waits pools the spendWaits, each with its channel, so that a
	// metered verification allocates neither.
	waits sync.Pool

	// batch and spends are the goroutine's own, reused from batch to
	// batch.
	batch  []*spendWait
	spends []keyward.Spend
}

// spendWait is a queued spend and, once its batch has run, its result. The
// goroutine sends on done when the result is set; after that it never
// touches the spendWait again, and the waiter puts it back in the pool.
type spendWait struct {
	sp    keyward.Spend
	spent keyward.Spent
	err   error
	done  chan struct{}
}

// newSpender returns a spender that writes to store, each batch within
// timeout.
func newSpender(store keyward.Meter, timeout time.Duration) *spender {
	s := &spender{store: store, timeout: timeout}
	s.waits.New = func() any { return &spendWait{done: make(chan struct{}, 1)} }
	return s
}

// spend counts sp in the store with the spends of the requests queued with
// it, and returns what it did. It gives up on ctx only while sp is still
// queued, when nothing can have been taken: once its batch runs, it waits
// for the batch's end (within the spender's timeout), since a request
// refused for a spend that then committed would have been counted for
// nothing. After Close, sp runs alone.
func (s *spender) spend(ctx context.Context, sp keyward.Spend) (keyward.Spent, error) {
	if err := ctx.Err(); err != nil {
		return keyward.Spent{}, gaveUp(err)
	}
	w := s.waits.Get().(*spendWait)
	w.sp = sp
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.waits.Put(w)
		return s.alone(sp)
	}
	s.queue = append(s.queue, w)
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.run()
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		if s.dequeue(w) {
			w.sp = keyward.Spend{}
			s.waits.Put(w)
			return keyward.Spent{}, gaveUp(ctx.Err())
		}
		<-w.done // its batch is running: wait for what it did
	}
	spent, err := w.spent, w.err
	*w = spendWait{done: w.done}
	s.waits.Put(w)
	return spent, err
}

// gaveUp is the error of a spend whose request gave up before its batch
// began: it took nothing.
func gaveUp(err error) error {
	return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database did not take the request's spend in time; try again.", Err: err}
}

// dequeue takes w out of the queue, and reports whether it was still
// there.
func (s *spender) dequeue(w *spendWait) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.queue, w)
	if i < 0 {
		return false
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	return true
}

// alone runs sp as a batch of its own, in the caller's goroutine.
func (s *spender) alone(sp keyward.Spend) (keyward.Spent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	spent, err := s.store.SpendBatch(ctx, []keyward.Spend{sp})
	if err != nil {
		return keyward.Spent{}, err
	}
	return spent[0], spent[0].Err
}

// run takes batches from the queue and runs them until the queue is empty.
func (s *spender) run() {
	for {
		batch := s.take()
		if len(batch) == 0 {
			return
		}
		s.runBatch(batch)
	}
}

// take moves up to maxSpendBatch spends from the queue into s.batch and
// returns it. With none queued, it marks the goroutine as gone, under the
// lock, so that the next spend starts another, and returns nil.
func (s *spender) take() []*spendWait {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		s.running = false
		if s.stopped != nil {
			close(s.stopped)
		}
		return nil
	}
	n := min(len(s.queue), maxSpendBatch)
	s.batch = append(s.batch[:0], s.queue[:n]...)
	s.queue = s.queue[:copy(s.queue, s.queue[n:])]
	clear(s.queue[len(s.queue) : len(s.queue)+n]) // drop the moved pointers
	return s.batch
}

// runBatch runs the spends of batch as one SpendBatch, gives each waiter
// its result and wakes it.
func (s *spender) runBatch(batch []*spendWait) {
	s.spends = s.spends[:0]
	for _, w := range batch {
		s.spends = append(s.spends, w.sp)
	}
	spent, err := s.spendBatch()
	if err == nil && len(spent) != len(batch) {
		err = keyward.Internal(fmt.Errorf("verify: the store answered %d spends of %d", len(spent), len(batch)))
	}
	for i, w := range batch {
		if err != nil {
			w.spent, w.err = keyward.Spent{}, err
		} else {
			w.spent, w.err = spent[i], spent[i].Err
		}
		w.done <- struct{}{} // w is the waiter's again
	}
	clear(batch)
	clear(s.spends)
}

// spendBatch runs s.spends as one SpendBatch within the timeout. A panic
// in the store, which net/http would have recovered in the request's own
// goroutine, is the batch's error here rather than the end of the
// process; its transaction was never committed.
func (s *spender) spendBatch() (spent []keyward.Spent, err error) {
	defer func() {
		if v := recover(); v != nil {
			spent, err = nil, keyward.Internal(fmt.Errorf("verify: a spend batch panicked: %v", v))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return s.store.SpendBatch(ctx, s.spends)
}

// close stops the spender: spends from now on run alone, and close waits
// for the goroutine to finish the spends queued already, or for ctx.
func (s *spender) close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	if s.stopped == nil {
		s.stopped = make(chan struct{})
	}
	stopped := s.stopped
	s.mu.Unlock()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
