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

VC_SLOT_MAPS(sig, struct vc_sig_rule, struct vc_sig_stats);

struct sig_walk {
	__u64 cgid;
	__u64 mask;
	long nr;
};

static long sig_slot(__u32 slot, void *data)
{
	struct sig_walk *w = data;
	struct vc_slot_key key = { .cgroup_id = w->cgid, .slot = slot };
	struct vc_sig_rule *r;
	struct vc_sig_stats *s;
	__u64 before;

	if (!vc_slot_used(w->mask, slot))
		return 0;
	r = bpf_map_lookup_elem(&sig_rules, &key);
	s = bpf_map_lookup_elem(&sig_stats, &key);
	if (!r || !s || w->nr != (long)r->nr)
		return 0;
	before = __sync_fetch_and_add(&s->matched, 1);
	if (before < r->after_count)
		return 0;
	if (!(r->flags & VC_SIG_ALL) && vc_draw(&s->rng) >= r->threshold)
		return 0;
	if (bpf_send_signal(r->signal) == 0)
		__sync_fetch_and_add(&s->signaled, 1);
	return 0;
}

/* tp_btf/sys_enter: ctx[0] is struct pt_regs *, ctx[1] the syscall number. */
SEC("tp_btf/sys_enter")
int vc_syscall_sig(__u64 *ctx)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u64 *mask = bpf_map_lookup_elem(&sig_slots, &cgid);
	struct sig_walk w = { .cgid = cgid };

	if (!mask || !*mask)
		return 0;
	w.mask = *mask;
	w.nr = (long)ctx[1];
	bpf_loop(vc_slot_span(w.mask), sig_slot, &w, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
