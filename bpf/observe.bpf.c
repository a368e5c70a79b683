// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel observers (chaos.observe, and every experiment's targets): what the
 * kernel did to the processes and sockets of the observed containers. Every
 * program is a tracepoint (tp_btf) attached once for the whole machine; the
 * first thing each does is look the cgroup up in obs_cgroups, so everything
 * else on the machine costs one hash lookup.
 *
 * Whose cgroup: a process's own (bpf_get_current_cgroup_id) where the event
 * runs in its context (connect(2), exit); the task's where it is another task
 * (wakeups, switches, the OOM victim); the SOCKET's (sk->sk_cgrp_data, set when
 * the socket was created, inherited by accepted sockets from their listener)
 * for TCP events, which mostly run in softirq on behalf of nobody in particular
 * (retransmit timers, RSTs); the bio's blkio cgroup for block I/O, which the
 * throttle may dispatch later from a kworker. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "observe.h"

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7
#define IPPROTO_TCP_ 6
#define EINPROGRESS_ 115
#define ECONNABORTED_ 103
#define NR_CONNECT_X86_64 42
#define AF_INET_ 2
#define AF_INET6_ 10

/* cgroup id (v2, or v1 blkio for block I/O) -> observer index. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} obs_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VC_OBS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct vc_obs_stats);
} obs_stats SEC(".maps");

/* pid -> when it became runnable (woken, or preempted while runnable). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct vc_obs_since);
} obs_runnable SEC(".maps");

/* pid -> when it went to sleep waiting for I/O (io_schedule). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct vc_obs_since);
} obs_iowait SEC(".maps");

/* pid_tgid -> 1 while its connect(2) has put a TCP socket in SYN_SENT: the
 * state change counts that connect's outcome, sys_exit only the others. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} obs_connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VC_OBS_EVENTS);
	__type(key, __u32);
	__type(value, struct vc_obs_event);
} obs_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} obs_seq SEC(".maps");

static __always_inline struct vc_obs_stats *stats_of(__u64 cgid, __u32 *target)
{
	__u32 *idx = bpf_map_lookup_elem(&obs_cgroups, &cgid);

	if (!idx)
		return 0;
	if (target)
		*target = *idx;
	return bpf_map_lookup_elem(&obs_stats, idx);
}

static __always_inline __u64 task_cgroup(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline __u64 sock_cgroup(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

/* Log-linear bucket: values below 4 are their own bucket; above, 4 per power of two. */
static __always_inline __u32 bucket_of(__u64 v)
{
	__u32 msb = 0;
	__u64 x = v;

	if (v < 4)
		return (__u32)v;
	if (x >> 32) {
		msb += 32;
		x >>= 32;
	}
	if (x >> 16) {
		msb += 16;
		x >>= 16;
	}
	if (x >> 8) {
		msb += 8;
		x >>= 8;
	}
	if (x >> 4) {
		msb += 4;
		x >>= 4;
	}
	if (x >> 2) {
		msb += 2;
		x >>= 2;
	}
	if (x >> 1) {
		msb += 1;
	}
	__u32 b = msb * 4 + (__u32)((v >> (msb - 2)) & 3);
	return b < VC_OBS_BUCKETS ? b : VC_OBS_BUCKETS - 1;
}

static __always_inline void hist_add(__u64 *hist, __u64 v)
{
	__u32 b = bucket_of(v);

	barrier_var(b); /* keep the bound check: clang proves it redundant, the verifier cannot */
	if (b < VC_OBS_BUCKETS)
		__sync_fetch_and_add(&hist[b], 1);
}

static __always_inline void record_event(__u32 kind, __u32 target, struct task_struct *t)
{
	__u32 zero = 0;
	__u64 *seqp = bpf_map_lookup_elem(&obs_seq, &zero);
	struct vc_obs_event *e;
	__u64 seq;
	__u32 slot;

	if (!seqp)
		return;
	seq = __sync_fetch_and_add(seqp, 1) + 1;
	slot = (__u32)(seq % VC_OBS_EVENTS);
	e = bpf_map_lookup_elem(&obs_events, &slot);
	if (!e)
		return;
	e->kind = kind;
	e->target = target;
	e->pid = BPF_CORE_READ(t, tgid);
	e->exit_code = BPF_CORE_READ(t, exit_code);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), &t->comm);
	/* Written last: user space takes an entry whose seq it expects as complete. */
	__sync_lock_test_and_set(&e->seq, seq);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(vc_obs_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	struct vc_obs_stats *s;
	struct tcp_skb_cb *cb;
	__u16 segs;

	if (err)
		return 0; /* not sent (e.g. the device queue was full): nothing went on the wire */
	s = stats_of(sock_cgroup(sk), 0);
	if (!s)
		return 0;
	/* Segments, as the RetransSegs MIB counts them: a TSO skb carries several. */
	cb = (struct tcp_skb_cb *)&skb->cb[0];
	segs = BPF_CORE_READ(cb, tcp_gso_segs);
	__sync_fetch_and_add(&s->tcp_retransmits, segs ? segs : 1);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vc_obs_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct vc_obs_stats *s;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	s = stats_of(sock_cgroup(sk), 0);
	if (!s)
		return 0;
	if (newstate == TCP_SYN_SENT_) {
		/* In connect(2), in the caller's context. */
		__u64 id = bpf_get_current_pid_tgid();
		__u32 one = 1;

		__sync_fetch_and_add(&s->connect_attempts, 1);
		bpf_map_update_elem(&obs_connecting, &id, &one, BPF_ANY);
	} else if (oldstate == TCP_SYN_SENT_ && newstate == TCP_ESTABLISHED_) {
		__sync_fetch_and_add(&s->connects_established, 1);
	} else if (oldstate == TCP_SYN_SENT_ && newstate == TCP_CLOSE_) {
		/* tcp_done_with_error() sets sk_err before the state changes; 0: closed by its
		 * owner. */
		__u32 err = (__u32)BPF_CORE_READ(sk, sk_err);

		if (err == 0)
			err = ECONNABORTED_;
		__sync_fetch_and_add(&s->connect_errors_total, 1);
		barrier_var(err);
		if (err < VC_OBS_ERRNOS)
			__sync_fetch_and_add(&s->connect_errors[err], 1);
	} else if (oldstate == TCP_ESTABLISHED_) {
		/* Leaving ESTABLISHED: the connection's smoothed RTT (srtt_us is 8 x us). */
		__u32 srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;

		if (srtt) {
			__sync_fetch_and_add(&s->rtt_samples, 1);
			hist_add(s->rtt_hist, srtt);
		}
	}
	return 0;
}

/* connect(2) failures before any SYN (EPERM from a cgroup hook, ENETUNREACH, ...). */
SEC("tp_btf/sys_exit")
int BPF_PROG(vc_obs_sys_exit, struct pt_regs *regs, long ret)
{
	struct vc_obs_stats *s;
	__u64 id;
	__u32 err;

	__u16 family = 0;

#if defined(__TARGET_ARCH_x86)
	if (BPF_CORE_READ(regs, orig_ax) != NR_CONNECT_X86_64)
		return 0;
	/* The user's registers still hold the arguments: si is the sockaddr. */
	bpf_probe_read_user(&family, sizeof(family), (void *)BPF_CORE_READ(regs, si));
#else
	return 0;
#endif
	id = bpf_get_current_pid_tgid();
	if (bpf_map_lookup_elem(&obs_connecting, &id)) {
		bpf_map_delete_elem(&obs_connecting, &id);
		return 0;
	}
	if (ret >= 0 || ret == -EINPROGRESS_ || (family != AF_INET_ && family != AF_INET6_))
		return 0; /* UNIX sockets (ENOENT for a missing path) are not network connects */
	s = stats_of(bpf_get_current_cgroup_id(), 0);
	if (!s)
		return 0;
	err = (__u32)-ret;
	barrier_var(err);
	__sync_fetch_and_add(&s->connect_attempts, 1);
	__sync_fetch_and_add(&s->connect_errors_total, 1);
	if (err < VC_OBS_ERRNOS)
		__sync_fetch_and_add(&s->connect_errors[err], 1);
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid), target;
	struct vc_obs_stats *s = stats_of(task_cgroup(p), &target);
	struct vc_obs_since *w, since;
	__u64 now;

	if (!s)
		return 0;
	now = bpf_ktime_get_ns();
	w = bpf_map_lookup_elem(&obs_iowait, &pid);
	if (w) {
		if (now > w->ts) {
			__sync_fetch_and_add(&s->io_waits, 1);
			hist_add(s->io_hist, now - w->ts);
		}
		bpf_map_delete_elem(&obs_iowait, &pid);
	}
	since.ts = now;
	since.target = target;
	since.pad = 0;
	bpf_map_update_elem(&obs_runnable, &pid, &since, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(vc_obs_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(vc_obs_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vc_obs_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state)
{
	__u32 pid, target;
	struct vc_obs_stats *s;
	struct vc_obs_since *r, since;
	__u64 now = 0;

	s = stats_of(task_cgroup(prev), &target);
	if (s) {
		now = bpf_ktime_get_ns();
		pid = BPF_CORE_READ(prev, pid);
		since.ts = now;
		since.target = target;
		since.pad = 0;
		if (prev_state ==
		    0) /* TASK_RUNNING: preempted or throttled, still waiting for a CPU */
			bpf_map_update_elem(&obs_runnable, &pid, &since, BPF_ANY);
		else if (BPF_CORE_READ_BITFIELD_PROBED(prev, in_iowait))
			bpf_map_update_elem(&obs_iowait, &pid, &since, BPF_ANY);
	}
	pid = BPF_CORE_READ(next, pid);
	r = bpf_map_lookup_elem(&obs_runnable, &pid);
	if (!r)
		return 0;
	target = r->target;
	if (!now)
		now = bpf_ktime_get_ns();
	s = bpf_map_lookup_elem(&obs_stats, &target);
	if (s && now > r->ts) {
		__sync_fetch_and_add(&s->runq_samples, 1);
		hist_add(s->runq_hist, now - r->ts);
	}
	bpf_map_delete_elem(&obs_runnable, &pid);
	return 0;
}

SEC("tp_btf/block_bio_queue")
int BPF_PROG(vc_obs_bio_queue, struct bio *bio)
{
	/* The bio's blkio cgroup (v1's blkio hierarchy or v2): whoever dispatches it. */
	struct vc_obs_stats *s =
	        stats_of(BPF_CORE_READ(bio, bi_blkg, blkcg, css.cgroup, kn, id), 0);

	if (!s)
		return 0;
	__sync_fetch_and_add(&s->block_io_ops, 1);
	__sync_fetch_and_add(&s->block_io_bytes, BPF_CORE_READ(bio, bi_iter.bi_size));
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(vc_obs_oom, struct task_struct *task, uid_t uid)
{
	__u32 target;
	struct vc_obs_stats *s = stats_of(task_cgroup(task), &target);

	if (!s)
		return 0;
	__sync_fetch_and_add(&s->oom_kills, 1);
	record_event(VC_OBS_OOM, target, task);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vc_obs_exit, struct task_struct *task)
{
	__u32 target;
	struct vc_obs_stats *s;

	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0; /* a thread: the process exits with its leader */
	s = stats_of(bpf_get_current_cgroup_id(), &target);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->process_exits, 1);
	record_event(VC_OBS_EXIT, target, task);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
