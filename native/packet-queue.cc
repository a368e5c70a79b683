// SPDX-License-Identifier: Apache-2.0
// The packet data path: an NFQUEUE reader in a target's network namespace.
// iptables rules there (src/targets/queue-rules.ts) queue the target's packets
// to a queue of ours; a thread of this process holds each one as the policy
// says and gives it back to the kernel (NF_ACCEPT), drops it, or resets its
// connection (SOCK_DESTROY). Because it works on packets, it reaches every
// connection the rules match: those the target accepts, those it opens, and
// those already open when the fault began. IPv4 and IPv6 packets come to the
// same queue (iptables and ip6tables rules). Raw netlink, no libnetfilter_queue.
//
// Policies:
//   delay  every packet is held delayMs (+/- jitterMs, seeded), order kept;
//   hold   a flow's packets pass until afterBytes payload bytes went through it
//          (both ways), then are held until the queue closes (a stall that
//          ends with every held packet delivered, not a broken connection);
//   reset  a chosen flow (percent, seeded) is reset once afterBytes went
//          through it or afterMs after we first saw it: the local socket is
//          destroyed (the target gets an error, the peer an RST) and the
//          packet that crossed the limit is dropped. When the peer's socket is
//          in this process's own namespace (our proxies: a connection a proxy
//          carries for the target; or a host process), it is destroyed too:
//          the RST would reach it only if its sequence number were exact, and
//          the challenge ACK it answers an inexact one with is rate-limited
//          per socket (tcp_invalid_ratelimit), so the peer could stay open.
// close() gives every held packet back (NF_ACCEPT) before unbinding: a queue
// that is unbound drops what it still holds. reset() gives them back too but
// stays bound, forgets every flow and count, and takes a new policy if given:
// the kept rules of a netns keep one reader per slot from fault to fault.
//
// Timing (delay): a packet is held from the time the kernel queued it (the
// NFQA_TIMESTAMP the kernel adds while some socket asks for receive
// timestamps, which we do from the first queue on), else from the time
// we read it. The thread sleeps on a timerfd armed at the next due time
// (absolute, CLOCK_MONOTONIC: no poll() timeout rounding and no timer slack)
// and gives back everything due by then in one batch verdict. After an idle
// wait the timer fires early by the CPU's wake-up time (learned from the
// timer's own lateness) and the thread spins the rest, within a CPU budget.
#include "packet-queue.h"
#include "netns.h"

#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kModeDelay = 0;
constexpr int kModeHold = 1;
constexpr int kModeReset = 2;
constexpr size_t kMaxFlows = 65536;

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double RealMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Packets due within this much of the one the timer woke us for go in the same
// batch (a wake-up costs more than that).
constexpr double kBatchMs = 0.02;

// A CPU that idled this long before a due time takes a while to wake (a
// virtual CPU halted: a fraction of a ms): the timer fires early by the
// wake-up time learned and the reader spins the rest, at most kSpinMaxMs per
// wake-up and kSpinShare of a CPU overall.
constexpr double kIdleMs = 1.0;
constexpr double kSpinMaxMs = 0.5;
constexpr double kSpinShare = 0.02;
constexpr double kSpinBudgetMaxMs = 2.0;

// The kernel stamps a queued packet (NFQA_TIMESTAMP) only while some socket on
// the machine asks for receive timestamps: one socket with SO_TIMESTAMP, opened
// with the first queue and kept for the life of the process (closed with it,
// even on SIGKILL). Kept, not closed with the last queue: turning timestamps
// on and off patches kernel code each time, in a loop of injects and reverts.
void StampOn() {
  static std::once_flag once;
  std::call_once(once, [] {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one));
  });
}

// xorshift64*: a seeded stream of doubles in [0, 1).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 2654435761ULL + 0x9E3779B97F4A7C15ULL) {
    if (s == 0) s = 1;
  }
  double Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<double>((s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
  }
};

// An address (IPv6, network order) that is a v4-mapped IPv4 one.
bool IsV4Mapped(const uint8_t a[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a, prefix, 12) == 0;
}

// A connection as the target sees it (local = the target's side). Addresses
// are IPv6, network order; an IPv4 one is v4-mapped (::ffff:a.b.c.d).
struct FlowKey {
  uint8_t local[16], remote[16];
  uint16_t lport, rport;
  bool operator==(const FlowKey &o) const {
    return memcmp(local, o.local, 16) == 0 && memcmp(remote, o.remote, 16) == 0 && lport == o.lport && rport == o.rport;
  }
};
struct FlowHash {
  size_t operator()(const FlowKey &k) const {
    size_t h = (static_cast<size_t>(k.lport) << 16) | k.rport;
    for (int i = 0; i < 16; i += 4) {
      uint32_t a, b;
      memcpy(&a, k.local + i, 4);
      memcpy(&b, k.remote + i, 4);
      h = (h * 131071) ^ a;
      h = (h * 31) ^ b;
    }
    return h;
  }
};

// An IPv4 address (network order, 4 bytes) as v4-mapped IPv6.
void MapV4(uint8_t out[16], const uint8_t *v4) {
  memset(out, 0, 10);
  out[10] = 0xff;
  out[11] = 0xff;
  memcpy(out + 12, v4, 4);
}
struct Flow {
  double startMs;
  uint64_t bytes = 0;
  bool chosen = true;
  bool done = false;  // stalled (hold) or reset (reset)
};

struct Held {
  uint32_t id;
  double dueMs;
};

struct Config {
  std::string netns;
  uint16_t queue;
  int mode;
  double delayMs, jitterMs;
  uint64_t seed;
  int64_t afterBytes;  // -1: none
  double afterMs;      // < 0: none
  double percent;
  uint32_t maxlen;
};

struct Sockets {
  int nl = -1;
  int diag = -1;
  int err = 0;
  std::string what;
};

// Opens the netlink sockets inside the target's network namespace: a
// short-lived thread enters it, so this process's own threads never change
// namespace. A socket keeps the namespace it was created in.
Sockets OpenInNetns(const std::string &netns) {
  Sockets out;
  RunInNetns(netns, out, [](Sockets &o) {
    o.nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (o.nl < 0) {
      o.err = errno;
      o.what = "socket(NETLINK_NETFILTER)";
      return;
    }
    o.diag = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (o.diag < 0) {
      o.err = errno;
      o.what = "socket(NETLINK_SOCK_DIAG)";
    }
  });
  return out;
}

// A netlink message under construction.
struct Msg {
  alignas(nlmsghdr) char buf[256];
  nlmsghdr *h() { return reinterpret_cast<nlmsghdr *>(buf); }
  Msg(uint16_t type, uint16_t flags, uint16_t resId) {
    memset(buf, 0, sizeof(buf));
    h()->nlmsg_len = NLMSG_LENGTH(sizeof(nfgenmsg));
    h()->nlmsg_type = type;
    h()->nlmsg_flags = NLM_F_REQUEST | flags;
    auto *g = reinterpret_cast<nfgenmsg *>(NLMSG_DATA(h()));
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(resId);
  }
  void Attr(uint16_t type, const void *data, size_t len) {
    auto *a = reinterpret_cast<nlattr *>(buf + NLMSG_ALIGN(h()->nlmsg_len));
    a->nla_type = type;
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    memcpy(reinterpret_cast<char *>(a) + NLA_HDRLEN, data, len);
    h()->nlmsg_len = NLMSG_ALIGN(h()->nlmsg_len) + NLA_ALIGN(a->nla_len);
  }
};

int SendMsg(int fd, Msg &m) {
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  ssize_t n = sendto(fd, m.buf, m.h()->nlmsg_len, 0, reinterpret_cast<sockaddr *>(&to), sizeof(to));
  return n < 0 ? errno : 0;
}

// Sends a request with NLM_F_ACK and waits for its answer: 0 or the errno.
int Request(int fd, Msg &m) {
  static std::atomic<uint32_t> seq{1};
  m.h()->nlmsg_seq = seq++;
  int err = SendMsg(fd, m);
  if (err) return err;
  alignas(nlmsghdr) char buf[8192];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == m.h()->nlmsg_seq) {
        return -reinterpret_cast<nlmsgerr *>(NLMSG_DATA(h))->error;
      }
    }
  }
}

class Queue {
 public:
  explicit Queue(const Config &c) : cfg_(c), rng_(c.seed) {}

  // Binds the queue; "" on success, else what failed (errno in err).
  std::string Open(int &err) {
    Sockets s = OpenInNetns(cfg_.netns);
    nl_ = s.nl;
    diag_ = s.diag;
    // For Destroy's peer side. This thread's namespace is the process's own (OpenInNetns enters the
    // target's on a thread of its own). Opened whatever the mode: a kept reader can be reset to 'reset'.
    ownDiag_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s.err) {
      err = s.err;
      return s.what;
    }
    int big = 8 << 20;
    setsockopt(nl_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    int one = 1;
    setsockopt(nl_, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(nl_, reinterpret_cast<sockaddr *>(&local), sizeof(local)) != 0) {
      err = errno;
      return "bind(netlink)";
    }
    const uint16_t type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG;
    {
      Msg m(type, NLM_F_ACK, cfg_.queue);
      nfqnl_msg_config_cmd cmd{};
      cmd.command = NFQNL_CFG_CMD_BIND;
      cmd.pf = htons(AF_INET);
      m.Attr(NFQA_CFG_CMD, &cmd, sizeof(cmd));
      if ((err = Request(nl_, m)) != 0) return "bind NFQUEUE " + std::to_string(cfg_.queue);
    }
    bound_ = true;
    {
      Msg m(type, NLM_F_ACK, cfg_.queue);
      nfqnl_msg_config_params p{};
      p.copy_range = htonl(160);  // the IP (v4, or v6 and its extension headers) and TCP headers: all we read
      p.copy_mode = NFQNL_COPY_PACKET;
      m.Attr(NFQA_CFG_PARAMS, &p, sizeof(p));
      uint32_t maxlen = htonl(cfg_.maxlen);
      m.Attr(NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
      // GSO: whole super-packets come to us unsegmented (we never change them).
      uint32_t flags = htonl(NFQA_CFG_F_GSO);
      m.Attr(NFQA_CFG_MASK, &flags, sizeof(flags));
      m.Attr(NFQA_CFG_FLAGS, &flags, sizeof(flags));
      if ((err = Request(nl_, m)) != 0) return "configure NFQUEUE " + std::to_string(cfg_.queue);
    }
    fcntl(nl_, F_SETFL, fcntl(nl_, F_GETFL) | O_NONBLOCK);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (wake_ < 0 || timer_ < 0) {
      err = errno;
      return "eventfd/timerfd";
    }
    StampOn();
    thread_ = std::thread([this] { Run(); });
    return "";
  }

  // Gives every held packet back, unbinds, joins the thread. Idempotent.
  void Close() {
    if (thread_.joinable()) {
      stop_ = true;
      uint64_t one = 1;
      (void)!write(wake_, &one, sizeof(one));
      thread_.join();
    }
    if (nl_ >= 0) {
      if (bound_) {
        Msg m((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG, 0, cfg_.queue);
        nfqnl_msg_config_cmd cmd{};
        cmd.command = NFQNL_CFG_CMD_UNBIND;
        m.Attr(NFQA_CFG_CMD, &cmd, sizeof(cmd));
        SendMsg(nl_, m);
      }
      // Closing a netfilter netlink socket waits for the kernel to finish
      // destroying the rules just deleted (nf_tables flushes its destroy work
      // on NETLINK_URELEASE, an RCU grace period: about 10 ms here), holding
      // the netns's commit lock meanwhile. The queue is already unbound:
      // nothing waits for that close, so a thread does it once that work is
      // done by itself (the next inject's rules then do not wait either).
      std::thread([fd = nl_] {
        usleep(200 * 1000);
        close(fd);
      }).detach();
      nl_ = -1;
    }
    if (diag_ >= 0) close(diag_);
    diag_ = -1;
    if (ownDiag_ >= 0) close(ownDiag_);
    ownDiag_ = -1;
    if (wake_ >= 0) close(wake_);
    wake_ = -1;
    if (timer_ >= 0) close(timer_);
    timer_ = -1;
  }

  // Flows already open when the fault began: their clock starts now.
  void AddFlows(const std::vector<FlowKey> &keys) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const FlowKey &k : keys) pending_.push_back(k);
    uint64_t one = 1;
    if (wake_ >= 0) (void)!write(wake_, &one, sizeof(one));
  }

  // Gives every held packet back and forgets every flow and count, on the
  // reader's thread. Without `next` it is waited for (what the reader read till
  // then went on with the old policy). With `next` (a new fault in a slot that
  // was reset at its last fault's end, so nothing old is queued) it is not:
  // the thread takes the new policy before it reads another packet, and the
  // packets that wake it are the new fault's, so an inject does not wait for the
  // reader's CPU to wake (tens of µs). Flows added after it are kept.
  void Reset(const Config *next) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!thread_.joinable() || stop_) return;
    pending_.clear();
    if (next) resetCfg_ = *next;
    resetWithCfg_ = next != nullptr;
    resetAsked_ = true;
    resetGen_++;
    uint64_t one = 1;
    (void)!write(wake_, &one, sizeof(one));
    if (!next) resetDone_.wait(lock, [this] { return !resetAsked_; });
  }

  struct Counters {
    std::atomic<double> packets{0}, delayed{0}, held{0}, dropped{0}, released{0}, flows{0}, flowsHit{0}, flowsSpared{0},
        bytes{0}, errors{0}, lastError{0};
    // Of the flows reset, those whose peer socket was in this process's namespace (destroyed too).
    std::atomic<double> peersClosed{0};
    // Timing (delay): packets that carried the kernel's queue time; the sum and
    // max of (read - queued) and of (given back - due), in ms.
    std::atomic<double> stamped{0}, readLagMsSum{0}, readLagMsMax{0}, lateMsSum{0}, lateMsMax{0};
    // The timer's learned wake-up time from idle (ms) and the time spent
    // spinning to the due time after waking that much early (ms).
    std::atomic<double> wakeMsMean{0}, spinMsSum{0};
  } c;

 private:
  void Run() {
    // A held packet is due at a set time: wake for it promptly (the timerfd has
    // no slack; this is for the rest), and ahead of ordinary threads when the
    // machine is busy (best effort: an unprivileged process keeps its nice value).
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), -10);
    double armed = -1;    // the due time the timer is armed for
    double armedAt = -1;  // when the timer fires: armed, less the wake-up lead
    while (!stop_) {
      double next = -1;
      if (!fifo_.empty()) next = fifo_.front().dueMs;
      if (cfg_.mode == kModeReset && cfg_.afterMs >= 0 && !deadlines_.empty()) {
        double d = deadlines_.front().second;
        if (next < 0 || d < next) next = d;
      }
      double pollAt = NowMs();
      if (next != armed) {
        itimerspec its{};
        armedAt = next;
        if (next >= 0) {
          // A held packet: wake early by the wake-up time we measured, if the
          // spin budget allows, and spin the rest (SpinUntil).
          if (!fifo_.empty() && next == fifo_.front().dueMs) armedAt = next - SpinLead(pollAt, next);
          // 0 would disarm: an instant already past is at least 1 ns.
          double sec = std::floor(armedAt / 1000);
          its.it_value.tv_sec = static_cast<time_t>(sec);
          its.it_value.tv_nsec = static_cast<long>((armedAt - sec * 1000) * 1e6);
          if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
        }
        timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr);
        armed = next;
      }
      pollfd fds[3] = {{nl_, POLLIN, 0}, {wake_, POLLIN, 0}, {timer_, POLLIN, 0}};
      if (poll(fds, 3, -1) < 0 && errno != EINTR) {
        c.errors = c.errors + 1;
        c.lastError = errno;
      }
      double woke = NowMs();
      uint64_t drain;
      bool timed = false;
      if (fds[2].revents & POLLIN) {
        (void)!read(timer_, &drain, sizeof(drain));
        // How late the timer woke us after sleeping (not a timer already past
        // when we polled): the wake-up time of an idle CPU, learned.
        if (armedAt - pollAt > kIdleMs) LearnWake(std::max(0.0, woke - armedAt));
        timed = true;
        armed = -1;  // expired: re-arm for whatever is next
      }
      if (fds[1].revents & POLLIN) (void)!read(wake_, &drain, sizeof(drain));
      if (ResetIfAsked()) {
        armed = -1;
        continue;
      }
      TakePending();
      ReadPackets();
      if (timed && !fifo_.empty()) SpinUntil(fifo_.front().dueMs);
      ReleaseDue(NowMs());
      if (cfg_.mode == kModeReset) ExpireFlows(NowMs());
    }
    // Closing: every packet still held goes on now.
    for (const Held &h : fifo_) Verdict(h.id, NF_ACCEPT);
    for (uint32_t id : stalled_) Verdict(id, NF_ACCEPT);
    c.released = c.released + static_cast<double>(fifo_.size() + stalled_.size());
    fifo_.clear();
    stalled_.clear();
  }

  // On the reader's thread: what the old policy still had (held, and without a
  // new policy what is queued: from before its slot was cleared) goes on; then
  // the new policy, if any, starts clean and takes what is queued.
  bool ResetIfAsked() {
    bool withCfg;
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!resetAsked_) return false;
      withCfg = resetWithCfg_;
      gen = resetGen_;
    }
    if (!withCfg) ReadPackets();
    for (const Held &h : fifo_) Verdict(h.id, NF_ACCEPT);
    for (uint32_t id : stalled_) Verdict(id, NF_ACCEPT);
    fifo_.clear();
    stalled_.clear();
    flows_.clear();
    deadlines_.clear();
    lastDue_ = 0;
    for (auto *a : {&c.packets, &c.delayed, &c.held, &c.dropped, &c.released, &c.flows, &c.flowsHit, &c.peersClosed,
                    &c.flowsSpared, &c.bytes, &c.errors, &c.lastError, &c.stamped, &c.readLagMsSum, &c.readLagMsMax,
                    &c.lateMsSum, &c.lateMsMax, &c.spinMsSum})
      a->store(0);
    std::unique_lock<std::mutex> lock(mu_);
    if (resetGen_ != gen) {
      // Asked again meanwhile (a reset without a policy after one with): that one.
      lock.unlock();
      return ResetIfAsked();
    }
    if (resetWithCfg_) {
      Config n = resetCfg_;
      n.netns = cfg_.netns;
      n.queue = cfg_.queue;
      n.maxlen = cfg_.maxlen;
      cfg_ = n;
      rng_ = Rng(n.seed);
    }
    resetAsked_ = false;
    resetDone_.notify_all();
    return true;
  }

  // Reads every message waiting on the queue socket (non-blocking).
  void ReadPackets() {
    alignas(nlmsghdr) static thread_local char buf[1 << 16];
    for (;;) {
      ssize_t n = recv(nl_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          c.errors = c.errors + 1;
          c.lastError = errno;
        }
        return;
      }
      double readAt = NowMs();
      double realAt = RealMs();
      for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) OnPacket(h, readAt, realAt);
      }
    }
  }

  // The timer's wake-up time from idle, as TCP estimates a round trip: a
  // smoothed mean and mean deviation of what we measured, in ms.
  void LearnWake(double sample) {
    sample = std::min(sample, kSpinMaxMs * 4);  // a preempted wake-up (load) is not the CPU's wake-up time
    double err = sample - wakeMean_;
    wakeMean_ += err / 8;
    wakeDev_ += (std::fabs(err) - wakeDev_) / 4;
    c.wakeMsMean = wakeMean_;
  }

  // How early to arm the timer for a packet due at `due`: the learned wake-up
  // time and four deviations (at most kSpinMaxMs), when the spin budget has it.
  // The budget grows kSpinShare ms per ms of time (at most kSpinBudgetMaxMs):
  // the reader spins at most that share of one CPU, whatever the traffic.
  double SpinLead(double now, double due) {
    if (spinBudgetAt_ > 0) spinBudget_ = std::min(kSpinBudgetMaxMs, spinBudget_ + (now - spinBudgetAt_) * kSpinShare);
    spinBudgetAt_ = now;
    double lead = std::min(kSpinMaxMs, wakeMean_ + 4 * wakeDev_);
    if (due - now <= kIdleMs || spinBudget_ < lead) return 0;  // not idle until then: the CPU is awake
    return lead;
  }

  // Woken early for a packet due at `due`: spins until then (reading what comes
  // meanwhile), so that it goes at its time and not at the CPU's wake-up time.
  void SpinUntil(double due) {
    double start = NowMs(), now = start;
    if (due <= now || due - now > kSpinMaxMs) return;
    while (now < due && !stop_) {
      ReadPackets();
      now = NowMs();
    }
    spinBudget_ -= now - start;
    c.spinMsSum = c.spinMsSum + (now - start);
  }

  void TakePending() {
    std::lock_guard<std::mutex> lock(mu_);
    double now = NowMs();
    for (const FlowKey &k : pending_) {
      if (flows_.count(k)) continue;
      Flow &f = NewFlow(k, now);
      (void)f;
    }
    pending_.clear();
  }

  Flow &NewFlow(const FlowKey &k, double now) {
    Flow f;
    f.startMs = now;
    if (cfg_.mode == kModeReset) {
      f.chosen = cfg_.percent >= 100 || rng_.Next() * 100 < cfg_.percent;
      if (f.chosen && cfg_.afterMs >= 0) deadlines_.emplace_back(k, now + cfg_.afterMs);
      if (!f.chosen) c.flowsSpared = c.flowsSpared + 1;
    }
    c.flows = c.flows + 1;
    if (flows_.size() >= kMaxFlows) flows_.clear();
    return flows_.emplace(k, f).first->second;
  }

  void Verdict(uint32_t id, uint32_t verdict) {
    Msg m((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT, 0, cfg_.queue);
    nfqnl_msg_verdict_hdr v{};
    v.verdict = htonl(verdict);
    v.id = htonl(id);
    m.Attr(NFQA_VERDICT_HDR, &v, sizeof(v));
    int err = SendMsg(nl_, m);
    if (err) {
      c.errors = c.errors + 1;
      c.lastError = err;
    }
  }

  // Accepts every queued packet up to and including id (they are in id order).
  void VerdictBatch(uint32_t id) {
    Msg m((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT_BATCH, 0, cfg_.queue);
    nfqnl_msg_verdict_hdr v{};
    v.verdict = htonl(NF_ACCEPT);
    v.id = htonl(id);
    m.Attr(NFQA_VERDICT_HDR, &v, sizeof(v));
    int err = SendMsg(nl_, m);
    if (err) {
      c.errors = c.errors + 1;
      c.lastError = err;
    }
  }

  void ReleaseDue(double now) {
    size_t n = 0;
    uint32_t last = 0;
    while (!fifo_.empty() && fifo_.front().dueMs <= now + kBatchMs) {
      double late = std::max(0.0, now - fifo_.front().dueMs);
      c.lateMsSum = c.lateMsSum + late;
      if (late > c.lateMsMax) c.lateMsMax = late;
      last = fifo_.front().id;
      fifo_.pop_front();
      n++;
    }
    if (n == 0) return;
    // Delay mode queues every packet and releases them in arrival order, so
    // one batch verdict covers them all.
    if (n == 1)
      Verdict(last, NF_ACCEPT);
    else
      VerdictBatch(last);
    c.released = c.released + static_cast<double>(n);
  }

  void ExpireFlows(double now) {
    while (!deadlines_.empty() && deadlines_.front().second <= now) {
      FlowKey k = deadlines_.front().first;
      deadlines_.pop_front();
      auto it = flows_.find(k);
      if (it == flows_.end() || it->second.done) continue;
      it->second.done = true;
      c.flowsHit = c.flowsHit + 1;
      Destroy(k);
    }
  }

  // Destroys the target's socket of this flow: the target's call fails, the
  // peer gets an RST. The peer's socket is destroyed too when it is in this
  // process's namespace (see the header).
  void Destroy(const FlowKey &k) {
    if (!DestroyIn(diag_, k.local, k.lport, k.remote, k.rport)) {
      c.errors = c.errors + 1;
      c.lastError = ENOENT;
    }
    if (ownDiag_ >= 0 && DestroyIn(ownDiag_, k.remote, k.rport, k.local, k.lport)) c.peersClosed = c.peersClosed + 1;
  }

  // SOCK_DESTROY of the TCP socket (src, sport) -> (dst, dport) on this diag
  // socket's namespace (v4-mapped addresses for IPv4); true if one was. Sockets
  // of a dual-stack listener are AF_INET6 with v4-mapped addresses, so both
  // families are tried for an IPv4 connection.
  static bool DestroyIn(int diag, const uint8_t src[16], uint16_t sport, const uint8_t dst[16], uint16_t dport) {
    const bool v4 = IsV4Mapped(src) && IsV4Mapped(dst);
    for (int family : {AF_INET, AF_INET6}) {
      struct {
        nlmsghdr h;
        inet_diag_req_v2 r;
      } req{};
      req.h.nlmsg_len = sizeof(req);
      req.h.nlmsg_type = SOCK_DESTROY;
      req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
      static std::atomic<uint32_t> seq{1};
      req.h.nlmsg_seq = seq++;
      req.r.sdiag_family = static_cast<__u8>(family);
      req.r.sdiag_protocol = IPPROTO_TCP;
      req.r.idiag_states = ~0U;
      req.r.id.idiag_sport = htons(sport);
      req.r.id.idiag_dport = htons(dport);
      if (family == AF_INET) {
        if (!v4) continue;  // an IPv6 connection has only its AF_INET6 socket
        memcpy(req.r.id.idiag_src, src + 12, 4);
        memcpy(req.r.id.idiag_dst, dst + 12, 4);
      } else {
        memcpy(req.r.id.idiag_src, src, 16);
        memcpy(req.r.id.idiag_dst, dst, 16);
      }
      req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
      req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
      sockaddr_nl to{};
      to.nl_family = AF_NETLINK;
      if (sendto(diag, &req, sizeof(req), 0, reinterpret_cast<sockaddr *>(&to), sizeof(to)) < 0) continue;
      alignas(nlmsghdr) char buf[1024];
      ssize_t n = recv(diag, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      auto *h = reinterpret_cast<nlmsghdr *>(buf);
      if (NLMSG_OK(h, n) && h->nlmsg_type == NLMSG_ERROR && reinterpret_cast<nlmsgerr *>(NLMSG_DATA(h))->error == 0)
        return true;
    }
    return false;
  }

  // readAt: when we read it (CLOCK_MONOTONIC ms); realAt: the same instant on CLOCK_REALTIME.
  void OnPacket(nlmsghdr *h, double readAt, double realAt) {
    const nfqnl_msg_packet_hdr *ph = nullptr;
    const nfqnl_msg_packet_timestamp *stamp = nullptr;
    const uint8_t *payload = nullptr;
    size_t plen = 0;
    auto *a = reinterpret_cast<nlattr *>(static_cast<char *>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(nfgenmsg)));
    int len = static_cast<int>(h->nlmsg_len) - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(nfgenmsg)));
    while (len >= static_cast<int>(NLA_HDRLEN) && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
      const void *data = reinterpret_cast<char *>(a) + NLA_HDRLEN;
      uint16_t type = a->nla_type & NLA_TYPE_MASK;
      if (type == NFQA_PACKET_HDR) ph = static_cast<const nfqnl_msg_packet_hdr *>(data);
      if (type == NFQA_TIMESTAMP && a->nla_len >= NLA_HDRLEN + sizeof(nfqnl_msg_packet_timestamp))
        stamp = static_cast<const nfqnl_msg_packet_timestamp *>(data);
      if (type == NFQA_PAYLOAD) {
        payload = static_cast<const uint8_t *>(data);
        plen = a->nla_len - NLA_HDRLEN;
      }
      len -= NLA_ALIGN(a->nla_len);
      a = reinterpret_cast<nlattr *>(reinterpret_cast<char *>(a) + NLA_ALIGN(a->nla_len));
    }
    if (!ph) return;
    uint32_t id = ntohl(ph->packet_id);
    c.packets = c.packets + 1;

    // TCP over IPv4 or IPv6: the flow, its payload size, its flags.
    bool tcp = false;
    FlowKey k{};
    uint32_t dataLen = 0;
    bool rst = false;
    uint8_t src[16], dst[16];
    size_t l4 = 0;       // where the TCP header starts
    size_t ipTotal = 0;  // the IP packet's length, headers included
    if (payload && plen >= 20 && (payload[0] >> 4) == 4 && payload[9] == IPPROTO_TCP) {
      l4 = (payload[0] & 0xf) * 4u;
      ipTotal = static_cast<size_t>(payload[2] << 8 | payload[3]);
      MapV4(src, payload + 12);
      MapV4(dst, payload + 16);
    } else if (payload && plen >= 40 && (payload[0] >> 4) == 6) {
      ipTotal = 40 + static_cast<size_t>(payload[4] << 8 | payload[5]);
      memcpy(src, payload + 8, 16);
      memcpy(dst, payload + 24, 16);
      // Walk the extension headers (hop-by-hop, routing, destination options, fragment) to TCP.
      uint8_t next = payload[6];
      size_t off = 40;
      while (off + 8 <= plen && (next == 0 || next == 43 || next == 60 || next == 44)) {
        size_t hlen = next == 44 ? 8 : (payload[off + 1] + 1u) * 8;
        if (next == 44 && (payload[off + 2] << 8 | payload[off + 3]) & 0xfff8) break;  // not a first fragment
        next = payload[off];
        off += hlen;
      }
      if (next == IPPROTO_TCP) l4 = off;
    }
    if (l4 && plen >= l4 + 14) {
      tcp = true;
      uint16_t sport = static_cast<uint16_t>(payload[l4] << 8 | payload[l4 + 1]);
      uint16_t dport = static_cast<uint16_t>(payload[l4 + 2] << 8 | payload[l4 + 3]);
      size_t doff = (payload[l4 + 12] >> 4) * 4u;
      dataLen = ipTotal > l4 + doff ? static_cast<uint32_t>(ipTotal - l4 - doff) : 0;
      rst = payload[l4 + 13] & 0x04;
      bool out = ph->hook == NF_INET_LOCAL_OUT || ph->hook == NF_INET_POST_ROUTING;
      memcpy(k.local, out ? src : dst, 16);
      memcpy(k.remote, out ? dst : src, 16);
      k.lport = out ? sport : dport;
      k.rport = out ? dport : sport;
    }
    // When the kernel queued it: its stamp is CLOCK_REALTIME (a packet's own
    // receive time, or the queueing time), or on older kernels a TCP packet's
    // CLOCK_MONOTONIC departure time; whichever clock it is near. A stamp that
    // is neither (in the future, or over a second old) is not used.
    double now = readAt;
    if (stamp) {
      uint64_t sec = be64toh(stamp->sec), usec = be64toh(stamp->usec);
      double ms = static_cast<double>(sec) * 1e3 + static_cast<double>(usec) / 1e3;
      double lagReal = realAt - ms, lagMono = readAt - ms;
      double lag = std::fabs(lagReal) < std::fabs(lagMono) ? lagReal : lagMono;
      if (lag >= -0.01 && lag <= 1000) {
        lag = std::max(0.0, lag);
        now = readAt - lag;
        c.stamped = c.stamped + 1;
        c.readLagMsSum = c.readLagMsSum + lag;
        if (lag > c.readLagMsMax) c.readLagMsMax = lag;
      }
    }
    Flow *flow = nullptr;
    if (tcp) {
      auto it = flows_.find(k);
      flow = it != flows_.end() ? &it->second : &NewFlow(k, now);
      flow->bytes += dataLen;
      c.bytes = c.bytes + dataLen;
    }

    switch (cfg_.mode) {
      case kModeDelay: {
        double d = cfg_.delayMs;
        if (cfg_.jitterMs > 0) d = std::max(0.0, d + (rng_.Next() * 2 - 1) * cfg_.jitterMs);
        double due = std::max(now + d, lastDue_);
        lastDue_ = due;
        fifo_.push_back({id, due});
        c.delayed = c.delayed + 1;
        return;
      }
      case kModeHold: {
        if (flow && !flow->done && (cfg_.afterBytes < 0 || flow->bytes <= static_cast<uint64_t>(cfg_.afterBytes))) {
          Verdict(id, NF_ACCEPT);
          return;
        }
        if (flow && !flow->done) {
          flow->done = true;
          c.flowsHit = c.flowsHit + 1;
        }
        stalled_.push_back(id);
        c.held = c.held + 1;
        return;
      }
      case kModeReset:
      default: {
        if (!flow || !flow->chosen || rst) {
          Verdict(id, NF_ACCEPT);
          return;
        }
        bool over = cfg_.afterBytes >= 0 && flow->bytes > static_cast<uint64_t>(cfg_.afterBytes);
        bool late = cfg_.afterMs >= 0 && now - flow->startMs >= cfg_.afterMs;
        if (!flow->done && (over || late)) {
          flow->done = true;
          c.flowsHit = c.flowsHit + 1;
          Verdict(id, NF_DROP);
          c.dropped = c.dropped + 1;
          Destroy(k);
          return;
        }
        // After the reset the socket is gone: what still comes (the peer's answer
        // to our RST, its challenge ACK) must reach the kernel, which resets it.
        Verdict(id, NF_ACCEPT);
        return;
      }
    }
  }

  Config cfg_;
  Rng rng_;
  int nl_ = -1, diag_ = -1, ownDiag_ = -1, wake_ = -1, timer_ = -1;
  bool bound_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::deque<Held> fifo_;
  double wakeMean_ = 0.1, wakeDev_ = 0.05;  // the timer's wake-up time from idle, ms (learned)
  double spinBudget_ = kSpinBudgetMaxMs, spinBudgetAt_ = 0;
  std::vector<uint32_t> stalled_;
  double lastDue_ = 0;
  std::unordered_map<FlowKey, Flow, FlowHash> flows_;
  std::deque<std::pair<FlowKey, double>> deadlines_;
  std::mutex mu_;
  std::vector<FlowKey> pending_;
  std::condition_variable resetDone_;
  bool resetAsked_ = false, resetWithCfg_ = false;
  uint64_t resetGen_ = 0;
  Config resetCfg_;
};

class PacketQueue : public Napi::ObjectWrap<PacketQueue> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(
        env, "PacketQueue",
        {InstanceMethod("stats", &PacketQueue::Stats), InstanceMethod("addFlows", &PacketQueue::AddFlows),
         InstanceMethod("reset", &PacketQueue::Reset), InstanceMethod("close", &PacketQueue::Close)});
  }

  // new PacketQueue({ netns, queue, mode, delayMs, jitterMs, seed, afterBytes, afterMs, percent, maxlen })
  explicit PacketQueue(const Napi::CallbackInfo &info) : Napi::ObjectWrap<PacketQueue>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "PacketQueue(options)").ThrowAsJavaScriptException();
      return;
    }
    Config c = Parse(info[0].As<Napi::Object>());
    q_ = new Queue(c);
    int err = 0;
    std::string what = q_->Open(err);
    if (!what.empty()) {
      q_->Close();
      delete q_;
      q_ = nullptr;
      Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
      e.Set("errno", Napi::Number::New(env, err));
      e.Set("code", Napi::String::New(env, err == EBUSY ? "EBUSY" : err == EPERM ? "EPERM" : "EQUEUE"));
      e.ThrowAsJavaScriptException();
    }
  }

  static Config Parse(Napi::Object o) {
    auto num = [&](const char *k, double d) {
      Napi::Value v = o.Get(k);
      return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d;
    };
    Config c;
    Napi::Value netns = o.Get("netns");
    c.netns = netns.IsString() ? netns.As<Napi::String>().Utf8Value() : "";
    c.queue = static_cast<uint16_t>(num("queue", 0));
    std::string mode = o.Get("mode").ToString().Utf8Value();
    c.mode = mode == "delay" ? kModeDelay : mode == "hold" ? kModeHold : kModeReset;
    c.delayMs = num("delayMs", 0);
    c.jitterMs = num("jitterMs", 0);
    c.seed = static_cast<uint64_t>(num("seed", 1));
    c.afterBytes = static_cast<int64_t>(num("afterBytes", -1));
    c.afterMs = num("afterMs", -1);
    c.percent = num("percent", 100);
    c.maxlen = static_cast<uint32_t>(num("maxlen", 65536));
    return c;
  }

  ~PacketQueue() override {
    if (q_) {
      q_->Close();
      delete q_;
    }
  }

 private:
  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!q_) return o;
    auto &c = q_->c;
    o.Set("packets", c.packets.load());
    o.Set("delayed", c.delayed.load());
    o.Set("held", c.held.load());
    o.Set("dropped", c.dropped.load());
    o.Set("released", c.released.load());
    o.Set("flows", c.flows.load());
    o.Set("flowsHit", c.flowsHit.load());
    o.Set("peersClosed", c.peersClosed.load());
    o.Set("flowsSpared", c.flowsSpared.load());
    o.Set("bytes", c.bytes.load());
    o.Set("errors", c.errors.load());
    o.Set("lastError", c.lastError.load());
    o.Set("stamped", c.stamped.load());
    o.Set("readLagMsSum", c.readLagMsSum.load());
    o.Set("readLagMsMax", c.readLagMsMax.load());
    o.Set("lateMsSum", c.lateMsSum.load());
    o.Set("lateMsMax", c.lateMsMax.load());
    o.Set("wakeMsMean", c.wakeMsMean.load());
    o.Set("spinMsSum", c.spinMsSum.load());
    return o;
  }

  // addFlows([[local, lport, remote, rport], ...]) with addresses as text (dotted IPv4 or IPv6).
  Napi::Value AddFlows(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!q_ || info.Length() < 1 || !info[0].IsArray()) return env.Undefined();
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<FlowKey> keys;
    auto address = [&](Napi::Value v, uint8_t out[16]) {
      std::string text = v.ToString().Utf8Value();
      uint8_t v4[4];
      if (inet_pton(AF_INET, text.c_str(), v4) == 1) {
        MapV4(out, v4);
        return true;
      }
      return inet_pton(AF_INET6, text.c_str(), out) == 1;
    };
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Array t = a.Get(i).As<Napi::Array>();
      FlowKey k{};
      if (!address(t.Get(0u), k.local) || !address(t.Get(2u), k.remote)) {
        Napi::TypeError::New(env, "addFlows: not an IP address").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      k.lport = static_cast<uint16_t>(t.Get(1u).As<Napi::Number>().Uint32Value());
      k.rport = static_cast<uint16_t>(t.Get(3u).As<Napi::Number>().Uint32Value());
      keys.push_back(k);
    }
    q_->AddFlows(keys);
    return info.Env().Undefined();
  }

  // reset([options]): every held packet goes on, flows and counts start over; options: a new policy (mode, delayMs,
  // ...).
  Napi::Value Reset(const Napi::CallbackInfo &info) {
    if (!q_) return info.Env().Undefined();
    if (info.Length() > 0 && info[0].IsObject()) {
      Config c = Parse(info[0].As<Napi::Object>());
      q_->Reset(&c);
    } else {
      q_->Reset(nullptr);
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    if (q_) {
      q_->Close();
      delete q_;
      q_ = nullptr;
    }
    return info.Env().Undefined();
  }

  Queue *q_ = nullptr;
};

}  // namespace

void InitPacketQueue(Napi::Env env, Napi::Object exports) { exports.Set("PacketQueue", PacketQueue::Init(env)); }
