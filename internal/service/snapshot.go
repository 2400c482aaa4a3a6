package service

import (
	"net/netip"
)

// ftpPort is the FTP control port: IPVS sends FTP data connections (from
// port 20, or to unprivileged ports) to the port-21 service of the same VIP.
const ftpPort = 21

type fwKey struct {
	family Family
	mark   uint32
}

// Snapshot is an immutable view of all virtual services. The data path holds
// one through an atomic pointer and never sees a half-applied change. The
// zero value is an empty snapshot.
type Snapshot struct {
	byAddr   map[Key]*Service
	byMark   map[fwKey]*Service
	list     []*Service // in the order given to NewSnapshot
	hasFTP   bool       // some TCP service on port 21 exists
	hasPort0 bool       // some service on port 0 exists
}

// NewSnapshot builds a snapshot over svcs. It panics on duplicate keys: the
// control plane never builds one (an invariant, not input validation).
func NewSnapshot(svcs []*Service) *Snapshot {
	s := &Snapshot{
		byAddr: make(map[Key]*Service, len(svcs)),
		byMark: make(map[fwKey]*Service),
		list:   svcs,
	}
	for _, v := range svcs {
		if v.Key.IsFWMark() {
			k := fwKey{v.Key.Family, v.Key.FWMark}
			if s.byMark[k] != nil {
				panic("service: duplicate fwmark service " + v.Key.String())
			}
			s.byMark[k] = v
			continue
		}
		if s.byAddr[v.Key] != nil {
			panic("service: duplicate service " + v.Key.String())
		}
		s.byAddr[v.Key] = v
		if v.Key.Proto == ProtoTCP && v.Key.Port == ftpPort {
			s.hasFTP = true
		}
		if v.Key.Port == 0 {
			s.hasPort0 = true
		}
	}
	return s
}

// Services returns all services in the order the snapshot was built with.
// The caller must not modify the slice.
func (s *Snapshot) Services() []*Service { return s.list }

// Len returns the number of services.
func (s *Snapshot) Len() int { return len(s.list) }

// Get returns the service with exactly key k, or nil.
func (s *Snapshot) Get(k Key) *Service {
	if k.IsFWMark() {
		return s.byMark[fwKey{k.Family, k.FWMark}]
	}
	return s.byAddr[k]
}

// Lookup finds the service for a new packet as the kernel's
// ip_vs_service_find does: by firewall mark when mark != 0, else by
// (protocol, VIP, port), else the FTP control service for FTP data ports,
// else the VIP's port-0 service.
func (s *Snapshot) Lookup(proto uint8, vaddr netip.Addr, vport uint16, mark uint32) *Service {
	fam := FamilyOf(vaddr)
	if mark != 0 {
		if v := s.byMark[fwKey{fam, mark}]; v != nil {
			return v
		}
	}
	k := Key{Family: fam, Proto: proto, Addr: vaddr, Port: vport}
	if v := s.byAddr[k]; v != nil {
		return v
	}
	// Check for an FTP data connection: port 20 (active FTP from the
	// server side) or an unprivileged port (passive FTP).
	if s.hasFTP && proto == ProtoTCP && (vport == 20 || vport >= 1024) {
		k.Port = ftpPort
		if v := s.byAddr[k]; v != nil {
			return v
		}
		k.Port = vport
	}
	if s.hasPort0 {
		k.Port = 0
		if v := s.byAddr[k]; v != nil {
			return v
		}
	}
	return nil
}
