package guard

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProductionGraph keeps test infrastructure out of the binaries
// (style.md §3.5): the simulated network and the test helpers must never
// be linked into lvsd or ipvsadm.
func TestProductionGraph(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	root := moduleRoot(t)
	forbidden := []string{"golvs/internal/lvslab", "golvs/internal/lvstest", "testing"}
	for _, cmd := range []string{"./cmd/lvsd", "./cmd/ipvsadm"} {
		out, err := exec.Command("go", "list", "-C", root, "-deps", cmd).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") || strings.Contains(string(out), "directory not found") {
				continue // the command does not exist yet
			}
			t.Fatalf("go list -deps %s: %v\n%s", cmd, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s links %s: test infrastructure must stay out of the binaries", cmd, dep)
				}
			}
		}
	}
}
