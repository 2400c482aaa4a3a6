package keepalived

import (
	"net/netip"
	"time"

	"golvs/internal/check"
	"golvs/internal/service"
)

// Config is a parsed and validated keepalived.conf. Slices keep the order
// of the configuration. Every default of keepalived has been applied, so
// the values can be used as they are. A Config is a plain value: it is not
// modified after Parse returns and may be read concurrently.
type Config struct {
	Global GlobalDefs

	// Static addresses, routes and rules are parsed but GoLVS does not
	// configure them (a warning says so).
	StaticIPAddresses []IPAddress
	StaticRoutes      []Route
	StaticRules       []Rule

	TrackFiles []TrackFile
	SSL        *SSL

	VRRPScripts    []VRRPScript
	VRRPSyncGroups []SyncGroup
	VRRPInstances  []VRRPInstance

	VirtualServerGroups []VirtualServerGroup
	VirtualServers      []VirtualServer

	// BGP is the GoLVS extension block bgp { } (nil when absent).
	BGP *BGP

	// Files are the files read, main file first, in reading order.
	Files []string
}

// Tristate is a keepalived <BOOL> that may be left unset.
type Tristate int8

// Tristate values.
const (
	Unset Tristate = iota
	False
	True
)

func (t Tristate) String() string {
	switch t {
	case False:
		return "false"
	case True:
		return "true"
	}
	return "unset"
}

// Script is a notify script or a tracking script: its command and the
// user and group to run it as ("" = the global script_user, or lvsd's).
type Script struct {
	// Cmd is the command as configured (a single configuration word:
	// quote it to give arguments).
	Cmd string
	// Args is Cmd split as keepalived splits it (blanks separate words,
	// single and double quotes group, backslash escapes).
	Args  []string
	User  string
	Group string
}

// FlushOnStop is the lvs_flush_on_stop setting.
type FlushOnStop uint8

// lvs_flush_on_stop values.
const (
	FlushOnStopNone FlushOnStop = iota // delete each real and virtual server (default)
	FlushOnStopAll                     // lvs_flush_on_stop: flush the whole table
	FlushOnStopVS                      // lvs_flush_on_stop VS: delete each virtual server only
)

// GlobalDefs is the global_defs block (and the top-level process
// settings).
type GlobalDefs struct {
	RouterID string

	// Notification settings: kept, unused by GoLVS.
	NotificationEmail     []string
	NotificationEmailFrom string
	SMTPServer            string // address or name; "" = none
	SMTPServerPort        uint16 // default 25
	SMTPHeloName          string
	SMTPConnectTimeout    time.Duration // default 30 s
	SMTPAlert             Tristate
	SMTPAlertVRRP         Tristate
	SMTPAlertChecker      Tristate
	CheckerLogAllFailures bool
	NoEmailFaults         bool

	ScriptUser           string
	ScriptGroup          string
	EnableScriptSecurity bool
	DefaultInterface     string // default "eth0"
	DynamicInterfaces    bool

	// LVS.
	LVSSyncDaemon  *SyncDaemon // nil: no sync daemon
	LVSTimeouts    LVSTimeouts
	LVSFlush       bool
	LVSFlushOnStop FlushOnStop

	// VRRP defaults for every instance.
	VRRPMcastGroup4           netip.Addr // default 224.0.0.18
	VRRPMcastGroup6           netip.Addr // default ff02::12
	VRRPGARP                  GARP
	VRRPGARPInterval          time.Duration // delay between GARPs on an interface
	VRRPGNAInterval           time.Duration // delay between unsolicited NAs
	VRRPDownTimerAdverts      int           // default 3
	VRRPLowerPrioNoAdvert     bool
	VRRPHigherPrioSendAdvert  bool
	VRRPVersion               int // 2 (default) or 3
	VRRPStrict                bool
	VRRPCheckUnicastSrc       bool
	VRRPSkipCheckAdvAddr      bool
	VRRPNotifyPriorityChanges bool
	VRRPStartupDelay          time.Duration

	NotifyFIFO     FIFO
	VRRPNotifyFIFO FIFO
	LVSNotifyFIFO  FIFO
}

// FIFO is a notify FIFO and the script that reads it (unused by GoLVS).
type FIFO struct {
	Name   string
	Script *Script
	User   string
	Group  string
}

// GARP holds the gratuitous ARP / unsolicited NA timing of an instance.
type GARP struct {
	MasterDelay         time.Duration // second burst after becoming master; default 5 s, 0 = none
	MasterRepeat        int           // messages per burst; default 5
	LowerPrioDelay      time.Duration // default MasterDelay
	LowerPrioRepeat     int           // default MasterRepeat
	MasterRefresh       time.Duration // periodic refresh while master; 0 = none (default)
	MasterRefreshRepeat int           // default 1
}

// SyncDaemon is global_defs lvs_sync_daemon.
type SyncDaemon struct {
	Pos       Pos
	Interface string
	// Instance is the VRRP instance whose state selects the master or
	// backup daemon; "" runs both all the time.
	Instance string
	// SyncID: the id given, else the instance's virtual_router_id, else 0.
	SyncID uint8
	MaxLen int        // 0 = the kernel's default
	Port   uint16     // default 8848
	TTL    int        // 0 = the kernel's default (1)
	Group  netip.Addr // default 224.0.0.81
}

// LVSTimeouts is lvs_timeouts (ipvsadm --set); zero leaves a timeout
// unchanged.
type LVSTimeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// IPAddress is one virtual_ipaddress (or static_ipaddress) entry.
type IPAddress struct {
	Pos Pos
	// Prefix is the address with its prefix length (/32 or /128 when none
	// is given).
	Prefix netip.Prefix
	Brd    string // broadcast: "", an address, "+" or "-"
	Dev    string // "" = the instance's interface
	Scope  string
	Label  string
	Peer   netip.Prefix
	// Flags are the other words kept as written (home, -nodad, mngtmpaddr,
	// noprefixroute, autojoin, use_vmac, preferred_lft N, track_group G).
	Flags   []string
	NoTrack bool
}

// Route is a virtual_routes or static_routes entry, kept as written with
// the fields GoLVS can name.
type Route struct {
	Pos   Pos
	Words []string
	Dst   netip.Prefix // zero for forms GoLVS does not read (e.g. blackhole only)
	Via   netip.Addr
	Dev   string
	Table string
}

// Rule is a virtual_rules or static_rules entry, kept as written.
type Rule struct {
	Pos   Pos
	Words []string
}

// TrackFile is a track_file block.
type TrackFile struct {
	Pos       Pos
	Name      string
	Path      string
	Weight    int // default 1
	Reverse   bool
	InitFile  bool
	InitValue int
	Overwrite bool
}

// SSL is the SSL block used by SSL_GET.
type SSL struct {
	Password, CA, Certificate, Key string
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Pos      Pos
	Name     string
	Script   Script
	Interval time.Duration // default 1 s
	// Timeout after which a run counts as failed; when not configured it
	// is the interval (keepalived's timeout 0).
	Timeout  time.Duration
	Weight   int // -253..253, default 0 (failure = FAULT)
	Reverse  bool
	Rise     int // default 1
	Fall     int // default 1
	InitFail bool
}

// TrackInterface is a track_interface entry.
type TrackInterface struct {
	Name    string
	Weight  int // 0: down means FAULT
	Reverse bool
}

// TrackScript is a track_script entry; Weight is the script's own weight
// unless the entry gives one.
type TrackScript struct {
	Name    string
	Weight  int
	Reverse bool
}

// TrackFileRef is a track_file entry of an instance or sync group; Weight
// is the track_file's own weight unless the entry gives one.
type TrackFileRef struct {
	Name    string
	Weight  int
	Reverse bool
}

// Notify are the notify scripts of an instance or sync group (nil = none).
type Notify struct {
	Master, Backup, Fault, Stop, Deleted, Any, MasterRxLowerPri *Script
	// DeletedState: notify_deleted was given (with or without a script):
	// DELETED instead of FAULT is reported for deleted instances.
	DeletedState bool
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Pos                     Pos
	Name                    string
	Members                 []string
	TrackInterfaces         []TrackInterface
	TrackScripts            []TrackScript
	TrackFiles              []TrackFileRef
	Notify                  Notify
	SMTPAlert               bool
	NotifyPriorityChanges   bool
	SyncGroupTrackingWeight bool
}

// VRRP states an instance may be configured to start in.
const (
	StateBackup = "BACKUP"
	StateMaster = "MASTER"
)

// Auth is the (RFC 3768-removed) VRRPv2 authentication block.
type Auth struct {
	Type string // "PASS" or "AH"
	Pass string // at most 8 bytes (longer ones are truncated, as keepalived)
}

// UnicastPeer is a unicast_peer entry.
type UnicastPeer struct {
	Addr   netip.Addr
	MinTTL int // -1 = not checked
	MaxTTL int // -1 = not checked
}

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	Pos       Pos
	Name      string
	State     string // StateMaster or StateBackup (default)
	Interface string
	VRID      uint8
	Priority  uint8 // default 100; 255 = address owner
	// AdvertInt: default 1 s; whole seconds for VRRPv2 (rounded with a
	// warning), centiseconds for v3.
	AdvertInt time.Duration
	// Version is the VRRP version used: the instance's, else
	// global_defs vrrp_version; IPv6 instances always use 3.
	Version int
	// Family of the addresses in adverts (of the VIPs; IPv4 when none).
	Family service.Family

	VIPs          []IPAddress
	ExcludedVIPs  []IPAddress
	VirtualRoutes []Route
	VirtualRules  []Rule

	Nopreempt    bool
	PreemptDelay time.Duration
	// Accept: VRRPv3 accept mode (keepalived default on, unless strict
	// mode, where it is on only for priority 255).
	Accept bool

	McastSrcIP         netip.Addr
	UnicastSrcIP       netip.Addr
	McastDstIP         netip.Addr // zero: the global group of the family
	UnicastPeers       []UnicastPeer
	UnicastTTL         int // default 255
	UnicastFaultNoPeer bool
	CheckUnicastSrc    bool

	TrackInterfaces  []TrackInterface
	TrackScripts     []TrackScript
	TrackFiles       []TrackFileRef
	DontTrackPrimary bool
	TrackSrcIP       bool

	Auth   *Auth
	Notify Notify
	GARP   GARP

	DownTimerAdverts     int
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	SkipCheckAdvAddr     bool
	Strict               bool

	SMTPAlert             bool
	NotifyPriorityChanges bool
	PromoteSecondaries    bool
	// LVSSyncDaemonInterface is the deprecated per-instance form of
	// lvs_sync_daemon ("" = none).
	LVSSyncDaemonInterface string
	// SyncGroup is the vrrp_sync_group the instance belongs to ("" = none).
	SyncGroup string
}

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos     Pos
	Name    string
	Entries []VSGEntry
}

// VSGEntry is one line of a virtual_server_group: an address range with
// an optional port, or a firewall mark.
type VSGEntry struct {
	Pos Pos
	// Start and End are the first and last addresses (equal for one
	// address); zero for a fwmark entry.
	Start, End netip.Addr
	Port       uint16
	FWMark     uint32
	IsFWMark   bool
	// Family of a fwmark entry: IPv4, IPv6, or 0 when not given (the
	// virtual server's family is used).
	Family service.Family
}

// Method is a forwarding method with its tunnel parameters.
type Method struct {
	Fwd      service.FwdMethod // service.Masq (NAT), service.Route (DR) or service.Tunnel
	TunType  service.TunType
	TunPort  uint16
	TunFlags service.TunFlags
}

// VirtualServer is a virtual_server block after keepalived's validation:
// defaults applied, duplicate real servers removed, ports corrected.
type VirtualServer struct {
	Pos Pos
	// Exactly one of (Addr, Port), FWMark and Group identifies it.
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
	Group  string

	// Keys are the IPVS services the virtual server stands for: one, or
	// one per address and fwmark of its group.
	Keys []service.Key

	Family   service.Family
	Protocol uint8 // service.ProtoTCP, ProtoUDP, ProtoSCTP; 0 for fwmark-only
	Sched    string
	Flags    service.Flags // scheduler flags and OPS (FlagPersistent is in ServiceConfig)
	Method   Method        // the default for real and sorry servers

	PersistenceTimeout uint32 // seconds; 0 = not persistent
	// PersistenceGranularity as service.Config.Netmask: an IPv4 mask as a
	// big-endian uint32 (default 0xffffffff) or an IPv6 prefix length
	// (default 128).
	PersistenceGranularity uint32
	PersistenceEngine      string

	HASuspend   bool
	Virtualhost string
	Alpha       bool
	Omega       bool
	Quorum      uint32 // default 1; lowered to the real servers' weight sum
	Hysteresis  uint32
	QuorumUp    *Script
	QuorumDown  *Script

	InhibitOnFailure bool
	DelayLoop        time.Duration // default 60 s
	ConnectTimeout   time.Duration // default 5 s
	Weight           int32         // default weight of real servers, default 1

	SMTPAlert bool

	SorryServer *SorryServer
	RealServers []RealServer
}

// SorryServer is the sorry_server of a virtual server.
type SorryServer struct {
	Addr    netip.Addr
	Port    uint16
	Method  Method
	Inhibit bool // sorry_server_inhibit
}

// RealServer is a real_server block.
type RealServer struct {
	Pos  Pos
	Addr netip.Addr
	// Port: as configured, else the virtual server's port; 0 for fwmark
	// services (except NAT, where a configured port is kept).
	Port       uint16
	Weight     int32 // default: the virtual server's weight
	Method     Method
	UThreshold uint32
	LThreshold uint32
	NotifyUp   *Script
	NotifyDown *Script

	Alpha            bool
	InhibitOnFailure bool
	SMTPAlert        bool
	Virtualhost      string

	// Checkers are the health checkers; the server is up when all are.
	Checkers []Checker
}

// Checker is one health checker of a real server.
type Checker struct {
	Pos  Pos
	Spec check.Spec
	// RequireReplyBits is the UDP_CHECK require_reply mask at nibble
	// resolution: per byte, the bits that must match (0xff, 0xf0, 0x0f or
	// 0), as check.Spec.RequireReplyMask.
	RequireReplyBits []byte
}

// BGP is the GoLVS extension block announcing prefixes by BGP.
type BGP struct {
	Pos       Pos
	RouterID  netip.Addr
	LocalAS   uint32
	Neighbors []BGPNeighbor
	Announce  []netip.Prefix
}

// BGPNeighbor is a neighbor block of bgp { }.
type BGPNeighbor struct {
	Pos         Pos
	Addr        netip.Addr
	RemoteAS    uint32
	HoldTime    time.Duration // default 90 s (RFC 4271 suggests 90)
	Keepalive   time.Duration // default HoldTime/3
	Password    string        // TCP MD5 key, at most 80 bytes
	NextHopSelf bool
	Port        uint16 // default 179
	Passive     bool
	// EBGPMultihop is the TTL for a neighbor several hops away; 0 = a
	// directly connected neighbor.
	EBGPMultihop int
	SourceAddr   netip.Addr
}
