#include "router/router_command.h"

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common/paths.h"
#include "router/router.h"

namespace adhoc::router {

namespace {

void RaiseFileLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Usage(const char* error) {
  std::fprintf(stderr,
               "adhoc router: %s\nusage: adhoc router [--home DIR] [--listen HOST:PORT] "
               "[--threads N]\n",
               error);
  return 2;
}

}  // namespace

int RouterMain(int argc, char** argv) {
  RouterOptions options;
  options.home = paths::HomeDir();
  options.write_pid = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      std::string prefix = std::string(name) + "=";
      if (arg.rfind(prefix, 0) == 0) return argv[i] + prefix.size();
      if (arg == name && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (arg == "--help" || arg == "-h") {
      Usage("the data plane: an HTTP reverse proxy fed by the control plane");
      return 0;
    }
    if (const char* v = value("--home")) {
      options.home = v;
    } else if (const char* v = value("--listen")) {
      options.listen = v;
    } else if (const char* v = value("--threads")) {
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (!*v || *end || n < 1 || n > 1024) return Usage("--threads wants a number from 1 to 1024");
      options.threads = static_cast<int>(n);
    } else {
      return Usage(("unknown argument '" + arg + "'").c_str());
    }
  }
  RaiseFileLimit();
  // Block the stop signals in every thread; this one waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Router router(options);
  Status started = router.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "adhoc router: %s\n", started.error().message().c_str());
    return started.error().exit_code();
  }
  std::fprintf(stderr, "adhoc router: listening on port %u, feed %s\n", router.port(),
               paths::RouterSocket(options.home).c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "adhoc router: stopping (signal %d)\n", sig);
  router.Stop();
  return 0;
}

}  // namespace adhoc::router
