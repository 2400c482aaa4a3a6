package syncd

import (
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
)

// master is a running master daemon (the kernel's sync_thread_master): it
// drains the workers' rings into sync messages (ipvssync.Builder, one
// message of up to sync_maxlen at a time), sends a message when it is full
// or FlushTime after its first entry, signed if keys are set, to the
// multicast group or the unicast peers.
type master struct {
	m      *Manager
	entry  ipvsadm.DaemonEntry
	log    *slog.Logger
	conn   *net.UDPConn
	dests  []netip.AddrPort
	q      *engine.SyncQueue
	b      *ipvssync.Builder
	signer *ipvssync.Signer
	errLog limiter

	quit chan struct{}
	done chan struct{}
	due  int64 // when the message being built is due (m.clock), 0: none; owned by run
}

func (m *Manager) startMaster(e ipvsadm.DaemonEntry, ifi *net.Interface, log *slog.Logger) (*master, error) {
	ms := &master{m: m, entry: e, log: log, quit: make(chan struct{}), done: make(chan struct{}),
		errLog: limiter{interval: errLogInterval}}
	bc := ipvssync.BuilderConfig{Version: m.sysctls.Version, SyncID: uint8(e.SyncID), MaxLen: int(e.SyncMaxLen)}
	if len(m.cfg.Keys) > 0 {
		bc.Reserve = ipvssync.TrailerLen
		s, err := ipvssync.NewSigner(randomID(), m.cfg.Keys[0], time.Now().UnixNano())
		if err != nil {
			return nil, err
		}
		ms.signer = s
	}
	b, err := ipvssync.NewBuilder(bc)
	if err != nil {
		return nil, err
	}
	ms.b = b
	q, err := engine.NewSyncQueue(engine.SyncQueueConfig{Sysctls: m.sysctls, RingSize: m.cfg.RingSize})
	if err != nil {
		return nil, err
	}
	ms.q = q
	unicast := len(m.cfg.Peers) > 0
	if unicast {
		ms.dests = m.peers(e.MCastPort)
	} else {
		ms.dests = []netip.AddrPort{netip.AddrPortFrom(e.MCastGroup, e.MCastPort)}
	}
	ms.conn, err = openSender(ifi, e.MCastGroup, int(e.MCastTTL), unicast)
	if err != nil {
		return nil, err
	}
	m.cfg.Engine.SetSyncQueue(q)
	go ms.run()
	return ms, nil
}

// stop stops the engine's queueing, sends what was queued, and waits for
// the goroutine.
func (ms *master) stop() {
	ms.m.cfg.Engine.SetSyncQueue(nil)
	close(ms.quit)
	<-ms.done
	ms.conn.Close()
	ms.m.stats.ringDrops.Add(ms.q.Drops())
}

// run is the master's goroutine: woken when a ring gets a record (the
// kernel's master thread is woken after SendDelay, to batch), and at the
// due time of a partly filled message.
func (ms *master) run() {
	defer close(ms.done)
	t := time.NewTimer(ipvssync.CheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ms.quit:
			// Workers may still be finishing a batch with the
			// queue: what they queued is sent with the rest.
			ms.drain()
			ms.send(ms.b.Flush())
			return
		case <-ms.q.Wake():
			select {
			case <-ms.quit:
				continue // the quit case drains
			case <-time.After(ipvssync.SendDelay):
			}
		case <-t.C:
		}
		ms.drain()
		now := ms.m.clock.Nanotime()
		if ms.b.Due(now) {
			ms.send(ms.b.Flush())
			ms.due = 0
		}
		// Sleep until the partial message is due, at most CheckPeriod.
		wait := ipvssync.CheckPeriod
		if ms.due != 0 {
			wait = min(wait, time.Duration(ms.due-now))
		}
		t.Reset(max(wait, time.Millisecond))
	}
}

// drain moves the queued records into messages, sending the full ones.
func (ms *master) drain() {
	now := ms.m.clock.Nanotime()
	ms.q.Drain(func(r *engine.SyncRecord) {
		e := r.Entry()
		full, err := ms.b.Add(&e, now)
		if err != nil {
			ms.m.stats.encodeErrors.Add(1)
			return
		}
		if full != nil {
			ms.send(full)
		}
		if ms.b.Count() == 1 {
			ms.due = now + int64(ipvssync.FlushTime)
		}
	})
}

// send signs msg (if keys are set) and sends it to every destination.
func (ms *master) send(msg []byte) {
	if msg == nil {
		return
	}
	st := &ms.m.stats
	entries := uint64(msg[4]) // nr_conns of a version-1 header
	if ms.b.Version() == ipvssync.Version0 {
		entries = uint64(msg[0])
	}
	if ms.signer != nil {
		var err error
		if msg, err = ms.signer.Sign(msg, time.Now().UnixNano()); err != nil {
			st.encodeErrors.Add(entries)
			return
		}
	}
	for _, d := range ms.dests {
		if _, err := ms.conn.WriteToUDPAddrPort(msg, d); err != nil {
			st.sendErrors.Add(1)
			if ms.errLog.allow() {
				ms.log.Warn("sending a sync message", "to", d, "err", err)
			}
			continue
		}
		st.msgsSent.Add(1)
		st.entriesSent.Add(entries)
		st.lastSent.Store(time.Now().UnixNano())
	}
	ms.b.Recycle(msg)
}
