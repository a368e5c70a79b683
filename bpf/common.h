/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared between the eBPF programs and native/: __u32-style types only. */
#ifndef VC_COMMON_H
#define VC_COMMON_H

/* A fault occupies one slot of its target cgroup; a cgroup holds at most this many. */
#define VC_MAX_SLOTS 8

/* Rules and counters are keyed by (cgroup id, slot). */
struct vc_slot_key {
	__u64 cgroup_id;
	__u32 slot;
	__u32 pad;
};

#ifdef __bpf__
/* xorshift64*: every random draw of our programs. The state lives in the
 * slot's counters, seeded from the fault's seed by user space, so a run can be
 * replayed. Concurrent CPUs may race on it; that costs determinism under
 * parallel traffic, never correctness of the rate. */
static __always_inline __u32 vc_draw(__u64 *state)
{
	__u64 x = *state ? *state : 0x9E3779B97F4A7C15ULL;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return (__u32)((x * 0x2545F4914F6CDD1DULL) >> 32);
}
#endif

#endif
