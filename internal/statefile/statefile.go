package statefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/service"
)

// Version is the version of the document this package writes. Read
// refuses other versions: a file written by a newer lvsd is not silently
// misread (and then overwritten with less).
const Version = 1

// Document is the saved configuration. Numbers are the kernel's values
// (family 4 or 6, IP protocol numbers, IP_VS_SVC_F_* flags, forwarding
// methods and tunnel types of linux/ip_vs.h); docs/api.md describes it.
type Document struct {
	Version  int       `json:"version"`
	Services []Service `json:"services"`
	Timeouts Timeouts  `json:"timeouts"`
	Settings Settings  `json:"settings"`
}

// Service is one virtual service with its configuration and real servers.
type Service struct {
	Family    uint8      `json:"family"`
	Protocol  uint8      `json:"protocol,omitempty"` // 0 for fwmark services
	Addr      netip.Addr `json:"addr,omitzero"`      // zero for fwmark services
	Port      uint16     `json:"port,omitempty"`
	FWMark    uint32     `json:"fwmark,omitempty"`
	Scheduler string     `json:"scheduler"`
	Flags     uint32     `json:"flags,omitempty"`
	Timeout   uint32     `json:"timeout,omitempty"` // persistence, seconds
	Netmask   uint32     `json:"netmask"`
	PE        string     `json:"pe,omitempty"`
	// Dests in kernel order: the most recently added first.
	Dests []Dest `json:"dests,omitempty"`
}

// Dest is one real server.
type Dest struct {
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port"`
	Fwd        uint8      `json:"fwd"`
	Weight     int32      `json:"weight"`
	UThreshold uint32     `json:"u_threshold,omitempty"`
	LThreshold uint32     `json:"l_threshold,omitempty"`
	TunType    uint8      `json:"tun_type,omitempty"`
	TunPort    uint16     `json:"tun_port,omitempty"`
	TunFlags   uint16     `json:"tun_flags,omitempty"`
}

// Timeouts are the three timeouts of ipvsadm --set, in seconds.
type Timeouts struct {
	TCP    uint32 `json:"tcp"`
	TCPFin uint32 `json:"tcp_fin"`
	UDP    uint32 `json:"udp"`
}

// Settings are engine.Settings (the sysctls of /proc/sys/net/ipv4/vs that
// change per-packet decisions).
type Settings struct {
	ExpireNodestConn        bool  `json:"expire_nodest_conn"`
	ExpireQuiescentTemplate bool  `json:"expire_quiescent_template"`
	ConnReuseMode           uint8 `json:"conn_reuse_mode"`
	SecureTCP               bool  `json:"secure_tcp"`
	SloppyTCP               bool  `json:"sloppy_tcp"`
	SloppySCTP              bool  `json:"sloppy_sctp"`
}

// Capture returns the configuration of ctl and eng as a document.
func Capture(ctl *control.Control, eng *engine.Engine) *Document {
	snap := ctl.Snapshot()
	d := &Document{Version: Version, Services: make([]Service, 0, snap.Len())}
	for _, s := range snap.Services() {
		e := Service{
			Family:    uint8(s.Key.Family),
			Protocol:  s.Key.Proto,
			Addr:      s.Key.Addr,
			Port:      s.Key.Port,
			FWMark:    s.Key.FWMark,
			Scheduler: s.Config.Sched,
			Flags:     uint32(s.Config.Flags),
			Timeout:   s.Config.Timeout,
			Netmask:   s.Config.Netmask,
			PE:        s.Config.PE,
		}
		if len(s.Dests) > 0 {
			e.Dests = make([]Dest, len(s.Dests))
		}
		for i, dst := range s.Dests {
			c := dst.Config()
			e.Dests[i] = Dest{
				Addr: dst.Addr, Port: dst.Port,
				Fwd: uint8(c.Fwd), Weight: c.Weight,
				UThreshold: c.UThreshold, LThreshold: c.LThreshold,
				TunType: uint8(c.TunType), TunPort: c.TunPort, TunFlags: uint16(c.TunFlags),
			}
		}
		d.Services = append(d.Services, e)
	}
	to := eng.Timeouts()
	tcp, fin, udp := to.Get()
	d.Timeouts = Timeouts{TCP: seconds(tcp), TCPFin: seconds(fin), UDP: seconds(udp)}
	st := eng.Settings()
	d.Settings = Settings{
		ExpireNodestConn:        st.ExpireNodestConn,
		ExpireQuiescentTemplate: st.ExpireQuiescentTemplate,
		ConnReuseMode:           st.ConnReuseMode,
		SecureTCP:               st.SecureTCP,
		SloppyTCP:               st.SloppyTCP,
		SloppySCTP:              st.SloppySCTP,
	}
	return d
}

// seconds converts a timeout to whole seconds (timeouts are set in
// seconds, so nothing is lost).
func seconds(d time.Duration) uint32 { return uint32(d / time.Second) }

// Apply loads d into a fresh ctl and eng: every service with its real
// servers in d's order (which reproduces the kernel order of the real
// servers), then the timeouts and the settings. It stops at the first
// entry that ctl refuses, with an error naming it: a state file that no
// longer loads (a scheduler this build lacks) must not be dropped
// silently and then overwritten.
func Apply(d *Document, ctl *control.Control, eng *engine.Engine) (err error) {
	// One snapshot for the whole document.
	ctl.Batch(func() { err = applyServices(d, ctl) })
	if err != nil {
		return err
	}
	return applyRest(d, eng)
}

func applyServices(d *Document, ctl *control.Control) error {
	for i := range d.Services {
		s := &d.Services[i]
		k := service.Key{Family: service.Family(s.Family), Proto: s.Protocol, Addr: s.Addr, Port: s.Port, FWMark: s.FWMark}
		cfg := service.Config{Sched: s.Scheduler, Flags: service.Flags(s.Flags), Timeout: s.Timeout, Netmask: s.Netmask, PE: s.PE}
		if err := ctl.AddService(k, cfg); err != nil {
			return fmt.Errorf("service %v: %w", k, err)
		}
		// AddDest inserts at the head: add in reverse to keep the order.
		for j := len(s.Dests) - 1; j >= 0; j-- {
			dst := &s.Dests[j]
			dc := service.DestConfig{
				Fwd: service.FwdMethod(dst.Fwd), Weight: dst.Weight,
				UThreshold: dst.UThreshold, LThreshold: dst.LThreshold,
				TunType: service.TunType(dst.TunType), TunPort: dst.TunPort, TunFlags: service.TunFlags(dst.TunFlags),
			}
			if err := ctl.AddDest(k, dst.Addr, dst.Port, dc); err != nil {
				return fmt.Errorf("service %v, real server %v: %w", k, netip.AddrPortFrom(dst.Addr, dst.Port), err)
			}
		}
	}
	return nil
}

func applyRest(d *Document, eng *engine.Engine) error {
	t := d.Timeouts
	if err := eng.SetTimeouts(time.Duration(t.TCP)*time.Second, time.Duration(t.TCPFin)*time.Second, time.Duration(t.UDP)*time.Second); err != nil {
		return fmt.Errorf("timeouts %d %d %d: %w", t.TCP, t.TCPFin, t.UDP, err)
	}
	st := d.Settings
	eng.SetSettings(engine.Settings{
		ExpireNodestConn:        st.ExpireNodestConn,
		ExpireQuiescentTemplate: st.ExpireQuiescentTemplate,
		ConnReuseMode:           st.ConnReuseMode,
		SecureTCP:               st.SecureTCP,
		SloppyTCP:               st.SloppyTCP,
		SloppySCTP:              st.SloppySCTP,
	})
	return nil
}

// Marshal encodes d, indented (the file is meant to be readable), with a
// final newline.
func Marshal(d *Document) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Unmarshal decodes a document, refusing unknown fields, trailing data
// and versions other than Version.
func Unmarshal(b []byte) (*Document, error) {
	// The probe checks the whole input's syntax (trailing data
	// included) and the version before the strict decoding.
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, err
	}
	switch {
	case probe.Version == nil:
		return nil, errors.New("no version")
	case *probe.Version != Version:
		return nil, fmt.Errorf("version %d, this lvsd reads version %d", *probe.Version, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	d := new(Document)
	if err := dec.Decode(d); err != nil {
		return nil, err
	}
	return d, nil
}

// Read reads the document at path. A missing file is an error that
// matches os.ErrNotExist (a first start).
func Read(path string) (*Document, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return d, nil
}

// tempPattern names the temporary files of Write: hidden, beside the
// state file, with a random suffix (os.CreateTemp), so that two writers
// never share one.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// Write replaces the file at path with d atomically and durably: write a
// temporary file in the same directory, fsync it, rename it over path,
// fsync the directory (so that the rename itself survives a power cut).
// The directory is created (mode 0700: the configuration is the
// director's business) if missing; the file is mode 0600.
func Write(path string, d *Document) error {
	b, err := Marshal(d)
	if err != nil {
		return err
	}
	return WriteBytes(path, b)
}

// WriteBytes is Write for an encoded document.
func WriteBytes(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600 already; say so explicitly, since
	// the mode is part of the contract.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making a rename in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// RemoveTemps deletes the temporary files that writers of path killed
// between creating and renaming them left behind. Call it at start,
// before any Write; it returns how many it removed.
func RemoveTemps(path string) (int, error) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	prefix := strings.TrimSuffix(tempPattern(path), "*")
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, err
		}
		n++
	}
	return n, nil
}
