package api

import (
	"net/http"
	"time"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/service"
)

// pathService parses the {svc} of the request's path.
func pathService(r *http.Request) (service.Key, error) {
	k, err := ParseServiceID(r.PathValue("svc"))
	if err != nil {
		return k, badRequest("%v", err)
	}
	return k, nil
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	k, err := pathService(r)
	if err != nil {
		writeError(w, err)
		return
	}
	e, ok := s.service(k)
	if !ok {
		writeError(w, control.ErrNoService)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) addService(w http.ResponseWriter, r *http.Request) {
	var spec ServiceSpec
	if err := decode(w, r, &spec); err != nil {
		writeError(w, err)
		return
	}
	k := service.Key(spec.Key)
	err := s.change(func() error { return s.ctl.AddService(k, service.Config(spec.Config)) })
	if err == nil {
		w.Header().Set("Location", "/v1/services/"+ServiceID(k))
	}
	respond(w, http.StatusCreated, err)
}

func (s *Server) editService(w http.ResponseWriter, r *http.Request) {
	k, err := pathService(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var cfg ServiceConfig
	if err := decode(w, r, &cfg); err != nil {
		writeError(w, err)
		return
	}
	respond(w, http.StatusNoContent, s.change(func() error { return s.ctl.EditService(k, service.Config(cfg)) }))
}

func (s *Server) deleteService(w http.ResponseWriter, r *http.Request) {
	k, err := pathService(r)
	if err != nil {
		writeError(w, err)
		return
	}
	respond(w, http.StatusNoContent, s.change(func() error { return s.ctl.DeleteService(k) }))
}

func (s *Server) addDest(w http.ResponseWriter, r *http.Request) {
	k, err := pathService(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var spec DestSpec
	if err := decode(w, r, &spec); err != nil {
		writeError(w, err)
		return
	}
	dc := service.DestConfig(spec.Config)
	err = s.change(func() error {
		return s.ctl.AddDest(k, spec.Addr, spec.Port, dc)
	})
	if err == nil {
		w.Header().Set("Location", "/v1/services/"+ServiceID(k)+"/dests/"+DestID(spec.Addr, spec.Port))
	}
	respond(w, http.StatusCreated, err)
}

// pathDest parses the {svc} and {dest} of the request's path.
func pathDest(r *http.Request) (service.Key, ipvsadm.Command, error) {
	var c ipvsadm.Command
	k, err := pathService(r)
	if err != nil {
		return k, c, err
	}
	c.Dest, c.DestPort, err = ParseDestID(r.PathValue("dest"))
	if err != nil {
		return k, c, badRequest("%v", err)
	}
	return k, c, nil
}

func (s *Server) editDest(w http.ResponseWriter, r *http.Request) {
	k, c, err := pathDest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var wdc DestConfig
	if err := decode(w, r, &wdc); err != nil {
		writeError(w, err)
		return
	}
	dc := service.DestConfig(wdc)
	respond(w, http.StatusNoContent, s.change(func() error {
		return s.ctl.EditDest(k, c.Dest, c.DestPort, dc)
	}))
}

func (s *Server) deleteDest(w http.ResponseWriter, r *http.Request) {
	k, c, err := pathDest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	respond(w, http.StatusNoContent, s.change(func() error { return s.ctl.DeleteDest(k, c.Dest, c.DestPort) }))
}

// Zeroing counters changes nothing the state file holds: no save.

func (s *Server) zeroService(w http.ResponseWriter, r *http.Request) {
	k, err := pathService(r)
	if err != nil {
		writeError(w, err)
		return
	}
	respond(w, http.StatusNoContent, s.ctl.Zero(&k))
}

func (s *Server) zeroAll(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusNoContent, s.ctl.Zero(nil))
}

func (s *Server) flush(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusNoContent, s.change(func() error { s.ctl.Flush(); return nil }))
}

func (s *Server) timeouts() Timeouts {
	t := s.eng.Timeouts()
	tcp, fin, udp := t.Get()
	return Timeouts{TCP: uint32(tcp / time.Second), TCPFin: uint32(fin / time.Second), UDP: uint32(udp / time.Second)}
}

func (s *Server) getTimeouts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.timeouts())
}

func (s *Server) putTimeouts(w http.ResponseWriter, r *http.Request) {
	var t Timeouts
	if err := decode(w, r, &t); err != nil {
		writeError(w, err)
		return
	}
	respond(w, http.StatusNoContent, s.change(func() error {
		return s.setTimeouts(ipvsadm.TimeoutConfig(t))
	}))
}

func (s *Server) setTimeouts(t ipvsadm.TimeoutConfig) error {
	return s.eng.SetTimeouts(time.Duration(t.TCP)*time.Second, time.Duration(t.TCPFin)*time.Second, time.Duration(t.UDP)*time.Second)
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	st := s.eng.Settings()
	writeJSON(w, http.StatusOK, Settings{
		ExpireNodestConn:        st.ExpireNodestConn,
		ExpireQuiescentTemplate: st.ExpireQuiescentTemplate,
		ConnReuseMode:           st.ConnReuseMode,
		SecureTCP:               st.SecureTCP,
		SloppyTCP:               st.SloppyTCP,
		SloppySCTP:              st.SloppySCTP,
	})
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	var st Settings
	if err := decode(w, r, &st); err != nil {
		writeError(w, err)
		return
	}
	respond(w, http.StatusNoContent, s.change(func() error {
		s.eng.SetSettings(engine.Settings{
			ExpireNodestConn:        st.ExpireNodestConn,
			ExpireQuiescentTemplate: st.ExpireQuiescentTemplate,
			ConnReuseMode:           st.ConnReuseMode,
			SecureTCP:               st.SecureTCP,
			SloppyTCP:               st.SloppyTCP,
			SloppySCTP:              st.SloppySCTP,
		})
		return nil
	}))
}

func (s *Server) getDaemons(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.daemonList())
}

func (s *Server) startDaemonHTTP(w http.ResponseWriter, r *http.Request) {
	var d ipvsadm.DaemonEntry
	if err := decode(w, r, &d); err != nil {
		writeError(w, err)
		return
	}
	if d.SyncID > 255 {
		writeError(w, badRequest("syncid %d: want 0 to 255", d.SyncID))
		return
	}
	err := s.startDaemon(ipvsadm.DaemonConfig{
		State: d.State, MCastInterface: d.MCastIfn, SyncID: uint8(d.SyncID), SyncMaxLen: d.SyncMaxLen,
		MCastGroup: d.MCastGroup, MCastPort: d.MCastPort, MCastTTL: d.MCastTTL,
	})
	respond(w, http.StatusCreated, err)
}

func (s *Server) stopDaemonHTTP(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusNoContent, s.stopDaemon(r.PathValue("state")))
}
