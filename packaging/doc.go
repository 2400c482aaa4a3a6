// Package packaging holds no code: this directory has GoLVS's
// installation files (the Makefile, the lvsd.service systemd unit, bash
// completion for ipvsadm, and ipvsadm 1.31's ipvsadm-save and
// ipvsadm-restore wrapper scripts redone for GoLVS), and
// this package's tests check them as an administrator would use them:
// systemd-analyze verify on the unit, the completion run by bash, and
// make install into a scratch root.
package packaging
