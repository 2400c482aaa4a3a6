package hostnet

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"

	"golvs/internal/addrset"
)

// SetName names an nftables set: "FAMILY TABLE SET" as nft writes it, or
// with slashes ("inet/filter/deny").
type SetName struct {
	Family nftables.TableFamily
	Table  string
	Set    string
}

// ParseSetName reads "FAMILY TABLE SET" or "FAMILY/TABLE/SET" (family ip,
// ip6, inet, arp, bridge or netdev).
func ParseSetName(s string) (SetName, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ' ' })
	if len(f) != 3 {
		return SetName{}, fmt.Errorf("set %q: want FAMILY/TABLE/SET, for example inet/filter/deny", s)
	}
	fams := map[string]nftables.TableFamily{
		"ip": nftables.TableFamilyIPv4, "ip6": nftables.TableFamilyIPv6, "inet": nftables.TableFamilyINet,
		"arp": nftables.TableFamilyARP, "bridge": nftables.TableFamilyBridge, "netdev": nftables.TableFamilyNetdev,
	}
	fam, ok := fams[f[0]]
	if !ok {
		return SetName{}, fmt.Errorf("set %q: unknown family %q", s, f[0])
	}
	return SetName{Family: fam, Table: f[1], Set: f[2]}, nil
}

func (n SetName) String() string { return familyName(n.Family) + " " + n.Table + " " + n.Set }

// AddrSetRanges reads an nftables set of IPv4 or IPv6 addresses (plain,
// or with `flags interval`: prefixes and ranges) as address ranges.
func (h *Host) AddrSetRanges(n SetName) ([]addrset.Range, error) {
	c, err := h.nftConn()
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Family: n.Family, Name: n.Table}
	s, err := c.GetSetByName(t, n.Set)
	if err != nil {
		return nil, fmt.Errorf("hostnet: set %v: %w", n, err)
	}
	var size int
	switch s.KeyType.Name {
	case nftables.TypeIPAddr.Name:
		size = 4
	case nftables.TypeIP6Addr.Name:
		size = 16
	default:
		return nil, fmt.Errorf("hostnet: set %v holds %s, not ipv4_addr or ipv6_addr", n, s.KeyType.Name)
	}
	el, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("hostnet: elements of set %v: %w", n, err)
	}
	return setRanges(el, size, s.Interval)
}

// setRanges turns a set's elements into ranges. In an interval set each
// range [a, b] is a start element a and an end element b+1 flagged
// IntervalEnd (the end element may be missing for a range to the top of
// the address space).
func setRanges(el []nftables.SetElement, size int, interval bool) ([]addrset.Range, error) {
	slices.SortStableFunc(el, func(a, b nftables.SetElement) int { return bytes.Compare(a.Key, b.Key) })
	addr := func(b []byte) (netip.Addr, error) {
		if len(b) != size {
			return netip.Addr{}, fmt.Errorf("hostnet: set element of %d bytes, want %d", len(b), size)
		}
		a, _ := netip.AddrFromSlice(b)
		return a, nil
	}
	var out []addrset.Range
	for i := 0; i < len(el); i++ {
		e := el[i]
		if e.IntervalEnd {
			continue
		}
		from, err := addr(e.Key)
		if err != nil {
			return nil, err
		}
		if !interval {
			out = append(out, addrset.Range{From: from, To: from})
			continue
		}
		if len(e.KeyEnd) == size {
			to, _ := netip.AddrFromSlice(e.KeyEnd)
			out = append(out, addrset.Range{From: from, To: to})
			continue
		}
		// The end is the next element flagged IntervalEnd, exclusive.
		to := netip.IPv4Unspecified()
		if size == 16 {
			to = netip.IPv6Unspecified()
		}
		found := false
		for j := i + 1; j < len(el); j++ {
			if el[j].IntervalEnd {
				end, err := addr(el[j].Key)
				if err != nil {
					return nil, err
				}
				to, found = end.Prev(), true
				break
			}
		}
		if !found {
			// Open to the top: the last address of the family.
			to = addrset.FromPrefix(netip.PrefixFrom(from, 0)).To
		}
		out = append(out, addrset.Range{From: from, To: to})
	}
	return out, nil
}
