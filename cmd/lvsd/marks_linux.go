package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golvs/internal/addrset"
	"golvs/internal/fwmark"
	"golvs/internal/link"
	"golvs/internal/service"
)

// markPoll is how often the mark rules are read again even without a
// change notice: the rules file has no notice, and a lost nftables
// notice (a full socket buffer) must not leave stale rules for long.
const markPoll = 10 * time.Second

// markState is the mark rules the data plane evaluates for firewall-mark
// services, and what could not be translated.
type markState struct {
	c   *fwmark.Classifier
	bad []string // untranslated host rules and rules-file errors, for the log
	key string   // what was read, to notice changes

	// deny is the deny list (--deny-set), denyErrs what could not be
	// read of it.
	deny     *addrset.Set
	denyErrs []string
	denyKey  string
}

// loadMarkFile reads --fwmark-rules. A file with errors is refused as a
// whole: the daemon does not start on it, and a running one keeps the
// rules it had.
func loadMarkFile(path string) ([]fwmark.Rule, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--fwmark-rules: %w", err)
	}
	rules, err := fwmark.Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("--fwmark-rules: %w", err)
	}
	return rules, nil
}

// readMarks reads the mark rules of the host's ruleset (unless
// --fwmark-from-host=false) and of the rules file. fileRules are the
// file's last good rules, kept when the file turns bad.
func (p *afPlane) readMarks(cfg dataPlaneConfig, fileRules []fwmark.Rule) (*markState, []fwmark.Rule) {
	var rules []fwmark.Rule
	var bad, key []string
	if cfg.HostMarks {
		hr, untranslated, err := p.host.MarkRules()
		if err != nil {
			bad = append(bad, err.Error())
		}
		rules = append(rules, hr...)
		for _, u := range untranslated {
			bad = append(bad, fmt.Sprintf("%s: cannot evaluate: %s", u.Origin, u.Reason))
		}
	}
	if fr, err := loadMarkFile(cfg.MarkRules); err != nil {
		bad = append(bad, err.Error()+" (keeping the file's previous rules)")
	} else {
		fileRules = fr
	}
	rules = append(rules, fileRules...)
	for _, r := range rules {
		key = append(key, r.Origin+"\t"+r.String())
	}
	key = append(key, bad...)
	ms := &markState{c: fwmark.NewClassifier(rules), bad: bad, key: strings.Join(key, "\n")}
	var ranges []addrset.Range
	for _, n := range cfg.DenySets {
		rs, err := p.host.AddrSetRanges(n)
		if err != nil {
			ms.denyErrs = append(ms.denyErrs, err.Error())
			continue
		}
		ranges = append(ranges, rs...)
	}
	deny, err := addrset.New(ranges)
	if err != nil {
		ms.denyErrs = append(ms.denyErrs, err.Error())
	}
	ms.deny = deny
	ms.denyKey = fmt.Sprint(ranges, ms.denyErrs)
	return ms, fileRules
}

// watchMarks keeps the pipeline's mark rules current until stop: at each
// nftables transaction and every markPoll. A change kicks follow, which
// widens or narrows what the data plane takes for fwmark services.
func (p *afPlane) watchMarks(cfg dataPlaneConfig, fileRules []fwmark.Rule) {
	var changes <-chan struct{}
	if cfg.HostMarks || len(cfg.DenySets) > 0 {
		ch, stop, err := p.host.WatchNftables()
		if err != nil {
			p.log.Warn("cannot watch the nftables ruleset for mark rules; reading it every poll", "err", err, "poll_s", markPoll.Seconds())
		} else {
			changes = ch
			defer stop()
		}
	}
	poll := time.NewTicker(markPoll)
	defer poll.Stop()
	for {
		select {
		case <-p.stop:
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
		case <-poll.C:
		}
		var ms *markState
		ms, fileRules = p.readMarks(cfg, fileRules)
		old := p.marks.Load()
		if ms.key == old.key && ms.denyKey == old.denyKey {
			continue
		}
		p.setMarks(ms)
		if ms.denyKey != old.denyKey {
			p.logDeny(ms)
		}
		if ms.key == old.key {
			continue
		}
		var fwm []service.Key
		var marks []uint32
		for _, s := range p.ctl.Snapshot().Services() {
			if s.Key.IsFWMark() {
				fwm = append(fwm, s.Key)
				marks = append(marks, s.Key.FWMark)
			}
		}
		p.logMarks(fwm, markDests(ms, marks))
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// setMarks publishes ms to the pipeline and to follow.
func (p *afPlane) setMarks(ms *markState) {
	p.pipe.SetMarks(ms.c)
	p.pipe.SetDeny(ms.deny)
	old := p.marks.Swap(ms)
	if old == nil || old.key != ms.key {
		p.log.Info("mark rules", "rules", ms.c.Len())
	}
}

// logDeny reports the deny list after a change.
func (p *afPlane) logDeny(ms *markState) {
	if len(p.denySets) == 0 {
		return
	}
	p.log.Info("deny list", "sets", p.denySets, "ranges", ms.deny.Len())
	for _, e := range ms.denyErrs {
		p.log.Warn("deny list: cannot read a set; its clients are not denied", "err", e)
	}
}

// logMarks reports, once each, the mark rules GoLVS cannot evaluate
// while there are firewall-mark services that may depend on them, and
// firewall-mark services no rule gives a mark to. follow (with the rules
// it applied) and watchMarks (with the services' marks now) both call it.
func (p *afPlane) logMarks(fwm []service.Key, dests []link.Match) {
	ms := p.marks.Load()
	p.markLogMu.Lock()
	defer p.markLogMu.Unlock()
	if len(fwm) == 0 || ms == nil {
		p.markLogged = nil
		return
	}
	seen := map[string]bool{}
	for _, b := range ms.bad {
		seen[b] = true
		if !p.markLogged[b] {
			p.log.Warn("mark rule not evaluated: firewall-mark services do not get the packets it marks", "rule", b)
		}
	}
	var ks []string
	for _, k := range fwm {
		ks = append(ks, k.String())
	}
	none := "no mark rule for " + strings.Join(ks, ", ")
	if len(dests) == 0 {
		seen[none] = true
		if !p.markLogged[none] {
			p.log.Warn("no mark rule gives the firewall-mark services' marks: they get no traffic (add MARK rules to the mangle table's PREROUTING chain, or use --fwmark-rules)", "services", strings.Join(ks, ", "))
		}
	}
	p.markLogged = seen
}

// markDests returns the destinations of the rules that give the services'
// marks.
func markDests(ms *markState, marks []uint32) []link.Match {
	if ms == nil {
		return nil
	}
	var out []link.Match
	for _, d := range ms.c.Destinations(marks) {
		out = append(out, link.Match{Addr: d.Addr, Proto: d.Proto, Port: d.Ports.Lo, PortLast: d.Ports.Hi})
	}
	return out
}
