/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of observe.bpf.c: what the kernel saw of the observed containers
 * (retransmits, connects, runqueue delay, I/O waits, OOM kills, exits). */
#ifndef VC_OBSERVE_H
#define VC_OBSERVE_H

#include "common.h"

enum vc_obs_limits {
	/* Observers alive at once (each observed container takes one index). */
	VC_OBS_MAX_TARGETS = 64,
	/* connect errors are counted per errno below this (Linux's largest is 133). */
	VC_OBS_ERRNOS = 136,
	/* Log-linear histogram: 4 buckets per power of two (12.5 % wide at most). */
	VC_OBS_BUCKETS = 160,
	/* The event ring (exits, OOM kills) of every observer together. */
	VC_OBS_EVENTS = 1024,
};

enum vc_obs_event_kind {
	VC_OBS_EXIT = 1u,
	VC_OBS_OOM = 2u,
};

/* Counters of one observed container, only ever added to. Histograms count
 * nanoseconds (runqueue, I/O wait) or microseconds (RTT) in log-linear buckets. */
struct vc_obs_stats {
	__u64 tcp_retransmits;
	__u64 connect_attempts;
	__u64 connects_established;
	__u64 connect_errors_total;
	__u64 block_io_bytes;
	__u64 block_io_ops;
	__u64 io_waits;
	__u64 runq_samples;
	__u64 oom_kills;
	__u64 process_exits;
	__u64 rtt_samples;
	__u64 connect_errors[VC_OBS_ERRNOS];
	__u64 runq_hist[VC_OBS_BUCKETS];
	__u64 io_hist[VC_OBS_BUCKETS];
	__u64 rtt_hist[VC_OBS_BUCKETS];
};

struct vc_obs_event {
	__u64 seq;  /* 1, 2, ...: slot seq % VC_OBS_EVENTS; 0 = never written */
	__u32 kind; /* enum vc_obs_event_kind */
	__u32 target;
	__u32 pid;
	__s32 exit_code; /* wait(2) status: signal in the low 7 bits, exit status << 8 */
	__u8 comm[16];
};

/* When a task became runnable or went to wait for I/O, and whose it is. */
struct vc_obs_since {
	__u64 ts;
	__u32 target;
	__u32 pad;
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_obs_limits);
VC_EXPORT_ENUM(vc_obs_event_kind);
#endif

#endif
