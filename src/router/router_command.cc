#include "router/router_command.h"

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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

constexpr const char* kUsage =
    "usage: adhoc router [--home DIR] [--listen HOST:PORT] [--threads N]\n"
    "         [--tls-listen HOST:PORT (--tls-cert FILE --tls-key FILE |\n"
    "                                  --tls-domain DOMAIN --tls-dir DIR) [--redirect-http]]\n"
    "         [--metrics-allow CIDR[,CIDR...]] [--upgraded-idle-timeout SECONDS]\n"
    "SIGHUP reloads the TLS certificate; SIGTERM or SIGINT stop the router.\n";

int Usage(const std::string& error) {
  std::fprintf(stderr, "adhoc router: %s\n%s", error.c_str(), kUsage);
  return 2;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
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
      std::printf(
          "adhoc router: the data plane, an HTTP reverse proxy fed by the control plane\n%s",
          kUsage);
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
    } else if (const char* v = value("--tls-listen")) {
      options.tls.listen = v;
    } else if (const char* v = value("--tls-cert")) {
      options.tls.cert_file = v;
    } else if (const char* v = value("--tls-key")) {
      options.tls.key_file = v;
    } else if (const char* v = value("--tls-domain")) {
      options.tls.domain = v;
    } else if (const char* v = value("--tls-dir")) {
      options.tls.dir = v;
    } else if (arg == "--redirect-http") {
      options.tls.redirect_http = true;
    } else if (const char* v = value("--metrics-allow")) {
      options.metrics_allow = SplitCommas(v);
    } else if (const char* v = value("--upgraded-idle-timeout")) {
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (!*v || *end || n < 1 || n > 7 * 24 * 3600) {
        return Usage("--upgraded-idle-timeout wants seconds, from 1 to 604800");
      }
      options.upgraded_idle_timeout = std::chrono::seconds(n);
    } else {
      return Usage("unknown argument '" + arg + "'");
    }
  }
  if (Status s = options.tls.Validate(); !s.ok()) return Usage(s.error().message());
  RaiseFileLimit();
  // Block the stop signals in every thread; this one waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
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
  if (options.tls.enabled()) {
    std::fprintf(stderr, "adhoc router: HTTPS on port %u, certificate %s%s%s\n", router.tls_port(),
                 router.TlsFingerprint().c_str(), options.tls.dir.empty() ? "" : ", CA ",
                 options.tls.dir.empty() ? "" : (options.tls.dir / "ca.crt").c_str());
  }
  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    Status reloaded = router.ReloadTls();
    if (reloaded.ok()) {
      std::fprintf(stderr, "adhoc router: TLS certificate reloaded (%s)\n",
                   router.TlsFingerprint().c_str());
    } else {
      std::fprintf(stderr, "adhoc router: TLS reload failed, keeping the old certificate: %s\n",
                   reloaded.error().message().c_str());
    }
  }
  std::fprintf(stderr, "adhoc router: stopping (signal %d)\n", sig);
  router.Stop();
  return 0;
}

}  // namespace adhoc::router
