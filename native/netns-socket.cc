// SPDX-License-Identifier: Apache-2.0
// TCP sockets of this process inside a target's network namespace: a listener
// that a NAT REDIRECT there sends the target's accepted connections to (the
// inbound side of the http fault), and the local connections it opens to the
// target's own server. A short-lived thread enters the namespace, makes the
// socket and leaves with it: a socket keeps the namespace it was made in, and
// this process's own threads never change namespace. Node wraps the returned
// file descriptors (net.Server.listen({ fd }), new net.Socket({ fd })).
#include "netns-socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

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
  std::thread t([&] {
    int nsfd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      out.err = errno;
      out.what = "open " + netns;
      return;
    }
    if (setns(nsfd, CLONE_NEWNET) != 0) {
      out.err = errno;
      out.what = "setns " + netns;
      close(nsfd);
      return;
    }
    close(nsfd);
    make(out);
  });
  t.join();
  return out;
}

Napi::Value Fail(Napi::Env env, const Made &m) {
  Napi::Error e = Napi::Error::New(env, m.what + ": " + strerror(m.err));
  e.Set("errno", Napi::Number::New(env, m.err));
  throw e;
}

// netnsListen(netns) -> { fd, port }: a TCP listener on every IPv4 address of the namespace.
Napi::Value NetnsListen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string netns = info[0].As<Napi::String>();
  uint16_t port = 0;
  Made m = InNetns(netns, [&](Made &out) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      out.err = errno;
      out.what = "socket";
      return;
    }
    int one = 1;
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
  return r;
}

// netnsConnect(netns, address, port, timeoutMs) -> fd: connected (blocking, within timeoutMs), then non-blocking.
Napi::Value NetnsConnect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string netns = info[0].As<Napi::String>();
  std::string address = info[1].As<Napi::String>();
  uint16_t port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
  uint32_t timeoutMs = info[3].As<Napi::Number>().Uint32Value();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    Napi::TypeError::New(env, "netnsConnect: not an IPv4 address: " + address).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Made m = InNetns(netns, [&](Made &out) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      out.err = errno;
      out.what = "socket";
      return;
    }
    timeval tv{static_cast<time_t>(timeoutMs / 1000), static_cast<suseconds_t>((timeoutMs % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
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

// originalDst(fd) -> { address, port }: where an accepted, REDIRECTed connection was going (SO_ORIGINAL_DST).
Napi::Value OriginalDst(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &a, &len) != 0) {
    Made m;
    m.err = errno;
    m.what = "getsockopt(SO_ORIGINAL_DST)";
    return Fail(env, m);
  }
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  Napi::Object r = Napi::Object::New(env);
  r.Set("address", buf);
  r.Set("port", ntohs(a.sin_port));
  return r;
}

}  // namespace

void InitNetnsSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsListen", Napi::Function::New(env, NetnsListen));
  exports.Set("netnsConnect", Napi::Function::New(env, NetnsConnect));
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst));
}
