package statefile

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/service"
)

// writerEnv makes the test binary a state-file writer (TestKilledWriter's
// child) instead of running tests.
const writerEnv = "GOLVS_STATEFILE_TEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		writeForever(path)
		return
	}
	os.Exit(m.Run())
}

func newPair(t testing.TB) (*control.Control, *engine.Engine) {
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return ctl, eng
}

var (
	vip4 = netip.MustParseAddr("198.18.0.1")
	vip6 = netip.MustParseAddr("2001:db8::1")
)

// populate gives ctl and eng one of everything the document holds.
func populate(t *testing.T, ctl *control.Control, eng *engine.Engine) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	k1 := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip4, Port: 80}
	must(ctl.AddService(k1, service.Config{Sched: "wrr", Flags: service.FlagPersistent, Timeout: 360, Netmask: 0xffffff00}))
	for i, fwd := range []service.FwdMethod{service.Masq, service.Route, service.Tunnel} {
		must(ctl.AddDest(k1, netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), 8080, service.DestConfig{Fwd: fwd, Weight: int32(i), UThreshold: 100, LThreshold: 10}))
	}
	k2 := service.Key{Family: service.IPv6, Proto: service.ProtoUDP, Addr: vip6, Port: 53}
	must(ctl.AddService(k2, service.Config{Sched: "sh", Flags: service.FlagSHPort | service.FlagOnePacket}))
	must(ctl.AddDest(k2, netip.MustParseAddr("2001:db8::10"), 53, service.DestConfig{Fwd: service.Tunnel, Weight: 3, TunType: service.TunGUE, TunPort: 6080, TunFlags: service.TunCsum}))
	k3 := service.Key{Family: service.IPv4, FWMark: 7}
	must(ctl.AddService(k3, service.Config{Sched: "rr"}))
	must(eng.SetTimeouts(100*time.Second, 0, 30*time.Second))
	eng.SetSettings(engine.Settings{ExpireNodestConn: true, ConnReuseMode: 2, SloppyTCP: true})
}

func TestCaptureApplyRoundTrip(t *testing.T) {
	ctl, eng := newPair(t)
	populate(t, ctl, eng)
	doc := Capture(ctl, eng)
	if doc.Version != Version || len(doc.Services) != 3 || len(doc.Services[0].Dests) != 3 {
		t.Fatalf("capture: %+v", doc)
	}
	// Kernel order: the last added real server first.
	if got := doc.Services[0].Dests[0].Addr; got != netip.MustParseAddr("198.19.0.3") {
		t.Errorf("first real server %v, want the last added", got)
	}
	path := filepath.Join(t.TempDir(), "sub", "state")
	if err := Write(path, doc); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	read, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(doc, read, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("read back (-want +got):\n%s", diff)
	}
	ctl2, eng2 := newPair(t)
	if err := Apply(read, ctl2, eng2); err != nil {
		t.Fatal(err)
	}
	again := Capture(ctl2, eng2)
	if diff := cmp.Diff(doc, again, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("applied and captured again (-want +got):\n%s", diff)
	}
}

func TestApplyRefuses(t *testing.T) {
	doc := &Document{Version: Version, Services: []Service{
		{Family: 4, Protocol: 6, Addr: vip4, Port: 80, Scheduler: "no-such", Netmask: 0xffffffff},
	}}
	ctl, eng := newPair(t)
	err := Apply(doc, ctl, eng)
	if !errors.Is(err, control.ErrSchedNotFound) || !strings.Contains(err.Error(), "198.18.0.1") {
		t.Errorf("unknown scheduler: %v", err)
	}
	doc.Services[0].Scheduler = "rr"
	doc.Services[0].Dests = []Dest{{Addr: netip.MustParseAddr("224.0.0.1"), Port: 80, Fwd: 3, Weight: 1}}
	ctl, eng = newPair(t)
	if err := Apply(doc, ctl, eng); !errors.Is(err, control.ErrInvalid) {
		t.Errorf("multicast real server: %v", err)
	}
	doc.Services[0].Dests = nil
	doc.Timeouts.TCP = 1 << 31
	ctl, eng = newPair(t)
	if err := Apply(doc, ctl, eng); err == nil || !strings.Contains(err.Error(), "timeouts") {
		t.Errorf("timeout out of range: %v", err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "unexpected end"},
		{"truncated", `{"version":1,"services":[`, "unexpected end"},
		{"no version", `{"services":[]}`, "no version"},
		{"newer", `{"version":2}`, "version 2, this lvsd reads version 1"},
		{"unknown field", `{"version":1,"servcies":[]}`, "unknown field"},
		{"trailing", `{"version":1} {}`, "after top-level value"},
		{"bad address", `{"version":1,"services":[{"family":4,"addr":"300.1.1.1"}]}`, "300.1.1.1"},
		{"not an object", `[1]`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Unmarshal(%q) = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "state"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for _, name := range []string{".state.tmp-1", ".state.tmp-22", "state", ".other.tmp-1", "state.tmp-3"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveTemps(path)
	if err != nil || n != 2 {
		t.Fatalf("RemoveTemps = %d, %v; want 2", n, err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{".other.tmp-1", "state", "state.tmp-3"}, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	if n, err := RemoveTemps(filepath.Join(dir, "nodir", "state")); n != 0 || err != nil {
		t.Errorf("missing directory: %d, %v", n, err)
	}
}

// generation returns the document a writer writes in its round i: a
// size that varies from nothing to a few hundred kilobytes, so that a
// kill lands in the middle of writes of every length, and a marker (i)
// repeated in every service, so that a mixture of two documents shows.
func generation(i int) *Document {
	d := &Document{Version: Version, Timeouts: Timeouts{TCP: uint32(i), TCPFin: 120, UDP: 300}}
	n := i % 97
	for s := range n {
		svc := Service{Family: 4, Protocol: 6, Addr: netip.AddrFrom4([4]byte{198, 18, byte(s >> 8), byte(s)}), Port: 80,
			Scheduler: "wlc", Timeout: uint32(i), Netmask: 0xffffffff}
		for j := range 20 {
			svc.Dests = append(svc.Dests, Dest{Addr: netip.AddrFrom4([4]byte{198, 19, byte(s), byte(j)}), Port: uint16(i), Fwd: 3, Weight: 1})
		}
		d.Services = append(d.Services, svc)
	}
	return d
}

// checkGeneration verifies that d is exactly one writer generation.
func checkGeneration(d *Document) error {
	i := int(d.Timeouts.TCP)
	want := generation(i)
	if diff := cmp.Diff(want, d, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		return errors.New("not a generation the writer wrote: " + diff)
	}
	return nil
}

// writeForever is the child of TestKilledWriter: it writes generations
// to path until it is killed, saying "ready" after the first one.
func writeForever(path string) {
	start, _ := strconv.Atoi(os.Getenv(writerEnv + "_START"))
	for i := start; ; i++ {
		if err := Write(path, generation(i)); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		if i == start {
			os.Stdout.WriteString("ready\n")
		}
	}
}

// TestKilledWriter kills a process that writes the state file in a loop
// at random moments and checks that the file always reads back as one
// whole document: the write-to-temp, fsync, rename construction at work.
func TestKilledWriter(t *testing.T) {
	const (
		rounds = 30
		// budget bounds the whole test: a round costs a process start
		// and at most maxRun of writing.
		budget = 20 * time.Second
		maxRun = 30 * time.Millisecond
	)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state")
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(budget)
	next := 1
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: out of time", round)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path, writerEnv+"_START="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan error, 1)
		go func() {
			line, err := bufio.NewReader(out).ReadString('\n')
			if err == nil && line != "ready\n" {
				err = errors.New("child said " + line)
			}
			ready <- err
		}()
		select {
		case err := <-ready:
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: writer: %v %s", round, err, stderr.String())
			}
		case <-time.After(time.Until(deadline)):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: writer not ready in time", round)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(maxRun))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer ended with %v, not by SIGKILL: %s", round, err, stderr.String())
		}
		d, err := Read(path)
		if err != nil {
			t.Fatalf("round %d: after SIGKILL: %v", round, err)
		}
		if err := checkGeneration(d); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if int(d.Timeouts.TCP) < next {
			t.Fatalf("round %d: generation %d, older than the first of this writer (%d)", round, d.Timeouts.TCP, next)
		}
		next = int(d.Timeouts.TCP) + 1
		if _, err := RemoveTemps(path); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds, %d generations written", rounds, next-1)
}
