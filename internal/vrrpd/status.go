package vrrpd

import (
	"errors"
	"net/netip"
	"time"

	"golvs/internal/vrrp"
)

// Status is one instance's state and counters (Daemon.Status), for the
// API and metrics.
type Status struct {
	Instance  string
	Group     string // its vrrp_sync_group, "" for none
	Interface string
	Family    string // "IPv4" or "IPv6"
	VRID      uint8
	Version   uint8
	Unicast   bool
	// Address is the instance's own address: the source of its adverts.
	Address        netip.Addr
	AdvertInterval time.Duration
	VIPs           []netip.Prefix // virtual_ipaddress and _excluded

	State vrrp.State
	// Priority is the configured priority; EffectivePriority what the
	// adverts carry after tracking weights.
	Priority          uint8
	EffectivePriority uint8
	// Master is the master as this instance sees it: its own address
	// when MASTER, the source of the last advert it accepted when
	// BACKUP (invalid until one came), invalid otherwise.
	Master netip.Addr
	// LastAdvertPriority is the priority of the last advert accepted.
	LastAdvertPriority uint8
	// Faults says why the instance is FAULT: "interface d0 down",
	// "script chk_nginx failed".
	Faults []string

	Transitions    uint64    // state changes since the instance started
	LastTransition time.Time // zero before the first
	AdvertsSent    uint64
	// AdvertsReceived counts the adverts accepted (checked and given to
	// the state machine).
	AdvertsReceived uint64
	// Announcements counts the gratuitous ARPs and neighbour adverts
	// sent.
	Announcements uint64
	// Rejects counts the adverts discarded, by reason (RejectReasons).
	Rejects map[string]uint64
	// Errors counts the failures of the daemon's own operations by kind:
	// read_error, send_error, vip_error, announce_error.
	Errors map[string]uint64
}

// rejectReasons names the reasons an advert is discarded, one per error
// of package vrrp (keepalived's per-instance statistics and RFC 6527's
// counters).
var rejectReasons = []struct {
	err    error
	reason string
}{
	{vrrp.ErrTooShort, "too_short"},
	{vrrp.ErrLength, "length"},
	{vrrp.ErrVersion, "version"},
	{vrrp.ErrType, "type"},
	{vrrp.ErrChecksum, "checksum"},
	{vrrp.ErrAuthType, "auth_type"},
	{vrrp.ErrFamily, "family"},
	{vrrp.ErrTTL, "ttl"},
	{vrrp.ErrCastMismatch, "cast_mismatch"},
	{vrrp.ErrInactive, "inactive"},
	{vrrp.ErrVRID, "vrid"},
	{vrrp.ErrVersionMismatch, "version_mismatch"},
	{vrrp.ErrAuthTypeMismatch, "auth_type_mismatch"},
	{vrrp.ErrAuthFailure, "auth_failure"},
	{vrrp.ErrIntervalMismatch, "interval_mismatch"},
	{vrrp.ErrAddrCount, "addr_count"},
	{vrrp.ErrAddrList, "addr_list"},
	{vrrp.ErrNotPeer, "not_peer"},
}

// RejectReasons lists the keys of Status.Rejects, "other" last.
func RejectReasons() []string {
	out := make([]string, 0, len(rejectReasons)+1)
	for _, r := range rejectReasons {
		out = append(out, r.reason)
	}
	return append(out, "other")
}

// rejectReason names err's reason.
func rejectReason(err error) string {
	for _, r := range rejectReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}
