package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"golvs/internal/checksum"
)

// The VRRP advertisement (RFC 3768 §5.1, RFC 5798 §5.1; keepalived's
// vrrphdr_t in include/vrrp.h):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	v2: |   Auth Type   |   Adver Int   |          Checksum             |
//	v3: |(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 IPvX Address(es): Count × 4 or 16 bytes       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| v2 over IPv4 only: Authentication Data (8 bytes)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	// HeaderLen is the fixed part of an advertisement, up to the addresses.
	HeaderLen = 8
	// AuthDataLen is the VRRPv2 authentication data after the addresses
	// (RFC 3768 §5.3.10; keepalived VRRP_AUTH_LEN). keepalived's VRRPv2
	// over IPv6 (an explicit "version 2" on an IPv6 instance outside strict
	// mode, vrrp_complete_instance) has none, and its checksum covers the
	// IPv6 pseudo-header (the kernel's IPV6_CHECKSUM computes it).
	AuthDataLen = 8
	// MaxAddrs is the most addresses an advert can carry: Count IP Addrs is
	// one byte (keepalived VRRP_MAX_ADDR).
	MaxAddrs = 255
	// Protocol is the IP protocol number of VRRP (RFC 5798 §5.1.1.4).
	Protocol = 112
	// TTL is the IPv4 TTL / IPv6 hop limit every multicast advert carries
	// and a receiver requires (RFC 5798 §5.1.1.3, §7.1).
	TTL = 255
	// TypeAdvertisement is the only VRRP packet type (RFC 5798 §5.2.2).
	TypeAdvertisement = 1

	maxIntervalV2 = 0xff  // Adver Int is 8 bits of seconds
	maxIntervalV3 = 0xfff // Max Adver Int is 12 bits of centiseconds
)

// Well-known destinations of multicast adverts (RFC 5798 §5.1.1.2,
// §5.1.2.2; keepalived vrrp_mcast_group4/6 defaults).
var (
	MulticastIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	MulticastIPv6 = netip.MustParseAddr("ff02::12")
)

// Family is an advert's address family: the family of the IP packet that
// carries it and of the addresses it lists.
type Family uint8

// The two families; the zero Family is invalid.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) addrLen() int {
	if f == IPv6 {
		return 16
	}
	return 4
}

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "invalid"
}

// FamilyOf returns the family of addr (an IPv4-mapped IPv6 address is
// IPv6, as on the wire), or 0 for the zero Addr.
func FamilyOf(addr netip.Addr) Family {
	switch {
	case addr.Is4():
		return IPv4
	case addr.Is6():
		return IPv6
	}
	return 0
}

// AuthType is the VRRPv2 Auth Type field (RFC 2338 §5.3.6; RFC 3768 keeps
// only 0). keepalived implements 1 and 2 as extensions.
type AuthType uint8

// Authentication types.
const (
	AuthNone AuthType = 0 // RFC 3768
	// AuthPass is a simple text password: the 8 authentication bytes hold
	// the password, NUL padded (keepalived auth_type PASS).
	AuthPass AuthType = 1
	// AuthAH is IPsec AH (keepalived auth_type AH): the advert travels in IP
	// protocol 51 behind an AH header with an HMAC-MD5-96 ICV over the IP
	// header (mutable fields zeroed), the AH header and the advert, SPI =
	// the sender's address, and a sequence number against replay
	// (keepalived vrrp_in_chk_ipsecah). This package only recognises the
	// Auth Type value; the caller strips the AH header before Decode. The
	// 8 authentication bytes are zero.
	AuthAH AuthType = 2
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return "invalid"
}

// Errors of Decode, one per reason so that the caller can count discarded
// adverts per reason (keepalived's per-instance statistics and RFC 6527
// counters). They are returned unwrapped: compare with == or errors.Is.
var (
	ErrTooShort = errors.New("vrrp: advert shorter than its header")
	// ErrLength: the length is not the header plus Count addresses (plus
	// the v2 authentication data), too short or too long (RFC 5798 §7.1
	// "MUST verify that the received packet contains the complete VRRP
	// packet"; keepalived also refuses trailing bytes).
	ErrLength = errors.New("vrrp: advert length does not match its address count")
	// ErrVersion: the version is neither 2 nor 3.
	ErrVersion = errors.New("vrrp: unsupported version")
	// ErrType: the type is not ADVERTISEMENT (1).
	ErrType = errors.New("vrrp: not an advertisement")
	// ErrChecksum: the checksum does not verify.
	ErrChecksum = errors.New("vrrp: bad checksum")
	// ErrAuthType: a VRRPv2 Auth Type other than 0, 1 and 2.
	ErrAuthType = errors.New("vrrp: invalid authentication type")
	// ErrFamily: the family argument is invalid, or a source or destination
	// address the checksum needs is not of that family.
	ErrFamily = errors.New("vrrp: address family mismatch")
)

// Advert is one decoded VRRP advertisement. It is a small value: the
// address list is not copied but kept as the raw bytes of the buffer it was
// decoded from (4 or 16 bytes per address), so Decode allocates nothing and
// the Advert is valid only as long as that buffer is not reused. Read the
// addresses with NumAddrs, Addr, HasAddr or AppendAddrs; set them with
// SetAddrs (which copies). The zero Advert is not a valid advert.
type Advert struct {
	Version  uint8 // 2 or 3
	VRID     uint8 // Virtual Rtr ID, 1..255
	Priority uint8 // 0 = the master resigns, 255 = address owner
	// Interval is the advert interval in the unit of the version: whole
	// seconds (8 bits) for VRRPv2's Adver Int, centiseconds (12 bits) for
	// VRRPv3's Max Adver Int. See Advert.Duration.
	Interval uint16
	// AuthType and AuthData are VRRPv2's (zero for VRRPv3). AuthData holds
	// the 8 bytes after the addresses as they are on the wire (VRRPv2 over
	// IPv4 only; zero over IPv6, where keepalived sends none).
	AuthType AuthType
	AuthData [AuthDataLen]byte
	// Family is the family of the packet and of its addresses.
	Family Family

	addrs []byte // NumAddrs × Family.addrLen() bytes, usually aliasing a packet
}

// Duration returns the advert interval as a duration.
func (a *Advert) Duration() time.Duration {
	if a.Version == 3 {
		return time.Duration(a.Interval) * 10 * time.Millisecond
	}
	return time.Duration(a.Interval) * time.Second
}

// NumAddrs returns the number of addresses the advert lists.
func (a *Advert) NumAddrs() int {
	return len(a.addrs) / a.Family.addrLen()
}

// Addr returns the i-th listed address.
func (a *Advert) Addr(i int) netip.Addr {
	if a.Family == IPv6 {
		return netip.AddrFrom16([16]byte(a.addrs[16*i : 16*i+16]))
	}
	return netip.AddrFrom4([4]byte(a.addrs[4*i : 4*i+4]))
}

// HasAddr reports whether addr is in the advert's address list (keepalived
// vrrp_in_chk_vips), without allocating.
func (a *Advert) HasAddr(addr netip.Addr) bool {
	if FamilyOf(addr) != a.Family {
		return false
	}
	n := a.Family.addrLen()
	if a.Family == IPv6 {
		want := addr.As16()
		for i := 0; i+n <= len(a.addrs); i += n {
			if [16]byte(a.addrs[i:i+n]) == want {
				return true
			}
		}
		return false
	}
	want := addr.As4()
	for i := 0; i+n <= len(a.addrs); i += n {
		if [4]byte(a.addrs[i:i+n]) == want {
			return true
		}
	}
	return false
}

// AppendAddrs appends the listed addresses to dst.
func (a *Advert) AppendAddrs(dst []netip.Addr) []netip.Addr {
	for i := range a.NumAddrs() {
		dst = append(dst, a.Addr(i))
	}
	return dst
}

// SetAddrs sets the address list to a copy of addrs. If a.Family is zero it
// becomes the family of addrs[0] (IPv4 if addrs is empty). It fails with
// ErrFamily if an address is of another family (keepalived: "all addresses
// in virtual_ipaddress must be of the same family") and with ErrLength for
// more than MaxAddrs addresses.
func (a *Advert) SetAddrs(addrs []netip.Addr) error {
	if len(addrs) > MaxAddrs {
		return ErrLength
	}
	fam := a.Family
	if fam == 0 {
		fam = IPv4
		if len(addrs) > 0 {
			fam = FamilyOf(addrs[0])
		}
	}
	b := make([]byte, 0, len(addrs)*fam.addrLen())
	for _, addr := range addrs {
		if FamilyOf(addr) != fam {
			return ErrFamily
		}
		b = append(b, addr.AsSlice()...)
	}
	a.Family, a.addrs = fam, b
	return nil
}

// Equal reports whether a and b are the same advert (field by field, the
// address lists by content).
func (a *Advert) Equal(b *Advert) bool {
	return a.Version == b.Version && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.Interval == b.Interval && a.AuthType == b.AuthType && a.AuthData == b.AuthData &&
		a.Family == b.Family && bytes.Equal(a.addrs, b.addrs)
}

// Len returns the advert's length on the wire.
func (a *Advert) Len() int {
	n := HeaderLen + len(a.addrs)
	if hasAuthData(a.Version, a.Family) {
		n += AuthDataLen
	}
	return n
}

// hasAuthData reports whether an advert carries the 8 authentication bytes:
// VRRPv2 over IPv4 only (keepalived vrrp_pkt_len: "Our implementation of
// IPv6 with VRRP version 2 doesn't include the 8 byte auth field").
func hasAuthData(version uint8, family Family) bool {
	return version == 2 && family == IPv4
}

// Codec holds the checksum options of one VRRP instance. The zero Codec
// follows the RFCs (what keepalived 2.2.7 does).
type Codec struct {
	// V3ChecksumAsV2 computes the VRRPv3-over-IPv4 checksum over the VRRP
	// message alone, without the IPv4 pseudo-header, on sending and on
	// receiving, for routers that read RFC 5798 §5.2.8 that way (keepalived
	// v3_checksum_as_v2, added after 2.2.7; RFC 9568 settled on leaving
	// the pseudo-header out). VRRPv3 over IPv6 always includes its
	// pseudo-header (the kernel's IPV6_CHECKSUM does it for keepalived).
	//
	// keepalived's old_unicast_checksum (the pseudo-header of VRRPv3
	// unicast adverts of keepalived < 1.3.6 holds the multicast group, not
	// the peer) needs no option: pass MulticastIPv4 as dst.
	V3ChecksumAsV2 bool
}

// Decode decodes the VRRP message b (the IP payload: for AuthAH, what
// follows the AH header) received in a packet of the given family from src
// to dst, and checks what the packet alone can tell (RFC 5798 §7.1,
// keepalived vrrp_check_packet): the length against the address count,
// version 2 or 3, type ADVERTISEMENT, the VRRPv2 Auth Type, and the
// checksum. Checks against the local configuration (VRID,
// version, interval, authentication, addresses, TTL) are
// Instance.Advert's and CheckIPHeader's.
//
// Decode does not allocate: the returned Advert's addresses alias b.
// Over IPv4, VRRPv2 and V3ChecksumAsV2 do not use src and dst.
func Decode(b []byte, family Family, src, dst netip.Addr) (Advert, error) {
	return Codec{}.Decode(b, family, src, dst)
}

// Append appends the wire form of a, sent from src to dst, to b and returns
// the extended slice. The checksum is computed; RFC 5798's reserved bits
// are zero; a.AuthData is sent over IPv4 only. When the checksum covers the
// pseudo-header (see Codec), src and dst must be of a.Family: Append panics
// if they are not, or if a.Family is invalid (programmer errors: an
// Instance never builds such an advert).
func Append(b []byte, a Advert, src, dst netip.Addr) []byte {
	return Codec{}.Append(b, a, src, dst)
}

// Decode is the package-level Decode with c's options.
func (c Codec) Decode(b []byte, family Family, src, dst netip.Addr) (Advert, error) {
	var a Advert
	if family != IPv4 && family != IPv6 {
		return a, ErrFamily
	}
	if len(b) < HeaderLen {
		return a, ErrTooShort
	}
	a.Version = b[0] >> 4
	if a.Version != 2 && a.Version != 3 {
		return a, ErrVersion
	}
	// keepalived checks the length first (so does RFC 5798 §7.1's list),
	// then the version, the type, the checksum.
	n := int(b[3])
	want := HeaderLen + n*family.addrLen()
	if hasAuthData(a.Version, family) {
		want += AuthDataLen
	}
	if len(b) != want {
		return a, ErrLength
	}
	if b[0]&0x0f != TypeAdvertisement {
		return a, ErrType
	}
	a.VRID, a.Priority, a.Family = b[1], b[2], family
	if a.Version == 2 {
		a.AuthType = AuthType(b[4])
		if a.AuthType > AuthAH {
			return a, ErrAuthType
		}
		a.Interval = uint16(b[5])
		if hasAuthData(a.Version, family) {
			a.AuthData = [AuthDataLen]byte(b[want-AuthDataLen:])
		}
	} else {
		// RFC 5798 §5.2.6 "rsvd ... MUST be ignored on reception".
		a.Interval = binary.BigEndian.Uint16(b[4:6]) & maxIntervalV3
	}
	a.addrs = b[HeaderLen : HeaderLen+n*family.addrLen()]
	sum, ok := c.initialSum(a.Version, family, src, dst, len(b))
	if !ok {
		return a, ErrFamily
	}
	// RFC 1071: the sum over the data and its checksum field is all ones.
	if checksum.Sum(b, sum) != 0xffff {
		return a, ErrChecksum
	}
	return a, nil
}

// Append is the package-level Append with c's options.
func (c Codec) Append(b []byte, a Advert, src, dst netip.Addr) []byte {
	if a.Family != IPv4 && a.Family != IPv6 {
		panic("vrrp: Append of an advert with an invalid family")
	}
	n := a.NumAddrs() // at most MaxAddrs: SetAddrs and Decode see to it
	start := len(b)
	var word uint16
	if a.Version == 2 {
		word = uint16(a.AuthType)<<8 | a.Interval&maxIntervalV2
	} else {
		word = a.Interval & maxIntervalV3
	}
	b = append(b, a.Version<<4|TypeAdvertisement, a.VRID, a.Priority, uint8(n), byte(word>>8), byte(word), 0, 0)
	b = append(b, a.addrs...)
	if hasAuthData(a.Version, a.Family) {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	sum, ok := c.initialSum(a.Version, a.Family, src, dst, len(msg))
	if !ok {
		panic("vrrp: Append: source or destination not of the advert's family")
	}
	binary.BigEndian.PutUint16(msg[6:8], ^checksum.Sum(msg, sum))
	return b
}

// initialSum returns the sum the checksum starts from: over IPv4, nothing
// for VRRPv2 (RFC 3768 §5.3.8: "over the VRRP message" only) and for
// V3ChecksumAsV2, the pseudo-header (RFC 5798 §5.2.8, keepalived's
// ipv4_phdr_t) for VRRPv3; over IPv6 always the pseudo-header (RFC 8200
// §8.1, next header 112), which the kernel's IPV6_CHECKSUM adds for
// keepalived whatever the version.
func (c Codec) initialSum(version uint8, family Family, src, dst netip.Addr, length int) (uint16, bool) {
	if family == IPv4 && (version == 2 || c.V3ChecksumAsV2) {
		return 0, true
	}
	if FamilyOf(src) != family || FamilyOf(dst) != family {
		return 0, false
	}
	if family == IPv4 {
		return checksum.PseudoHeaderIPv4(src.As4(), dst.As4(), Protocol, uint16(length)), true
	}
	return checksum.PseudoHeaderIPv6(src.As16(), dst.As16(), Protocol, uint32(length)), true
}

// Errors of CheckIPHeader.
var (
	// ErrTTL: a multicast advert's TTL / hop limit is not 255 (RFC 5798
	// §7.1; keepalived checks it only for multicast instances).
	ErrTTL = errors.New("vrrp: TTL/hop limit is not 255")
	// ErrCastMismatch: a multicast instance received a unicast advert or a
	// unicast instance a multicast one (keepalived: "Expected multicast
	// packet but received unicast packet").
	ErrCastMismatch = errors.New("vrrp: unicast/multicast mismatch")
)

// CheckIPHeader checks what the IP header of a received advert must hold
// (RFC 5798 §7.1, keepalived vrrp_check_packet): for a multicast instance
// (unicast false) the destination is multicast and the TTL / hop limit 255;
// for a unicast instance the destination is not multicast and the TTL is
// not checked (keepalived's optional min_ttl/max_ttl per peer are the
// caller's).
func CheckIPHeader(ttl uint8, dst netip.Addr, unicast bool) error {
	if dst.IsMulticast() == unicast {
		return ErrCastMismatch
	}
	if !unicast && ttl != TTL {
		return ErrTTL
	}
	return nil
}
