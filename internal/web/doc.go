// Package web is the HTTP side of lvsd for operators: Prometheus metrics
// (/metrics), a live status page (/, with its embedded assets), the JSON
// behind it (/api/status) and a health endpoint (/healthz).
//
// It corresponds to what the kernel shows through /proc/net/ip_vs,
// /proc/net/ip_vs_stats and ip_vs_ctl.c's netlink dumps (the ipvsadm -Ln,
// --stats and --rate listings), and to keepalived's status outputs
// (keepalived --signum=DATA / STATS dumps, vrrp_print.c, check_print.c),
// gathered in one place and served over HTTP.
//
// Everything is read at request time from a Source of provider functions:
// the control plane (services, real servers, counters, rates) and,
// optionally, the connection table, the data plane, health checkers, VRRP
// and connection sync. Subsystems that are not running leave their
// provider nil and their parts of the page and of the metrics are absent.
// The package starts no goroutine: the Prometheus collector reads the
// sources when scraped, and the rate history of the page is sampled by
// Handler.Sample (called by its owner's ticker) or, failing that, by the
// page's own requests.
//
// The metrics are documented in docs/metrics.md.
package web
