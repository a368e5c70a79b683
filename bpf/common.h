/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared between the eBPF programs and user space. This header and the
 * programs' own are the only declaration of each shared struct: native/ reads
 * the layouts from the objects' BTF, and scripts/gen-bpf-types.mjs writes the
 * TypeScript value types from it. Fields in network order are typed __be16 /
 * __be32 (BTF keeps the typedef name, so user space knows the byte order);
 * constants are enums exported with VC_EXPORT_ENUM so that they reach BTF. */
#ifndef VC_COMMON_H
#define VC_COMMON_H

/* Puts an enum into the object's BTF, where user space reads its values. The
 * variable lives in a section libbpf skips: it costs no map. */
#define VC_EXPORT_ENUM(e) enum e __vc_export_##e __attribute__((section(".vc.consts"), used))

enum vc_limits {
	/* A fault occupies one slot of its target cgroup; a cgroup holds at most this many. */
	VC_MAX_SLOTS = 8,
};

/* Rules and counters are keyed by (cgroup id, slot). */
struct vc_slot_key {
	__u64 cgroup_id;
	__u32 slot;
	__u32 pad;
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_limits);

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
