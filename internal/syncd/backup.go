package syncd

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
)

// backup is a running backup daemon (the kernel's sync_thread_backup and
// ip_vs_process_message): it receives messages, verifies them if keys are
// set, decodes them (syncid filtering) and applies each entry to the
// connection table with ipvssync.Backup.Plan.
type backup struct {
	m        *Manager
	entry    ipvsadm.DaemonEntry
	log      *slog.Logger
	sock     receiver
	ifindex  int                 // the daemon's interface (multicast), 0: any (unicast)
	peers    map[netip.Addr]bool // unicast: the addresses accepted; nil: any
	maxLen   int                 // the longest message accepted, trailer included
	verifier *ipvssync.Verifier
	errLog   limiter
	done     chan struct{}

	// Owned by the goroutine.
	r   ipvssync.Reader
	buf []byte
}

// maxDatagram is the largest UDP payload, plus one byte to tell a
// datagram that filled the buffer from a longer one.
const maxDatagram = 65535 + 1

func (m *Manager) startBackup(e ipvsadm.DaemonEntry, ifi *net.Interface, log *slog.Logger) (*backup, error) {
	bk := &backup{m: m, entry: e, log: log, maxLen: int(e.SyncMaxLen), done: make(chan struct{}),
		errLog: limiter{interval: errLogInterval}, buf: make([]byte, maxDatagram)}
	if len(m.cfg.Keys) > 0 {
		v, err := ipvssync.NewVerifier(ipvssync.VerifierConfig{Keys: m.cfg.Keys, MaxAge: m.cfg.MaxAge})
		if err != nil {
			return nil, err
		}
		bk.verifier = v
		bk.maxLen += ipvssync.TrailerLen
	}
	unicast := len(m.cfg.Peers) > 0
	if unicast {
		bk.peers = map[netip.Addr]bool{}
		for _, p := range m.cfg.Peers {
			bk.peers[p.Addr().Unmap()] = true
		}
	} else {
		bk.ifindex = ifi.Index
	}
	sock, err := openReceiver(ifi, e.MCastGroup, e.MCastPort, unicast, m.cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	bk.sock = sock
	go bk.run()
	return bk, nil
}

// stop closes the socket and waits for the goroutine.
func (bk *backup) stop() {
	bk.sock.Close()
	<-bk.done
}

// retryDelay is the pause after a receive error other than the socket's
// closing, so that a persistent one does not spin.
const retryDelay = 100 * time.Millisecond

func (bk *backup) run() {
	defer close(bk.done)
	for {
		n, src, ifindex, err := bk.sock.read(bk.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if bk.errLog.allow() {
				bk.log.Warn("receiving sync messages", "err", err)
			}
			time.Sleep(retryDelay)
			continue
		}
		bk.handle(bk.buf[:n], src, ifindex)
	}
}

// handle processes one datagram.
func (bk *backup) handle(msg []byte, src netip.Addr, ifindex int) {
	st := &bk.m.stats
	// Counted once handled, so that a reader who sees the count sees
	// the message's verdict too.
	defer st.msgsRecv.Add(1)
	switch {
	case bk.ifindex != 0 && ifindex != 0 && ifindex != bk.ifindex:
		st.reject(RejectInterface)
		return
	case bk.peers != nil && !bk.peers[src]:
		st.reject(RejectPeer)
		return
	case len(msg) > bk.maxLen:
		st.reject(RejectTooLong)
		return
	}
	if bk.verifier != nil {
		var err error
		if msg, err = bk.verifier.Verify(msg, time.Now().UnixNano()); err != nil {
			st.reject(reasonOf(err))
			return
		}
	}
	r := &bk.r
	if err := r.Reset(msg, uint8(bk.entry.SyncID)); err != nil {
		st.reject(reasonOf(err))
		return
	}
	st.msgsAccepted.Add(1)
	st.lastRecv.Store(time.Now().UnixNano())
	a := bk.m.applier()
	for r.Next() {
		if err := r.EntryErr(); err != nil {
			st.reject(reasonOf(err))
			continue
		}
		st.entriesRecv.Add(1)
		a.apply(r.Entry(), r.Header().Version)
	}
	if err := r.Err(); err != nil {
		st.reject(reasonOf(err))
	}
}

// applier applies the entries of one message: the services, the
// timeouts and the time are read once per message.
type applier struct {
	m   *Manager
	b   ipvssync.Backup
	now int64
}

func (m *Manager) applier() applier {
	to := m.cfg.Engine.Timeouts()
	return applier{m: m, b: ipvssync.Backup{Threshold: uint32(m.sysctls.Threshold), Timeouts: &to}, now: m.clock.Nanotime()}
}

// apply is the end of ip_vs_proc_conn: the entry's Plan carried out on
// the connection table and the real servers' counts.
func (a *applier) apply(e *ipvssync.Entry, version uint8) {
	m := a.m
	st := &m.stats
	t := m.cfg.Engine.Conns()
	var cur conntable.Conn
	found := false
	if e.Template() {
		p, snet, vaddr, vport, mark := ipvssync.TemplateKey(e)
		if ref, ok := t.LookupTemplate(p, snet, vaddr, vport, mark, a.now); ok {
			cur, found = t.Get(ref)
		}
	} else {
		_, found = t.LookupInConn(e.Proto, e.CAddr, e.CPort, e.VAddr, e.VPort, a.now, &cur)
	}
	var cp *conntable.Conn
	if found {
		cp = &cur
	}
	p, err := a.b.Plan(e, version, cp, m.cfg.Control.Snapshot(), m.cfg.Control.Registry())
	if err != nil {
		st.reject(reasonOf(err))
		return
	}
	switch p.Binding {
	case ipvssync.NoService:
		st.unboundNoService.Add(1)
	case ipvssync.NoDest:
		st.unboundNoDest.Add(1)
	}
	tpl := p.Conn.Flags&conntable.FlagTemplate != 0
	inactive := p.Conn.Flags&conntable.FlagInactive != 0
	switch p.Action {
	case ipvssync.Ignore:
		st.ignored.Add(1)
	case ipvssync.Replace, ipvssync.Insert:
		if p.Action == ipvssync.Replace {
			t.ExpireNow(p.Ref)
		}
		// Counted before the entry is visible, as the engine does, so
		// that its removal (OnRemove) always finds it counted.
		if p.Dest != nil {
			p.Dest.Bind(tpl, inactive)
		}
		if _, err := t.Insert(&p.Conn, a.now); err != nil {
			if p.Dest != nil {
				p.Dest.Unbind(tpl, inactive)
			}
			st.reject(reasonOf(err))
			return
		}
		if p.Action == ipvssync.Replace {
			st.replaced.Add(1)
		} else {
			st.inserted.Add(1)
		}
	case ipvssync.Update:
		if p.Bind && p.Dest != nil {
			p.Dest.Bind(tpl, inactive)
		}
		bound, ok := t.UpdateSynced(p.Ref, &p.Conn, a.now)
		if p.Bind && p.Dest != nil && !bound {
			// Gone meanwhile, or bound by another path.
			p.Dest.Unbind(tpl, inactive)
		}
		if !ok {
			st.reject(RejectInvalid)
			return
		}
		if p.Dest != nil && !p.Bind {
			switch p.Flip {
			case ipvssync.ToActive:
				p.Dest.ToActive()
			case ipvssync.ToInactive:
				p.Dest.ToInactive()
			}
		}
		st.updated.Add(1)
	}
}
