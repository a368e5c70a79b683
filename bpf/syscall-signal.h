/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of syscall-signal.bpf.c (a signal to a target's process on a
 * given syscall: the crash-on-syscall fault). */
#ifndef VC_SYSCALL_SIGNAL_H
#define VC_SYSCALL_SIGNAL_H

#include "common.h"

/* rule.flags */
enum vc_sig_flags {
	VC_SIG_ALL = 1u, /* signal every matching call past after_count, no random draw */
};

struct vc_sig_rule {
	__u32 nr;          /* syscall number (x86_64 table) */
	__u32 signal;      /* sent with bpf_send_signal() to the calling process */
	__u32 threshold;   /* signal when the 32-bit draw is below this */
	__u32 flags;       /* enum vc_sig_flags */
	__u64 after_count; /* the first after_count matching calls pass untouched */
};

/* Written by the kernel side; rng holds the slot's PRNG state, seeded by user space. */
struct vc_sig_stats {
	__u64 matched;  /* calls of the syscall by the cgroup's processes */
	__u64 signaled; /* signals sent */
	__u64 rng;
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_sig_flags);
#endif

#endif
