package gateway_test

import (
	"os/exec"
	"strings"
	"testing"
)

// fasthttpImporters are the only packages that may import fasthttp: the
// gateway, which keeps it behind its own API, and the load test's
// target (its bare fasthttp proxy row). Nothing else of Keyward depends
// on it.
var fasthttpImporters = map[string]bool{
	"github.com/keyward/keyward/gateway":             true,
	"github.com/keyward/keyward/internal/loadtarget": true,
}

func TestFasthttpStaysInside(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/keyward/keyward/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		for imp := range strings.FieldsSeq(imports) {
			if strings.HasPrefix(imp, "github.com/valyala/fasthttp") && !fasthttpImporters[pkg] {
				t.Errorf("%s imports %s; only the gateway may (keep fasthttp behind its API)", pkg, imp)
			}
		}
	}
}
