package dashboard

import (
	"testing"

	"github.com/keyward/keyward"
)

// TestProblemHelp: every code of keyward has a page that says what
// happened and what to do; no page is of a code that does not exist.
func TestProblemHelp(t *testing.T) {
	for _, c := range keyward.Codes() {
		if h, ok := helps[c]; !ok || h.What == "" || len(h.Do) == 0 {
			t.Errorf("code %s has no help page", c)
		}
	}
	for c := range helps {
		if !c.Known() {
			t.Errorf("help for %s, which is not a code", c)
		}
	}
}
