package afpacket

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// maxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const maxInsns = 4096

// label names a place in a program being assembled.
type label int

// next is the label of the instruction that follows a jump.
const next label = -1

// asm assembles a classic BPF program with symbolic jump targets. A
// conditional jump reaches at most 255 instructions ahead (its offsets
// are 8 bits); assemble turns one that must go further into a short jump
// over two unconditional ones (which have 32-bit offsets).
type asm struct {
	items []item
	n     int // labels
	// reloc, if set, rewrites the offset of every load from the packet
	// (the programs are written with the Ethernet header at 0).
	reloc func(off uint32) uint32
}

type itemKind uint8

const (
	itemInsn   itemKind = iota // ins
	itemLabel                  // l is placed here
	itemJumpIf                 // if A test val goto t else goto f
	itemJump                   // goto l
)

type item struct {
	kind itemKind
	ins  bpf.Instruction
	l    label
	t, f label
	test bpf.JumpTest
	val  uint32
	far  bool // a JumpIf laid out long
}

func (a *asm) newLabel() label { a.n++; return label(a.n - 1) }

func (a *asm) place(l label) { a.items = append(a.items, item{kind: itemLabel, l: l}) }

func (a *asm) emit(ins ...bpf.Instruction) {
	for _, i := range ins {
		a.items = append(a.items, item{kind: itemInsn, ins: i})
	}
}

// jif emits a conditional jump to t if "A test val" holds, else to f.
func (a *asm) jif(test bpf.JumpTest, val uint32, t, f label) {
	a.items = append(a.items, item{kind: itemJumpIf, test: test, val: val, t: t, f: f})
}

// ja emits an unconditional jump.
func (a *asm) ja(l label) { a.items = append(a.items, item{kind: itemJump, l: l}) }

// size is the number of instructions an item takes.
func (it *item) size() int {
	switch it.kind {
	case itemLabel:
		return 0
	case itemJumpIf:
		if it.far {
			return 3
		}
	}
	return 1
}

// layout returns the position of every item and every label.
func (a *asm) layout() (pcs, at []int) {
	pcs = make([]int, len(a.items))
	at = make([]int, a.n)
	for i := range at {
		at[i] = -1
	}
	pc := 0
	for i := range a.items {
		it := &a.items[i]
		pcs[i] = pc
		if it.kind == itemLabel {
			at[it.l] = pc
		}
		pc += it.size()
	}
	return pcs, at
}

// target is the position of label l; next is the position after the
// jump item, which ends at end.
func target(at []int, end int, l label) (int, error) {
	if l == next {
		return end, nil
	}
	if int(l) >= len(at) || at[l] < 0 {
		return 0, errors.New("afpacket: bpf: jump to an unplaced label")
	}
	return at[l], nil
}

// skip is the offset of a jump instruction at pc to position to.
func skip(pc, to int) (int, error) {
	if to <= pc {
		return 0, errors.New("afpacket: bpf: backward jump")
	}
	return to - pc - 1, nil
}

// assemble resolves the jumps and returns the program.
func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	// Lay out, widening conditional jumps that cannot reach, until none
	// is widened (widening only lengthens distances, so this ends).
	var pcs, at []int
	for changed := true; changed; {
		changed = false
		pcs, at = a.layout()
		for i := range a.items {
			it := &a.items[i]
			if it.kind != itemJumpIf || it.far {
				continue
			}
			end := pcs[i] + 1
			tt, err := target(at, end, it.t)
			if err != nil {
				return nil, err
			}
			ft, err := target(at, end, it.f)
			if err != nil {
				return nil, err
			}
			if tt-end > 255 || ft-end > 255 {
				it.far, changed = true, true
			}
		}
	}
	var out []bpf.Instruction
	for i := range a.items {
		it := &a.items[i]
		pc := pcs[i]
		switch it.kind {
		case itemInsn:
			out = append(out, a.relocate(it.ins))
		case itemJump:
			to, err := target(at, pc+1, it.l)
			if err != nil {
				return nil, err
			}
			d, err := skip(pc, to)
			if err != nil {
				return nil, err
			}
			out = append(out, bpf.Jump{Skip: uint32(d)})
		case itemJumpIf:
			if it.far {
				// if A test val goto +0 (the first ja) else goto +1.
				tt, _ := target(at, pc+3, it.t)
				ft, _ := target(at, pc+3, it.f)
				t, err := skip(pc+1, tt)
				if err != nil {
					return nil, err
				}
				f, err := skip(pc+2, ft)
				if err != nil {
					return nil, err
				}
				out = append(out,
					bpf.JumpIf{Cond: it.test, Val: it.val, SkipTrue: 0, SkipFalse: 1},
					bpf.Jump{Skip: uint32(t)}, bpf.Jump{Skip: uint32(f)})
				continue
			}
			tt, _ := target(at, pc+1, it.t)
			ft, _ := target(at, pc+1, it.f)
			t, err := skip(pc, tt)
			if err != nil {
				return nil, err
			}
			f, err := skip(pc, ft)
			if err != nil {
				return nil, err
			}
			out = append(out, bpf.JumpIf{Cond: it.test, Val: it.val, SkipTrue: uint8(t), SkipFalse: uint8(f)})
		}
	}
	if len(out) > maxInsns {
		return nil, fmt.Errorf("afpacket: bpf: program of %d instructions exceeds the kernel's %d: too many matches", len(out), maxInsns)
	}
	return bpf.Assemble(out)
}

// relocate applies a.reloc to a load from the packet.
func (a *asm) relocate(ins bpf.Instruction) bpf.Instruction {
	if a.reloc == nil {
		return ins
	}
	switch i := ins.(type) {
	case bpf.LoadAbsolute:
		i.Off = a.reloc(i.Off)
		return i
	case bpf.LoadIndirect:
		i.Off = a.reloc(i.Off)
		return i
	case bpf.LoadMemShift:
		i.Off = a.reloc(i.Off)
		return i
	}
	return ins
}
