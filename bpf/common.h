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
	/* A fault occupies one slot of its target cgroup (or veth) per peer address; a
	 * cgroup holds at most this many. The slots in use are one __u64 bitmask. */
	VC_MAX_SLOTS = 64,
	/* Slots in use at once over all the cgroups (or veths) of one program
	 * object: 64 targets with 64 faults each. */
	VC_MAX_RULES = 4096,
};

/* Rules and counters are keyed by (cgroup id, slot). Their hash maps are not
 * preallocated (BPF_F_NO_PREALLOC): an entry costs memory only while its slot
 * is in use; what stays is the buckets (16 bytes per max entry). */
struct vc_slot_key {
	__u64 cgroup_id;
	__u32 slot;
	__u32 pad;
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_limits);

/* The maps every slotted program has: id (cgroup or ifindex) -> slots in use,
 * and the rules and counters of each (id, slot). */
#define VC_SLOT_MAPS(prefix, rule_type, stats_type)                                                \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__uint(max_entries, 1024);                                                         \
		__type(key, __u64);                                                                \
		__type(value, __u64);                                                              \
	} prefix##_slots SEC(".maps");                                                             \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__uint(max_entries, VC_MAX_RULES);                                                 \
		__type(key, struct vc_slot_key);                                                   \
		__type(value, rule_type);                                                          \
	} prefix##_rules SEC(".maps");                                                             \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__uint(max_entries, VC_MAX_RULES);                                                 \
		__type(key, struct vc_slot_key);                                                   \
		__type(value, stats_type);                                                         \
	} prefix##_stats SEC(".maps")

/* bpf_loop's count for a slot mask: up to the highest slot in use. The
 * slots are walked with bpf_loop, whose callback the verifier checks once,
 * where a plain loop of 64 would be checked once per slot and path. */
static __always_inline __u32 vc_slot_span(__u64 mask)
{
	__u32 n = 0;

	if (mask >> 32) {
		n += 32;
		mask >>= 32;
	}
	if (mask >> 16) {
		n += 16;
		mask >>= 16;
	}
	if (mask >> 8) {
		n += 8;
		mask >>= 8;
	}
	if (mask >> 4) {
		n += 4;
		mask >>= 4;
	}
	if (mask >> 2) {
		n += 2;
		mask >>= 2;
	}
	if (mask >> 1) {
		n += 1;
		mask >>= 1;
	}
	return mask ? n + 1 : 0;
}

/* In a bpf_loop callback: is this slot in use? */
static __always_inline bool vc_slot_used(__u64 mask, __u32 slot)
{
	return slot < VC_MAX_SLOTS && (mask & (1ull << slot));
}

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
