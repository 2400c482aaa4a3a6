package service

import (
	"sync"
	"sync/atomic"
)

// registryChunk is the number of dest pointers per chunk of the Registry:
// 1024 pointers (8 KiB) keeps a chunk in a few pages while a million
// destinations need only a thousand chunks.
const registryChunk = 1024

// registryMaxChunks bounds the Registry at 2^20 destinations: far above any
// real director (the kernel itself has no limit, but keepalived and ipvsadm
// installations with more than a hundred thousand real servers do not exist).
const registryMaxChunks = 1024

// Registry maps destination IDs to destinations, so that connection entries
// can refer to their destination by a 32-bit ID and stay pointer-free (the
// garbage collector then never scans the connection table).
//
// Lookup is lock-free and safe for concurrent use with Alloc and Free.
// ID 0 is never allocated: it means "no destination".
type Registry struct {
	chunks [registryMaxChunks]atomic.Pointer[[registryChunk]atomic.Pointer[Dest]]

	mu   sync.Mutex
	next uint32   // guarded by mu: next never-used ID
	free []uint32 // guarded by mu: released IDs
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{next: 1} }

// Lookup returns the destination with id, or nil.
func (r *Registry) Lookup(id uint32) *Dest {
	ci := id / registryChunk
	if ci >= registryMaxChunks {
		return nil
	}
	c := r.chunks[ci].Load()
	if c == nil {
		return nil
	}
	return c[id%registryChunk].Load()
}

// Alloc reserves an ID. ok is false when the registry is full.
func (r *Registry) Alloc() (id uint32, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.free); n > 0 {
		id = r.free[n-1]
		r.free = r.free[:n-1]
		return id, true
	}
	if r.next >= registryChunk*registryMaxChunks {
		return 0, false
	}
	id = r.next
	r.next++
	ci := id / registryChunk
	if r.chunks[ci].Load() == nil {
		r.chunks[ci].Store(new([registryChunk]atomic.Pointer[Dest]))
	}
	return id, true
}

// Set publishes d under d.ID, which Alloc must have returned.
func (r *Registry) Set(d *Dest) {
	r.chunks[d.ID/registryChunk].Load()[d.ID%registryChunk].Store(d)
}

// Free removes the destination with id and makes the ID reusable. The caller
// guarantees that no connection refers to it any more.
func (r *Registry) Free(id uint32) {
	c := r.chunks[id/registryChunk].Load()
	if c == nil {
		return
	}
	c[id%registryChunk].Store(nil)
	r.mu.Lock()
	r.free = append(r.free, id)
	r.mu.Unlock()
}
