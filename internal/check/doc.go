// Package check holds the health checkers of keepalived's check process
// (keepalived/check/check_{tcp,http,smtp,dns,misc,udp,ping,file}.c): the
// probes that decide whether a real server is up, and the loop that runs
// them with keepalived's timing (delay_loop, retry, delay_before_retry,
// warmup, alpha).
package check
