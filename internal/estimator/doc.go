// Package estimator is the IPVS rate estimator (kernel
// net/netfilter/ipvs/ip_vs_est.c): the connection, packet and byte rates
// that ipvsadm --rate and /proc/net/ip_vs_stats show for every destination,
// virtual service and the global totals.
//
// # Arithmetic
//
// Every 2 s (the kernel's 2*HZ) each stats object takes the difference of
// its counters since the previous estimate and folds it into an
// exponentially weighted moving average with weight W = 1/4, in fixed point
// (ip_vs_chain_estimation; estimation_timer before Linux 6.2):
//
//	rate = (conns - last_conns) << 9     // conns/s scaled by 2^10: x1024 / 2 s
//	rate = (bytes - last_bytes) << 4     // bytes/s scaled by 2^5:  x32 / 2 s
//	avg += (s64(rate) - s64(avg)) >> 2   // arithmetic shift: floors negatives
//
// in- and out-packets are treated like conns. Readers scale back with the
// kernel's rounding (ip_vs_read_estimator):
//
//	cps = (avg + 0x1FF) >> 10            // 0x1FF, not 0x200: x.5 rounds down
//	bps = (avg + 0xF) >> 5
//
// Units are connections, packets and bytes (not bits) per second, as the
// golden ipvsadm --rate transcripts confirm (see estimator_test.go).
//
// # Zeroing and start
//
// The kernel allocates a stats object zeroed (last_* = 0 with counters at 0)
// and starts estimating it when the service or destination is added;
// Entry and New start from the counters' current values, which is the same
// thing for fresh counters and avoids a spike for counters with history.
// ipvsadm -Z runs ip_vs_zero_stats: the counters get a new zero point and
// ip_vs_zero_estimator sets the averages to 0 and last_* = kstats; kstats is
// the snapshot the estimator itself took at its last run, so last_* does not
// actually move, and the next estimate after -Z covers a whole interval.
// Reset and Entry.Zero do exactly that.
//
// # Scheduling
//
// Estimator is the pure state of one stats object, stepped by the caller.
// Set holds many of them and spreads them over 50 rows of 40 ms, as the
// kernel's estimation kthreads do since Linux 6.2 (IPVS_EST_NTICKS,
// IPVS_EST_TICK), so that a Tick every 40 ms touches a fiftieth of the
// objects; a Tick every 2 s (the pre-6.2 timer) touches them all. Set reads
// no clock and starts no goroutine: the caller passes the time to Tick.
package estimator
