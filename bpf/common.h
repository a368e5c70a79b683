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

#endif
