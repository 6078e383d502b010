package lockedbuffer_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/lockedbuffer"
)

// TestBuffer: writes from several goroutines, read while they write, all
// arrive whole.
func TestBuffer(t *testing.T) {
	var b lockedbuffer.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 400 {
		t.Fatalf("%d lines, want 400", got)
	}
}
