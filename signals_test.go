package keyward

import "testing"

// TestReached: each threshold is reached at one count, the ceiling of its
// share of the limit; a share that rounds to the count of a higher one is
// left to the higher one, so that one request never raises two.
func TestReached(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		at    map[int64]int64 // count: threshold
	}{
		{1, map[int64]int64{1: 100}},
		{3, map[int64]int64{3: 100}},
		{5, map[int64]int64{4: 80, 5: 100}},
		{10, map[int64]int64{8: 80, 10: 100}},
		{1001, map[int64]int64{801: 80, 1001: 100}},
	} {
		for used := int64(0); used <= tc.limit+1; used++ {
			if got := Reached(used, tc.limit); got != tc.at[used] {
				t.Errorf("Reached(%d, %d) = %d; want %d", used, tc.limit, got, tc.at[used])
			}
		}
	}
	for _, tc := range []struct{ refill, mark int64 }{{100, 10}, {1, 1}, {15, 2}} {
		if got := LowMark(&tc.refill); got != tc.mark {
			t.Errorf("LowMark(%d) = %d; want %d", tc.refill, got, tc.mark)
		}
	}
	if got := LowMark(nil); got != 0 {
		t.Errorf("LowMark(nil) = %d; want 0", got)
	}
}
