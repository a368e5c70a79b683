// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The match of the packet data path's kept iptables rules (xt_bpf, run as a
 * socket filter on each packet the rule sees, from its IP header): does this
 * packet belong to the fault in slot `vc_qm_slot_index`? One object is loaded
 * per slot with that constant set; all share the maps. The rules of a netns
 * stay while it has faults (src/targets/queue-slots.ts), so injecting a fault
 * is filling its slot, and reverting it clearing the flag: no iptables commit.
 * The same slots hold inbound proxies' REDIRECTs (nat PREROUTING, vc_qm_redirect). */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "queue-match.h"

VC_EXPORT_ENUM(vc_qm_limits);
VC_EXPORT_ENUM(vc_qm_flags);

const volatile __u32 vc_qm_slot_index = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VC_QM_SLOTS);
	__type(key, __u32);
	__type(value, struct vc_qm_slot);
} qm_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vc_qm_port_key);
	__type(value, __u8);
} qm_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct vc_qm_flow_key);
	__type(value, __u8);
} qm_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct vc_qm_proxy_key);
	__type(value, __u8);
} qm_proxies SEC(".maps");

struct qm_packet {
	__u8 local[16];
	__u8 remote[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 flags; /* TCP flags byte */
};

/* The TCP packet's addresses and ports as the target sees them; false if it is not TCP (or an IPv6
 * extension header comes first). */
static __always_inline bool qm_parse(struct __sk_buff *skb, bool egress, struct qm_packet *p)
{
	__u8 first;
	__u8 src[16] = {}, dst[16] = {};
	__u32 off;

	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return false;
	if ((first >> 4) == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP)
			return false;
		src[10] = src[11] = dst[10] = dst[11] = 0xff;
		__builtin_memcpy(&src[12], &ip.saddr, 4);
		__builtin_memcpy(&dst[12], &ip.daddr, 4);
		off = (__u32)ip.ihl * 4;
	} else if ((first >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) || ip6.nexthdr != IPPROTO_TCP)
			return false;
		__builtin_memcpy(src, &ip6.saddr, 16);
		__builtin_memcpy(dst, &ip6.daddr, 16);
		off = sizeof(ip6);
	} else {
		return false;
	}
	__u8 th[14];

	if (off > 60 || bpf_skb_load_bytes(skb, off, th, sizeof(th)))
		return false;
	__u16 sport = ((__u16)th[0] << 8) | th[1], dport = ((__u16)th[2] << 8) | th[3];

	p->flags = th[13];
	if (egress) {
		__builtin_memcpy(p->local, src, 16);
		__builtin_memcpy(p->remote, dst, 16);
		p->local_port = sport;
		p->remote_port = dport;
	} else {
		__builtin_memcpy(p->local, dst, 16);
		__builtin_memcpy(p->remote, src, 16);
		p->local_port = dport;
		p->remote_port = sport;
	}
	return true;
}

static __always_inline bool qm_in_prefix(const __u8 *addr, const __u8 *net, __u32 prefix)
{
	for (int i = 0; i < 16; i++) {
		__u32 bits = prefix > (__u32)i * 8 ? prefix - (__u32)i * 8 : 0;

		if (bits == 0)
			return true;
		__u8 mask = bits >= 8 ? 0xff : (__u8)(0xff << (8 - bits));

		if ((addr[i] ^ net[i]) & mask)
			return false;
	}
	return true;
}

static __always_inline bool qm_peer_ok(struct vc_qm_slot *s, const __u8 *remote)
{
	__u32 n = s->npeers;

	if (n == 0)
		return true;
	for (int i = 0; i < VC_QM_PEERS; i++) {
		if ((__u32)i >= n)
			break;
		if (qm_in_prefix(remote, &s->peer_addr[i * 16], s->peer_prefix[i]))
			return true;
	}
	return false;
}

static __always_inline int qm_match(struct __sk_buff *skb, bool egress, bool redirect)
{
	__u32 slot = vc_qm_slot_index;
	struct vc_qm_slot *s = bpf_map_lookup_elem(&qm_slots, &slot);
	struct qm_packet p = {};

	if (!s || !(s->flags & VC_QM_ACTIVE))
		return 0;
	if (!(s->flags & VC_QM_REDIRECT) != !redirect)
		return 0;
	if (!qm_parse(skb, egress, &p))
		return 0;
	/* A SYN coming to the target: it listens on that port (if it started after the inject too).
	 */
	if (!egress && (p.flags & 0x12) == 0x02) {
		struct vc_qm_port_key learn = { .slot = slot, .gen = s->gen, .port = p.local_port };
		__u8 one = 1;

		bpf_map_update_elem(&qm_ports, &learn, &one, BPF_NOEXIST);
	}
	if (!egress && !redirect && !(s->flags & VC_QM_BOTH_HOOKS))
		return 0;
	if ((s->flags & VC_QM_FIN_ONLY) && !(p.flags & 0x01))
		return 0;
	/* A REDIRECT takes a connection by its SYN: nat sees no other packet of it. */
	if (redirect && (p.flags & 0x12) != 0x02)
		return 0;

	struct vc_qm_proxy_key pk = { .slot = slot, .port = p.remote_port };

	__builtin_memcpy(pk.addr, p.remote, 16);
	if (bpf_map_lookup_elem(&qm_proxies, &pk))
		goto hit;
	__builtin_memset(pk.addr, 0, 16);
	pk.port = p.local_port;
	if (bpf_map_lookup_elem(&qm_proxies, &pk) && qm_peer_ok(s, p.remote))
		goto hit;

	struct vc_qm_port_key lk = { .slot = slot, .gen = s->gen, .port = p.local_port };
	bool listening = bpf_map_lookup_elem(&qm_ports, &lk) != NULL;
	bool has_port = s->flags & VC_QM_PORT;

	if (s->flags & VC_QM_INBOUND) {
		if ((has_port ? p.local_port == s->port : listening) && qm_peer_ok(s, p.remote))
			goto hit;
	}
	if (s->flags & VC_QM_OUTBOUND_ALL) {
		if (!listening && (!has_port || p.remote_port == s->port) &&
		    qm_peer_ok(s, p.remote))
			goto hit;
	}
	if (s->flags & VC_QM_OUTBOUND_LISTED) {
		struct vc_qm_flow_key fk = { .slot = slot,
			                     .local_port = p.local_port,
			                     .remote_port = p.remote_port };

		__builtin_memcpy(fk.local, p.local, 16);
		__builtin_memcpy(fk.remote, p.remote, 16);
		if (bpf_map_lookup_elem(&qm_flows, &fk))
			goto hit;
	}
	return 0;
hit:
	__sync_fetch_and_add(&s->matched, 1);
	return 1;
}

SEC("socket")
int vc_qm_output(struct __sk_buff *skb)
{
	return qm_match(skb, true, false);
}

SEC("socket")
int vc_qm_input(struct __sk_buff *skb)
{
	return qm_match(skb, false, false);
}

/* nat PREROUTING: a new connection to the target that an inbound proxy slot takes. */
SEC("socket")
int vc_qm_redirect(struct __sk_buff *skb)
{
	return qm_match(skb, false, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
