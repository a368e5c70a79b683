// SPDX-License-Identifier: Apache-2.0
// TCP sockets of this process inside a target's network namespace (IPv4 and IPv6): a listener
// that a NAT REDIRECT there sends the target's accepted connections to (the
// inbound side of the http fault), and the local connections it opens to the
// target's own server. A short-lived thread enters the namespace, makes the
// socket and leaves with it: a socket keeps the namespace it was made in, and
// this process's own threads never change namespace. Node wraps the returned
// file descriptors (net.Server.listen({ fd }), new net.Socket({ fd })).
#include "netns-socket.h"
#include "netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Made {
  int fd = -1;
  int err = 0;
  std::string what;
};

// Runs make() on a thread inside netns; the socket it returns stays there.
template <typename F>
Made InNetns(const std::string &netns, F make) {
  Made out;
  RunInNetns(netns, out, make);
  return out;
}

// The TCP sockets of the namespace, IPv4 and IPv6, by one sock_diag dump per
// family with only the states asked. LISTEN alone: the kernel walks its
// listening hash (tens of µs). ESTABLISHED: it walks the host's whole
// established hash, as for /proc/net/tcp, but formats no text (0.3-0.4 ms
// here against 2-4).
struct TcpSocket {
  uint8_t state;
  uint8_t local[16], remote[16];  // IPv4 as ::ffff:a.b.c.d
  uint16_t localPort, remotePort;
};

struct Dumped {
  std::vector<TcpSocket> sockets;
  int err = 0;
  std::string what;
};

constexpr uint8_t kTcpEstablished = 1;
constexpr uint8_t kTcpListen = 10;

Napi::Value Fail(Napi::Env env, const Made &m);

void Address(uint8_t family, const __be32 *words, uint8_t *out) {
  if (family == AF_INET6) {
    memcpy(out, words, 16);
    return;
  }
  memset(out, 0, 10);
  out[10] = out[11] = 0xff;
  memcpy(out + 12, words, 4);
}

// One sock_diag dump per family on a NETLINK_SOCK_DIAG socket made in the namespace.
void DumpTcp(int fd, uint32_t states, Dumped &out) {
  for (uint8_t family : {static_cast<uint8_t>(AF_INET), static_cast<uint8_t>(AF_INET6)}) {
    struct {
      nlmsghdr h;
      inet_diag_req_v2 r;
    } req{};
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = states;
    if (send(fd, &req, sizeof(req), 0) < 0) {
      out.err = errno;
      out.what = "sock_diag dump";
      return;
    }
    alignas(nlmsghdr) char buf[16384];
    bool done = false;
    while (!done) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        out.err = errno;
        out.what = "sock_diag recv";
        return;
      }
      for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        // NLMSG_ERROR: this family is not built in (no IPv6): no socket there
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        auto *m = reinterpret_cast<inet_diag_msg *>(NLMSG_DATA(h));
        TcpSocket t{};
        t.state = m->idiag_state;
        t.localPort = ntohs(m->id.idiag_sport);
        t.remotePort = ntohs(m->id.idiag_dport);
        Address(family, m->id.idiag_src, t.local);
        Address(family, m->id.idiag_dst, t.remote);
        out.sockets.push_back(t);
      }
    }
  }
}

int DiagFd(const Napi::CallbackInfo &info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd: expected a number");
  return info[0].As<Napi::Number>().Int32Value();
}

Dumped DumpOrThrow(Napi::Env env, int fd, uint32_t states) {
  Dumped d;
  DumpTcp(fd, states, d);
  if (d.err) {
    Made m;
    m.err = d.err;
    m.what = d.what;
    Fail(env, m);
  }
  return d;
}

Napi::Array PortsArray(Napi::Env env, const std::set<uint16_t> &ports) {
  Napi::Array a = Napi::Array::New(env, ports.size());
  uint32_t i = 0;
  for (uint16_t p : ports) a.Set(i++, Napi::Number::New(env, p));
  return a;
}

// netnsDiagSocket(netns) -> fd: a NETLINK_SOCK_DIAG socket of the namespace (it keeps the
// namespace it was made in), for listeningPorts() to ask again and again without entering it.
Napi::Value NetnsDiagSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "netns: expected a string");
  std::string netns = info[0].As<Napi::String>();
  Made m = InNetns(netns, [](Made &out) {
    out.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (out.fd < 0) {
      out.err = errno;
      out.what = "socket(NETLINK_SOCK_DIAG)";
    }
  });
  if (m.err) Fail(env, m);
  return Napi::Number::New(env, m.fd);
}

// listeningPorts(diagFd) -> number[]: the TCP ports something listens on in the socket's namespace (sorted).
Napi::Value ListeningPorts(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Dumped d = DumpOrThrow(env, DiagFd(info), 1u << kTcpListen);
  std::set<uint16_t> ports;
  for (const TcpSocket &t : d.sockets) ports.insert(t.localPort);
  return PortsArray(env, ports);
}

// tcpSockets(diagFd) -> { listening: number[], open: [local, localPort, remote, remotePort][] }: the
// listening ports (sorted) and the established connections of the socket's namespace; addresses
// as 16-byte Buffers, IPv4 as ::ffff:a.b.c.d.
Napi::Value TcpSockets(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Dumped d = DumpOrThrow(env, DiagFd(info), (1u << kTcpListen) | (1u << kTcpEstablished));
  std::set<uint16_t> ports;
  Napi::Array open = Napi::Array::New(env);
  uint32_t i = 0;
  for (const TcpSocket &t : d.sockets) {
    if (t.state == kTcpListen) {
      ports.insert(t.localPort);
      continue;
    }
    Napi::Array c = Napi::Array::New(env, 4);
    c.Set(0u, Napi::Buffer<uint8_t>::Copy(env, t.local, 16));
    c.Set(1u, Napi::Number::New(env, t.localPort));
    c.Set(2u, Napi::Buffer<uint8_t>::Copy(env, t.remote, 16));
    c.Set(3u, Napi::Number::New(env, t.remotePort));
    open.Set(i++, c);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("listening", PortsArray(env, ports));
  o.Set("open", open);
  return o;
}

// dupFd(fd) -> fd: a second descriptor of the same socket (close-on-exec), for Node to own and close
// while we keep the first (a kept listener, lent to one proxy after another).
Napi::Value DupFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "fd: expected a number");
  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    Napi::Error e = Napi::Error::New(env, std::string("dup: ") + strerror(errno));
    e.Set("errno", Napi::Number::New(env, errno));
    throw e;
  }
  return Napi::Number::New(env, fd);
}

Napi::Value Fail(Napi::Env env, const Made &m) {
  Napi::Error e = Napi::Error::New(env, m.what + ": " + strerror(m.err));
  e.Set("errno", Napi::Number::New(env, m.err));
  throw e;
}

// netnsListen(netns) -> { fd, port, ipv6 }: a TCP listener on every address of the
// namespace: dual-stack (IPv6, v4-mapped IPv4), or IPv4 only where IPv6 sockets cannot be made.
Napi::Value NetnsListen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string netns = info[0].As<Napi::String>();
  uint16_t port = 0;
  bool v6 = false;
  Made m = InNetns(netns, [&](Made &out) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int zero = 0;
    if (fd >= 0) {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      socklen_t len = sizeof a;
      if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && listen(fd, 511) == 0 &&
          getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0) {
        port = ntohs(a.sin6_port);
        v6 = true;
        out.fd = fd;
        return;
      }
      close(fd);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      out.err = errno;
      out.what = "socket";
      return;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(fd, 511) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
      out.err = errno;
      out.what = "bind/listen";
      close(fd);
      return;
    }
    port = ntohs(a.sin_port);
    out.fd = fd;
  });
  if (m.fd < 0) return Fail(env, m);
  Napi::Object r = Napi::Object::New(env);
  r.Set("fd", m.fd);
  r.Set("port", port);
  r.Set("ipv6", v6);
  return r;
}

// netnsConnect(netns, address, port, timeoutMs) -> fd: connected (blocking, within timeoutMs), then non-blocking.
Napi::Value NetnsConnect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string netns = info[0].As<Napi::String>();
  std::string address = info[1].As<Napi::String>();
  uint16_t port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
  uint32_t timeoutMs = info[3].As<Napi::Number>().Uint32Value();
  sockaddr_storage a{};
  socklen_t alen = 0;
  auto *a4 = reinterpret_cast<sockaddr_in *>(&a);
  auto *a6 = reinterpret_cast<sockaddr_in6 *>(&a);
  if (inet_pton(AF_INET, address.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    alen = sizeof *a4;
  } else if (inet_pton(AF_INET6, address.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    alen = sizeof *a6;
  } else {
    Napi::TypeError::New(env, "netnsConnect: not an IP address: " + address).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Made m = InNetns(netns, [&](Made &out) {
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      out.err = errno;
      out.what = "socket";
      return;
    }
    timeval tv{static_cast<time_t>(timeoutMs / 1000), static_cast<suseconds_t>((timeoutMs % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), alen) != 0) {
      out.err = errno;
      out.what = "connect " + address + ":" + std::to_string(port);
      close(fd);
      return;
    }
    timeval none{0, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    out.fd = fd;
  });
  if (m.fd < 0) return Fail(env, m);
  return Napi::Number::New(env, m.fd);
}

// originalDst(fd) -> { address, port }: where an accepted, REDIRECTed connection was going
// (SO_ORIGINAL_DST for IPv4, v4-mapped ones of a dual-stack listener included; IP6T_SO_ORIGINAL_DST for IPv6).
Napi::Value OriginalDst(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_in6 local{};
  socklen_t llen = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr *>(&local), &llen);
  bool v6 = local.sin6_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&local.sin6_addr);
  char buf[INET6_ADDRSTRLEN];
  uint16_t port = 0;
  int rc;
  if (v6) {
    sockaddr_in6 a{};
    socklen_t len = sizeof a;
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &a, &len);
    if (rc == 0) {
      inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
      port = ntohs(a.sin6_port);
    }
  } else {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &a, &len);
    if (rc == 0) {
      inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
      port = ntohs(a.sin_port);
    }
  }
  if (rc != 0) {
    Made m;
    m.err = errno;
    m.what = v6 ? "getsockopt(IP6T_SO_ORIGINAL_DST)" : "getsockopt(SO_ORIGINAL_DST)";
    return Fail(env, m);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("address", buf);
  r.Set("port", port);
  return r;
}

}  // namespace

void InitNetnsSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsListen", Napi::Function::New(env, NetnsListen));
  exports.Set("netnsConnect", Napi::Function::New(env, NetnsConnect));
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst));
  exports.Set("netnsDiagSocket", Napi::Function::New(env, NetnsDiagSocket));
  exports.Set("listeningPorts", Napi::Function::New(env, ListeningPorts));
  exports.Set("tcpSockets", Napi::Function::New(env, TcpSockets));
  exports.Set("dupFd", Napi::Function::New(env, DupFd));
}
