package afpacket

import "encoding/binary"

const (
	// vnetHdrLen is sizeof(struct virtio_net_hdr), which PACKET_VNET_HDR
	// puts right in front of each received frame and expects in front of
	// each sent one.
	vnetHdrLen = 10
	// vlanHdrLen is an 802.1Q tag.
	vlanHdrLen = 4
	// ethHdrLen is an untagged Ethernet header.
	ethHdrLen = 14
)

// struct virtio_net_hdr (linux/virtio_net.h), in host byte order (a
// packet socket's header is "legacy little endian", which the kernel
// takes to mean the host's order: virtio_legacy_is_little_endian).
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSONone       = 0 // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4      = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOUDP        = 3 // VIRTIO_NET_HDR_GSO_UDP (UFO, gone from Linux)
	vnetGSOTCPv6      = 4 // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOUDPL4      = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
	vnetGSOECN        = 0x80
)

// vnetHdr is a decoded struct virtio_net_hdr.
type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func readVnet(b []byte) vnetHdr {
	ne := binary.NativeEndian
	return vnetHdr{
		flags: b[0], gsoType: b[1],
		hdrLen: ne.Uint16(b[2:]), gsoSize: ne.Uint16(b[4:]),
		csumStart: ne.Uint16(b[6:]), csumOffset: ne.Uint16(b[8:]),
	}
}

// put writes h into b.
func (h *vnetHdr) put(b []byte) {
	ne := binary.NativeEndian
	b[0], b[1] = h.flags, h.gsoType
	ne.PutUint16(b[2:], h.hdrLen)
	ne.PutUint16(b[4:], h.gsoSize)
	ne.PutUint16(b[6:], h.csumStart)
	ne.PutUint16(b[8:], h.csumOffset)
}
