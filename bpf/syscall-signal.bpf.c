// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* syscall-signal (the crash-on-syscall fault): a signal (SIGKILL by default) to a process of a
 * target cgroup when it enters a given syscall. One tp_btf program for every target: it runs on
 * every syscall of the machine while attached, so the first test is one hash lookup on the caller's
 * cgroup id; processes outside the target cgroups go on untouched. The syscall itself still runs
 * (no program type that can skip it loads here): the signal is delivered on the way back to user
 * space. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "syscall-signal.h"

/* cgroup id -> bitmask of slots in use. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} sig_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_sig_rule);
} sig_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_sig_stats);
} sig_stats SEC(".maps");

/* tp_btf/sys_enter: ctx[0] is struct pt_regs *, ctx[1] the syscall number. */
SEC("tp_btf/sys_enter")
int vc_syscall_sig(__u64 *ctx)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u32 *mask = bpf_map_lookup_elem(&sig_slots, &cgid);
	long nr;

	if (!mask || !*mask)
		return 0;
	nr = (long)ctx[1];
	for (__u32 slot = 0; slot < VC_MAX_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_sig_rule *r;
		struct vc_sig_stats *s;
		__u64 before;

		if (!(*mask & (1u << slot)))
			continue;
		r = bpf_map_lookup_elem(&sig_rules, &key);
		s = bpf_map_lookup_elem(&sig_stats, &key);
		if (!r || !s || nr != (long)r->nr)
			continue;
		before = __sync_fetch_and_add(&s->matched, 1);
		if (before < r->after_count)
			continue;
		if (!(r->flags & VC_SIG_ALL) && vc_draw(&s->rng) >= r->threshold)
			continue;
		if (bpf_send_signal(r->signal) == 0)
			__sync_fetch_and_add(&s->signaled, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
