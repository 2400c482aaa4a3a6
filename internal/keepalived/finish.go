package keepalived

import "golvs/internal/service"

// finish resolves cross references once every block has been read, in
// keepalived's order: VRRP (instances, sync groups), then the LVS
// configuration (validate_check_config).
func (p *parser) finish() {
	p.finishVRRP()
	owner := map[service.Key]*vsState{}
	for _, st := range p.vss {
		if !p.finishVS(st) {
			continue
		}
		clash := false
		for _, k := range st.vs.Keys {
			if o := owner[k]; o != nil {
				p.errorf(st.n, "service %v is already defined by the virtual server at %s", k, o.vs.Pos)
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		for _, k := range st.vs.Keys {
			owner[k] = st
		}
		p.cfg.VirtualServers = append(p.cfg.VirtualServers, st.vs)
	}
}
