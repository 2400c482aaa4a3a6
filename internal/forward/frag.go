package forward

import (
	"golvs/internal/header"
)

// FragmentIPv4 splits the IPv4 packet of the frame src into fragments of
// at most mtu bytes (IP header included), as the kernel's ip_fragment does
// for a packet CheckMTU answered MTUFragment for (IPVS sets ignore_df so
// that the IP layer fragments instead of answering). It reads the frame
// itself, not a Parsed, so it runs last, after the rewrite and SetMACs:
// every fragment gets a copy of src's Ethernet header (tag included).
//
// Fragment i is written into dst[i].B from dst[i].Off on (the caller's
// buffers, headroom as it likes), and dst[i].Len is set. Each fragment
// carries the header's ID, DF and protocol; the data is cut at multiples
// of 8 bytes (RFC 791 §3.2: "the data must be broken on 8 octet
// boundaries"); MF is set on all but the last, which keeps the original MF
// (a fragment may be fragmented again); offsets add to the original's.
// Options are copied whole into the first fragment; in the others, those
// without the copied flag are overwritten with NOPs, keeping the header
// length, as ip_options_fragment does (RFC 791: "the copied flag ...
// copied into all fragments on fragmentation").
//
// It returns the number of fragments, or 0 with Done if the packet fits
// (send src as it is). Malformed: src is not an IPv4 frame, or mtu leaves
// less than 8 bytes of data per fragment. NoRoom: dst has too few buffers
// or one is too small; nothing is written then. src is not modified.
func FragmentIPv4(src *Buf, mtu int, dst []Buf) (int, Result) {
	if !src.valid() || src.Len < header.EthernetMinimumSize {
		return 0, Malformed
	}
	f := src.B[src.Off : src.Off+src.Len]
	eth := header.Ethernet(f)
	if !eth.IsValid() || eth.EtherType() != header.EtherTypeIPv4 {
		return 0, Malformed
	}
	l3 := eth.PayloadOffset()
	ip := header.IPv4(f[l3:])
	if !ip.IsValid(len(ip)) {
		return 0, Malformed
	}
	hlen, tlen := ip.HeaderLength(), int(ip.TotalLength())
	if tlen <= mtu {
		return 0, Done
	}
	per := (mtu - hlen) &^ 7 // data per fragment but the last
	if per < 8 {
		return 0, Malformed
	}
	data := tlen - hlen
	n := (data + per - 1) / per
	if n > len(dst) {
		return 0, NoRoom
	}
	for i := range n {
		d := &dst[i]
		need := l3 + hlen + min(per, data-i*per)
		if d.Off < 0 || d.Off > len(d.B) || need > len(d.B)-d.Off {
			return 0, NoRoom
		}
	}

	off0, mf0 := ip.FragmentOffset(), ip.MF()
	df := ip.DF()
	for i := range n {
		d := &dst[i]
		dlen := min(per, data-i*per)
		out := d.B[d.Off : d.Off+l3+hlen+dlen]
		copy(out, f[:l3+hlen])
		copy(out[l3+hlen:], f[l3+hlen+i*per:l3+hlen+i*per+dlen])
		h := header.IPv4(out[l3:])
		if i > 0 {
			fragmentOptions(h.Options())
		}
		h.SetTotalLength(uint16(hlen + dlen))
		h.SetFragment(df, i < n-1 || mf0, off0+uint16(i*per))
		h.SetChecksum(h.CalculateChecksum())
		d.Len = len(out)
	}
	return n, Done
}

// IPv4 option types (RFC 791 §3.1): the copied flag is the type's top bit.
const (
	ipoptEnd    = 0
	ipoptNOP    = 1
	ipoptCopied = 0x80
)

// fragmentOptions overwrites with NOPs the options that are not to be
// copied into fragments after the first (the kernel's
// ip_options_fragment, including its stop at a malformed length).
func fragmentOptions(o []byte) {
	for len(o) > 0 {
		switch o[0] {
		case ipoptEnd:
			return
		case ipoptNOP:
			o = o[1:]
			continue
		}
		if len(o) < 2 {
			return
		}
		l := int(o[1])
		if l < 2 || l > len(o) {
			return
		}
		if o[0]&ipoptCopied == 0 {
			for i := range l {
				o[i] = ipoptNOP
			}
		}
		o = o[l:]
	}
}
