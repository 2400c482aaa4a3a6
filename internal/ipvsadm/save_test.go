package ipvsadm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/service"
)

// TestSaveRestore: what Save writes, applied line by line as -R applies
// it (with the test model of the kernel), gives the same table, less what
// a save does not keep (thresholds, counters). Random configurations of
// every kind the model can apply.
func TestSaveRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		s := randomConfig(rng)
		var b bytes.Buffer
		if err := Save(&b, s, true); err != nil {
			t.Fatal(err)
		}
		back := newModelState()
		for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if l == "" {
				continue
			}
			c, err := parseModelCmd(l)
			if err == nil {
				err = modelApply(back, c)
			}
			if err != nil {
				t.Fatalf("case %d: line %q: %v\n%s", i, l, err, b.String())
			}
		}
		// The restored table is in sorted order; compare sorted.
		want, got := sortedConfig(s), sortedConfig(back)
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Fatalf("case %d (-saved +restored):\n%s\n%s", i, diff, b.String())
		}
	}
}

// sortedConfig is the configuration a save keeps, services and
// destinations in a total order (not the listing's, which is not
// transitive: a save of a restored table may list them in another order).
func sortedConfig(s *State) []ServiceEntry {
	var out []ServiceEntry
	for _, e := range s.Services {
		e.Stats, e.Rates = statsZero, ratesZero
		var dests []DestEntry
		for _, d := range e.Dests {
			dests = append(dests, DestEntry{Addr: d.Addr, Port: d.Port, Config: service.DestConfig{
				Fwd: d.Config.Fwd, Weight: d.Config.Weight, TunType: d.Config.TunType, TunPort: d.Config.TunPort, TunFlags: d.Config.TunFlags}})
		}
		slices.SortFunc(dests, func(a, b DestEntry) int {
			return netip.AddrPortFrom(a.Addr, a.Port).Compare(netip.AddrPortFrom(b.Addr, b.Port))
		})
		e.Dests = dests
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ServiceEntry) int { return strings.Compare(fmt.Sprint(a.Key), fmt.Sprint(b.Key)) })
	return out
}

var (
	statsZero = ServiceEntry{}.Stats
	ratesZero = ServiceEntry{}.Rates
)

// randomConfig is a random table the kernel accepts and the test model can
// restore: services of every kind with persistence, netmasks, engines,
// one-packet scheduling and scheduler flags; destinations of every method
// and tunnel type, some of another family than their service (tunnels).
func randomConfig(rng *rand.Rand) *State {
	s := newModelState()
	scheds := []string{"rr", "wrr", "lc", "wlc", "sh", "mh", "dh", "sed", "nq", "fo", "ovf", "lblc", "lblcr"}
	v4 := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), 0, byte(1 + rng.IntN(3))})
	}
	v6 := func() netip.Addr {
		var a [16]byte
		a[0], a[1], a[2], a[15] = 0x20, 0x01, byte(rng.IntN(256)), byte(1+rng.IntN(3))
		return netip.AddrFrom16(a)
	}
	seen := map[service.Key]bool{}
	for range rng.IntN(8) {
		var k service.Key
		fam := service.IPv4
		if rng.IntN(3) == 0 {
			fam = service.IPv6
		}
		c := service.Config{Sched: scheds[rng.IntN(len(scheds))]}
		if rng.IntN(2) == 0 {
			c.Flags |= service.FlagPersistent
			c.Timeout = uint32(1 + rng.IntN(2678400))
			if rng.IntN(3) == 0 {
				c.PE = "sip"
			}
		}
		switch rng.IntN(4) {
		case 0:
			k = service.Key{Family: fam, FWMark: uint32(1 + rng.IntN(1e6))}
		default:
			a := v4()
			if fam == service.IPv6 {
				a = v6()
			}
			k = service.Key{Family: fam, Proto: []uint8{6, 17, 132}[rng.IntN(3)], Addr: a, Port: uint16(1 + rng.IntN(65535))}
			if c.Persistent() && rng.IntN(4) == 0 {
				k.Port = 0
			}
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		if (k.FWMark != 0 || k.Proto == service.ProtoUDP) && rng.IntN(3) == 0 {
			c.Flags |= service.FlagOnePacket
		}
		switch {
		case c.Sched == "sh" || c.Sched == "mh":
			c.Flags |= service.Flags(rng.IntN(4)) * service.FlagSched1 // none, fallback, port or both
		case rng.IntN(4) == 0:
			c.Flags |= service.Flags(1+rng.IntN(7)) * service.FlagSched1
		}
		c.Netmask = 0xffffffff
		if fam == service.IPv6 {
			c.Netmask = 128
		}
		if c.Persistent() && rng.IntN(2) == 0 {
			if fam == service.IPv6 {
				c.Netmask = uint32(1 + rng.IntN(128))
			} else {
				c.Netmask = ^uint32(0) << rng.IntN(33)
			}
		}
		e := ServiceEntry{Key: k, Config: c}
		dseen := map[netip.AddrPort]bool{}
		for range rng.IntN(6) {
			d := DestEntry{Config: service.DestConfig{
				Fwd:        []service.FwdMethod{service.Masq, service.Route, service.Tunnel}[rng.IntN(3)],
				Weight:     int32(rng.IntN(65536)),
				UThreshold: uint32(rng.IntN(3)), // not saved
			}}
			d.Addr = v4()
			if fam == service.IPv6 {
				d.Addr = v6()
			}
			if d.Config.Fwd == service.Tunnel {
				if rng.IntN(3) == 0 { // another family: tunnels only
					if fam == service.IPv6 {
						d.Addr = v4()
					} else {
						d.Addr = v6()
					}
				}
				switch d.Config.TunType = service.TunType(rng.IntN(3)); d.Config.TunType {
				case service.TunGUE:
					d.Config.TunPort = uint16(1 + rng.IntN(65535))
					d.Config.TunFlags = service.TunFlags(rng.IntN(3))
				case service.TunGRE:
					d.Config.TunFlags = service.TunFlags(rng.IntN(2))
				}
			}
			d.Port = uint16(rng.IntN(65536))
			if k.FWMark == 0 && d.Config.Fwd != service.Masq {
				d.Port = k.Port // ipvsadm forces it for -g and -i
			}
			if dseen[netip.AddrPortFrom(d.Addr, d.Port)] {
				continue
			}
			dseen[netip.AddrPortFrom(d.Addr, d.Port)] = true
			e.Dests = append(e.Dests, d)
		}
		s.Services = append(s.Services, e)
	}
	return s
}
