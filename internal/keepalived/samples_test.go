package keepalived

import (
	"os"
	"path/filepath"
	"testing"
)

const samplesDir = "/usr/share/doc/keepalived/samples"

// TestSamples parses every sample configuration shipped with keepalived:
// none may produce an error diagnostic.
func TestSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, "keepalived.conf.*"))
	if len(files) == 0 {
		t.Skipf("no keepalived samples in %s (Debian package keepalived)", samplesDir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, diags, err := Parse(f, Options{})
			if err != nil {
				t.Error(err)
			}
			if testing.Verbose() {
				for _, d := range diags {
					t.Log(d)
				}
			}
		})
	}
	_ = os.Stdout
}
