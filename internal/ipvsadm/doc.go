// Package ipvsadm is the command line of ipvsadm 1.31 (ipvsadm.c,
// config_stream.c, libipvs' ipvs_strerror), byte for byte: the argv
// grammar with popt's quirks, the command x option legality table, the
// error messages and exit codes, the listing formats (-L/-l with -n, -c,
// --stats, --rate, --thresholds, --persistent-conn, --tun-info, --exact,
// --timeout, --daemon) and the save/restore format (-S, -R).
//
// It is pure: parsing turns argv into a Command; formatting turns a
// State into the exact bytes ipvsadm prints. The daemon client
// (cmd/ipvsadm) sits between the two.
package ipvsadm
