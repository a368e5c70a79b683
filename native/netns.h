// Entering a container's network namespace for one job: a short-lived thread
// calls setns(), so this process's own threads never change namespace. Sockets
// made on that thread keep the namespace they were created in.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

// Runs make(out) on a thread inside the namespace at path `netns` and waits for
// it. If the namespace cannot be entered, out.err and out.what say why and
// make() does not run. Out has `int err` and `std::string what`.
template <typename Out, typename F>
void RunInNetns(const std::string &netns, Out &out, F make) {
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
}
