// Package lockedbuffer provides the buffer that a test hands to a running
// server as its log or output, and reads while the server writes.
package lockedbuffer

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer behind a mutex: safe for writers and readers at
// once. The zero Buffer is empty and ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
