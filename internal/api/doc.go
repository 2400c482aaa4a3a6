// Package api is lvsd's control API: HTTP/JSON handlers over package
// control (the virtual services) and package engine (timeouts, settings,
// the connection table), served by lvsd on a Unix socket. It is the
// user-space counterpart of the kernel's IPVS configuration interfaces,
// the generic-netlink family "IPVS" and the IP_VS_SO_SET_*/SO_GET_*
// socket options (net/netfilter/ipvs/ip_vs_ctl.c: ip_vs_genl_set_cmd,
// ip_vs_genl_dump_services, do_ip_vs_set_ctl, ...), with the same
// semantics: a change is one control operation, applied atomically to the
// data path, and fails with the kernel's failure classes.
//
// Routes (Go 1.22 ServeMux patterns; docs/api.md has the request and
// response bodies):
//
//	GET    /v1/state                          everything a listing shows (ipvsadm.State)
//	POST   /v1/commands                       parsed ipvsadm commands, applied in order
//	GET    /v1/services/{svc}                 one service
//	POST   /v1/services                       add a service (-A)
//	PUT    /v1/services/{svc}                 edit a service (-E)
//	DELETE /v1/services/{svc}                 delete a service (-D)
//	POST   /v1/services/{svc}/dests           add a real server (-a)
//	PUT    /v1/services/{svc}/dests/{dest}    edit a real server (-e)
//	DELETE /v1/services/{svc}/dests/{dest}    delete a real server (-d)
//	POST   /v1/services/{svc}/zero            zero a service's counters (-Z -t ...)
//	POST   /v1/zero                           zero every counter (-Z)
//	POST   /v1/flush                          delete every service (-C)
//	GET    /v1/timeouts, PUT /v1/timeouts     --set tcp tcpfin udp
//	GET    /v1/settings, PUT /v1/settings     the sysctls of /proc/sys/net/ipv4/vs
//	GET    /v1/daemons, POST /v1/daemons      --start-daemon
//	DELETE /v1/daemons/{state}                --stop-daemon
//
// Errors are a JSON body {"error": {"class": ..., "message": ...}} whose
// class is one of the Class constants, mapped to an HTTP status by one
// table (errors.go); ErrorOf turns a class back into the control sentinel,
// so that a client can print ipvsadm's message for it.
//
// After every successful change the server calls Config.Persist (lvsd
// saves the state file there), serialised with the changes, so the saved
// file follows the order of the changes.
package api
