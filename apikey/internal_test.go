package apikey

import (
	"errors"
	"strings"
	"testing"
)

// byteCycle is a source of "random" bytes that counts 0, 1, …, 255, 0, …,
// and hands out at most max bytes per read, to exercise refilling.
type byteCycle struct {
	next byte
	max  int
}

func (c *byteCycle) read(p []byte) (int, error) {
	n := min(len(p), c.max)
	for i := range n {
		p[i] = c.next
		c.next++
	}
	return n, nil
}

// TestFillBase62Rejection feeds every byte value once and checks that the
// 8 values from rejectFrom up are thrown away and the other 248 give each
// digit exactly 4 times: no digit is favoured.
func TestFillBase62Rejection(t *testing.T) {
	if rejectFrom != 248 {
		t.Fatalf("rejectFrom = %d, want 248", rejectFrom)
	}
	for _, max := range []int{1, 7, 256} {
		t.Run("", func(t *testing.T) {
			src := &byteCycle{max: max}
			dst := make([]byte, 248)
			if err := fillBase62(dst, src.read); err != nil {
				t.Fatal(err)
			}
			for i := range len(alphabet) {
				if got := strings.Count(string(dst), alphabet[i:i+1]); got != 4 {
					t.Errorf("digit %q appears %d times, want 4", alphabet[i], got)
				}
			}
			// The next byte is 248 or more, so it is rejected and the next
			// digit comes from byte 0.
			one := make([]byte, 1)
			if err := fillBase62(one, src.read); err != nil {
				t.Fatal(err)
			}
			if one[0] != '0' {
				t.Errorf("after 248 bytes the next digit is %q, want '0' (bytes 248-255 rejected)", one[0])
			}
		})
	}
}

func TestFillBase62Error(t *testing.T) {
	failure := errors.New("no entropy")
	err := fillBase62(make([]byte, 4), func([]byte) (int, error) { return 0, failure })
	if !errors.Is(err, failure) {
		t.Fatalf("error %v, want %v", err, failure)
	}
}

func TestPutChecksum(t *testing.T) {
	tests := []struct {
		crc  uint32
		want string
	}{
		{0, "000000"},
		{1, "000001"},
		{61, "00000z"},
		{62, "000010"},
		{281609, "001BG5"},
		{0xFFFFFFFF, "4gfFC3"},
	}
	for _, tt := range tests {
		dst := make([]byte, ChecksumLen)
		putChecksum(dst, tt.crc)
		if string(dst) != tt.want {
			t.Errorf("putChecksum(%d) = %q, want %q", tt.crc, dst, tt.want)
		}
	}
}

func TestIsBase62(t *testing.T) {
	for c := range 256 {
		want := strings.IndexByte(alphabet, byte(c)) >= 0
		if got := isBase62(byte(c)); got != want {
			t.Errorf("isBase62(%q) = %v, want %v", byte(c), got, want)
		}
	}
}
