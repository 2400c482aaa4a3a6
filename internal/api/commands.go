package api

import (
	"fmt"
	"net/http"

	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// checkCommand refuses what no parsed ipvsadm command looks like: a
// command that does not change anything (listings, -R, -h, -v are the
// client's business), an unknown kind, a service of no family. Values
// the kernel would judge are left to control, so that they fail with the
// kernel's classes.
func checkCommand(c *ipvsadm.Command) error {
	switch c.Kind {
	case ipvsadm.CmdAddService, ipvsadm.CmdEditService, ipvsadm.CmdDeleteService,
		ipvsadm.CmdAddServer, ipvsadm.CmdEditServer, ipvsadm.CmdDeleteServer:
		if c.Service.Family != service.IPv4 && c.Service.Family != service.IPv6 {
			return badRequest("command %v: service family %d, want 4 or 6", c.Kind, c.Service.Family)
		}
	case ipvsadm.CmdZero:
		if c.Options&ipvsadm.OptService != 0 && c.Service.Family != service.IPv4 && c.Service.Family != service.IPv6 {
			return badRequest("command %v: service family %d, want 4 or 6", c.Kind, c.Service.Family)
		}
	case ipvsadm.CmdFlush, ipvsadm.CmdSetTimeouts:
	case ipvsadm.CmdStartDaemon, ipvsadm.CmdStopDaemon:
		if c.Daemon.State != ipvsadm.DaemonMaster && c.Daemon.State != ipvsadm.DaemonBackup {
			return badRequest("command %v: daemon state %q, want master or backup", c.Kind, c.Daemon.State)
		}
	case ipvsadm.CmdList, ipvsadm.CmdSave, ipvsadm.CmdRestore, ipvsadm.CmdHelp, ipvsadm.CmdVersion:
		return badRequest("command %v changes nothing: read GET /v1/state", c.Kind)
	default:
		return badRequest("unknown command kind %d", c.Kind)
	}
	return nil
}

// changesState reports whether a successful c changes what the state
// file holds (-Z and the daemons do not).
func changesState(k ipvsadm.Kind) bool {
	switch k {
	case ipvsadm.CmdZero, ipvsadm.CmdStartDaemon, ipvsadm.CmdStopDaemon:
		return false
	}
	return true
}

// apply carries out one checked command, as ipvsadm's process_options
// calls libipvs. Called with mu held.
func (s *Server) apply(c *ipvsadm.Command) error {
	switch c.Kind {
	case ipvsadm.CmdAddService:
		return s.ctl.AddService(c.Service, c.Config)
	case ipvsadm.CmdEditService:
		return s.ctl.EditService(c.Service, c.Config)
	case ipvsadm.CmdDeleteService:
		return s.ctl.DeleteService(c.Service)
	case ipvsadm.CmdFlush:
		s.ctl.Flush()
		return nil
	case ipvsadm.CmdAddServer:
		return s.ctl.AddDest(c.Service, c.Dest, c.DestPort, c.DestConfig)
	case ipvsadm.CmdEditServer:
		return s.ctl.EditDest(c.Service, c.Dest, c.DestPort, c.DestConfig)
	case ipvsadm.CmdDeleteServer:
		return s.ctl.DeleteDest(c.Service, c.Dest, c.DestPort)
	case ipvsadm.CmdZero:
		if c.Options&ipvsadm.OptService != 0 {
			k := c.Service
			return s.ctl.Zero(&k)
		}
		return s.ctl.Zero(nil)
	case ipvsadm.CmdSetTimeouts:
		return s.setTimeouts(c.Timeouts)
	case ipvsadm.CmdStartDaemon:
		return s.startDaemon(c.Daemon)
	case ipvsadm.CmdStopDaemon:
		return s.stopDaemon(c.Daemon.State)
	}
	// checkCommand let through a kind apply does not know: a bug.
	return fmt.Errorf("%w: command %v not applied", ErrInternal, c.Kind)
}

// postCommands applies parsed ipvsadm commands in order, each on its
// own (a failure does not stop the rest, as with ipvsadm -R), and saves
// once at the end if any changed the configuration: a restore of a
// thousand services costs one save, not eleven thousand.
//
// The request is refused as a whole (400) if any command is malformed,
// before anything is applied.
func (s *Server) postCommands(w http.ResponseWriter, r *http.Request) {
	var req CommandsRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	cmds := make([]ipvsadm.Command, len(req.Commands))
	for i := range req.Commands {
		cmds[i] = req.Commands[i].Parsed()
		if err := checkCommand(&cmds[i]); err != nil {
			writeError(w, fmt.Errorf("command %d: %w", i, err))
			return
		}
	}
	resp := CommandsResponse{Results: make([]Result, len(cmds))}
	s.mu.Lock()
	changed := false
	// One snapshot for the whole batch, published when it is applied.
	s.ctl.Batch(func() {
		for i := range cmds {
			c := &cmds[i]
			if err := s.apply(c); err != nil {
				resp.Results[i].Error = wireError(err)
				continue
			}
			changed = changed || changesState(c.Kind)
		}
	})
	var err error
	if changed {
		err = s.save()
	}
	s.mu.Unlock()
	if err != nil {
		resp.Error = wireError(err)
		writeJSON(w, http.StatusInternalServerError, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
