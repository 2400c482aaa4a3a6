package ipvsadm

import "io"

// Save writes the rules of s as `ipvsadm -S` (and ipvsadm-save) prints
// them, byte for byte (ipvsadm.c list_all with FMT_RULE): per service, in
// the listing's sort order, a "-A" line with the scheduler, persistence
// (-p, -M when not the default), --pe, -o and -b, then an "-a" line per
// destination with its forwarding method, weight and tunnel options.
// Thresholds (-x, -y), timeouts and daemons are not saved, as ipvsadm
// does not save them; ipvsadm -R reads the rest back. A fwmark of
// 4294967295 is written as "-f -1", which -R rejects (as with ipvsadm).
//
// Without numeric, addresses and ports are named as List names them
// (DefaultPorts; Formatter.Save takes a Resolver).
func Save(w io.Writer, s *State, numeric bool) error {
	return Formatter{}.Save(w, s, numeric)
}

// Save is the package function Save with f's resolver.
func (f Formatter) Save(w io.Writer, s *State, numeric bool) error {
	fl := fmtRule
	if numeric {
		fl |= fmtNumeric
	}
	p := f.printer(w, fl)
	p.all(s)
	return p.flush()
}
