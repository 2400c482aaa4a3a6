package realserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// stateVersion is the state file's format; a file of another version is
// refused rather than misread.
const stateVersion = 1

// ErrNoState is returned (wrapped) by Teardown when there is no state
// file: nothing was set up with that state directory, or it was torn down
// already.
var ErrNoState = errors.New("no realserver state")

// Action kinds: what Setup changed, so that Teardown can undo it.
const (
	// actAddr: Setup added Prefix on Dev.
	actAddr = "addr"
	// actRoute: Setup added the main-table route Prefix dev Dev scope
	// link.
	actRoute = "route"
	// actSysctl: Setup wrote New to /proc/sys/Path, which held Old.
	actSysctl = "sysctl"
	// actLinkUp: Setup brought Dev up.
	actLinkUp = "link-up"
	// actLinkAdd: Setup created Dev (an ipip link named tunl0).
	actLinkAdd = "link-add"
)

// action is one change Setup made. VIP is the VIP it was made for, or the
// zero Addr for a host-wide change, which Teardown undoes only with the
// last VIP.
type action struct {
	Kind   string       `json:"kind"`
	VIP    netip.Addr   `json:"vip,omitzero"`
	Dev    string       `json:"dev,omitempty"`
	Prefix netip.Prefix `json:"prefix,omitzero"`
	Path   string       `json:"path,omitempty"`
	Old    string       `json:"old,omitempty"`
	New    string       `json:"new,omitempty"`
}

// vipRecord is one VIP Setup set up, whether or not it had to add the
// address (a VIP that was there before has no actions but is still one
// of the VIPs the host-wide changes serve).
type vipRecord struct {
	Addr netip.Addr `json:"addr"`
	Dev  string     `json:"dev"`
}

// state is the state file: what Setup did, in order.
type state struct {
	Version int         `json:"version"`
	Tun     bool        `json:"tun,omitempty"`
	VIPs    []vipRecord `json:"vips"`
	Actions []action    `json:"actions"`
}

func (s *state) hasVIP(a netip.Addr) bool {
	return slices.ContainsFunc(s.VIPs, func(v vipRecord) bool { return v.Addr == a })
}

// marshal returns the file's bytes: indented JSON, for people reading
// /run/lvsd/realserver.json while debugging.
func (s *state) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseState decodes a state file, refusing unknown fields and versions
// (a newer lvsd's record must not be half-undone by an older one).
func parseState(b []byte) (*state, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var s state
	if err := d.Decode(&s); err != nil {
		return nil, err
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state file version %d, this lvsd knows %d", s.Version, stateVersion)
	}
	for _, a := range s.Actions {
		switch a.Kind {
		case actAddr, actRoute, actSysctl, actLinkUp, actLinkAdd:
		default:
			return nil, fmt.Errorf("state file: unknown action %q", a.Kind)
		}
	}
	return &s, nil
}

// loadState reads the state file at path; (nil, nil) if there is none.
func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// saveState writes the state file atomically (a temporary file renamed
// over it, after fsync), so that a crash leaves the old record or the new
// one, never half of one.
func saveState(path string, s *state) error {
	b, err := s.marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".realserver-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}

// removeState deletes the state file; a missing one is fine.
func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
