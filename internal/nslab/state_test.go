package nslab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCleanupRefusesForeignDirs: the lab never removes a directory whose
// name does not say it is a lab's.
func TestCleanupRefusesForeignDirs(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Cleanup(context.Background(), dir, DefaultPrefix, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `starts with "golvs-lab"`) {
		t.Errorf("Cleanup(%s): %v", dir, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Cleanup touched a foreign directory: %v", err)
	}
	if err := (&Config{RunDir: dir}).defaults(); err == nil {
		t.Error("a foreign run directory is accepted")
	}
	if err := (&Config{RunDir: filepath.Join(dir, "golvs-lab"), Prefix: "lab"}).defaults(); err == nil {
		t.Error("a namespace prefix without golvs- is accepted")
	}
}

// TestCleanupStaleState: the state file of a lab that died (its process
// gone) and its temporary binaries are removed, and a foreign BinDir in
// a state file is left alone.
func TestCleanupStaleState(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs ip(8) (iproute2) to list namespaces")
	}
	base := t.TempDir()
	run := filepath.Join(base, "golvs-lab")
	bin := filepath.Join(base, "golvs-lab-bin-1")
	foreign := filepath.Join(base, "bin")
	for _, d := range []string{filepath.Join(run, "director1"), bin, foreign} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A PID above pid_max's ceiling (2^22) names no process.
	st := &State{PID: 1 << 23, Prefix: "golvs-lab-test-none", RunDir: run, BinDir: bin, Socket: socketPath(run), Started: time.Now()}
	if err := writeState(st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Cleanup(context.Background(), run, "golvs-lab-test-none", &out); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{run, bin} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s not removed (%v)", d, err)
		}
	}
	if !strings.Contains(out.String(), "removed "+bin+" and "+run) {
		t.Errorf("Cleanup said %q", out.String())
	}

	// A state file naming a directory that is not the lab's.
	os.MkdirAll(run, 0o755)
	st.BinDir = foreign
	writeState(st)
	if err := Cleanup(context.Background(), run, "golvs-lab-test-none", &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("Cleanup removed %s, which is not a lab's: %v", foreign, err)
	}

	// Nothing left: nothing said.
	out.Reset()
	if err := Cleanup(context.Background(), run, "golvs-lab-test-none", &out); err != nil || out.Len() != 0 {
		t.Errorf("Cleanup of nothing: %v %q", err, out.String())
	}
}
