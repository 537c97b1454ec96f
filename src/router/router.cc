#include "router/router.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/paths.h"
#include "router/access_log.h"
#include "router/error_pages.h"
#include "router/feed.h"
#include "router/health_checker.h"
#include "router/static_files.h"

namespace adhoc::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// Connections, their timers and coroutines are bound to their worker's io_context by
// type, not through the type-erased any_io_executor: every completion and resumption on
// the hot path then skips a polymorphic executor dispatch.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
template <typename T>
using Task = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> kAwait;
using boost::system::error_code;

namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A socket with a read buffer: bytes read but not yet consumed stay between calls
// (the start of a body after its head, a pipelined request).
struct BufferedSocket {
  explicit BufferedSocket(Socket s) : socket(std::move(s)), buf(kSmall) {}
  static constexpr size_t kSmall = 4096;  // idle keep-alive connections stay small
  Socket socket;
  std::vector<char> buf;
  size_t begin = 0, end = 0;

  std::string_view data() const { return {buf.data() + begin, end - begin}; }
  size_t size() const { return end - begin; }
  void consume(size_t n) {
    begin += n;
    if (begin == end) begin = end = 0;
  }
  // Gives back a large buffer once nothing is buffered (between requests).
  void Shrink() {
    if (begin == end && buf.size() > 4 * kSmall) {
      buf = std::vector<char>(kSmall);
      begin = end = 0;
    }
  }
  // Makes room for at least `want` more bytes at the end.
  void Reserve(size_t want) {
    if (buf.size() - end >= want) return;
    if (begin > 0) {
      std::memmove(buf.data(), buf.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (buf.size() - end < want) buf.resize(end + want);
  }
};

struct UpstreamConnection : BufferedSocket {
  using BufferedSocket::BufferedSocket;
  std::string address;
  Clock::time_point idle_since;
};

// Idle keep-alive connections to upstreams, per worker (so single-threaded).
class UpstreamPool {
 public:
  // A connection pooled less than kTrustedIdle ago skips the liveness probe (a recv
  // syscall) unless `verify`: an upstream that closed it that soon is caught by the
  // caller's retry, and one that sends unasked bytes (a 408 at its idle timeout) does so
  // only after seconds. Callers verify when a failure could not be retried (a body).
  static constexpr std::chrono::milliseconds kTrustedIdle{1000};
  std::unique_ptr<UpstreamConnection> Take(const std::string& address, bool verify) {
    auto it = idle_.find(address);
    if (it == idle_.end()) return nullptr;
    auto now = Clock::now();
    while (!it->second.empty()) {
      auto conn = std::move(it->second.back());
      it->second.pop_back();
      if (!verify && now - conn->idle_since < kTrustedIdle) return conn;
      if (IsAlive(*conn)) return conn;
    }
    return nullptr;
  }
  void Put(std::unique_ptr<UpstreamConnection> conn, size_t max_idle) {
    auto& list = idle_[conn->address];
    if (list.size() >= max_idle || conn->size() != 0) return;  // dropped: closes it
    conn->begin = conn->end = 0;
    conn->idle_since = Clock::now();
    list.push_back(std::move(conn));
  }
  // Closes connections idle too long or to addresses no route names any more.
  void Sweep(std::chrono::milliseconds max_idle, const RouteTable& table) {
    auto now = Clock::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      bool live = table.HasAddress(it->first);
      std::erase_if(it->second, [&](const auto& c) {
        return !live || now - c->idle_since > max_idle || !IsAlive(*c);
      });
      it = it->second.empty() ? idle_.erase(it) : std::next(it);
    }
  }
  void Clear() { idle_.clear(); }

 private:
  // A pooled connection is usable if the upstream has neither closed it nor sent
  // anything unasked.
  static bool IsAlive(UpstreamConnection& c) {
    char byte;
    ssize_t n = ::recv(c.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>> idle_;
};

class ClientConnection;

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

// A status code is three digits (the parser checks 100..599).
void AppendStatus(std::string& out, int status) {
  out += static_cast<char>('0' + status / 100);
  out += static_cast<char>('0' + status / 10 % 10);
  out += static_cast<char>('0' + status % 10);
}

}  // namespace

struct Worker {
  Worker(const RouterOptions& o, RouteTableHolder& holder, AccessLog& log,
         std::atomic<int>& connections)
      : io(std::make_unique<asio::io_context>(1)),
        options(o),
        table(holder),
        access_log(log),
        connections(connections),
        sweep_timer(std::make_unique<asio::steady_timer>(*io)) {}
  ~Worker() {
    pool.Clear();
    sweep_timer.reset();
    // Destroys pending handlers (and their coroutines) while the rest is still alive.
    io.reset();
  }

  std::unique_ptr<asio::io_context> io;
  const RouterOptions& options;
  RouteTableHolder::Reader table;
  AccessLog& access_log;
  std::atomic<int>& connections;
  UpstreamPool pool;
  std::unordered_set<ClientConnection*> live;
  uint64_t round_robin = 0;
  std::unique_ptr<asio::steady_timer> sweep_timer;
  std::thread thread;
};

namespace {

enum class Io { kOk, kClosed, kTimeout };

// Result of copying a body from one side to the other.
enum class Copy { kOk, kSourceFailed, kSourceTimeout, kSinkFailed, kBadFraming };

struct Exchange {
  RequestHead req;
  std::shared_ptr<const RouteTable> table;  // keeps `env` alive
  const Environment* env = nullptr;
  Clock::time_point start;
  int64_t start_ms = 0;
  int status = 0;
  uint64_t bytes = 0;
  std::string target_id;
  bool json = false;
};

class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(Worker& w, Socket s) : w_(w), client_(std::move(s)), timer_(*w.io) {
    w_.live.insert(this);
    error_code ec;
    client_.socket.set_option(tcp::no_delay(true), ec);
    auto remote = client_.socket.remote_endpoint(ec);
    if (!ec) client_ip_ = remote.address().to_string();
  }
  ~ClientConnection() {
    w_.live.erase(this);
    w_.connections.fetch_sub(1);
  }

  static Task<void> Serve(std::shared_ptr<ClientConnection> self) {
    while (!self->closing_) {
      bool keep = co_await self->HandleOne();
      if (!keep) break;
      self->client_.Shrink();
      self->ShrinkHeads();
    }
    self->timer_.cancel();
    error_code ec;
    self->client_.socket.shutdown(Socket::shutdown_send, ec);
    self->client_.socket.close(ec);
  }

  // Gives back the reused head buffers after an unusually large head (between requests).
  void ShrinkHeads() {
    constexpr size_t kLarge = 16 * 1024;
    for (std::string* s : {&request_head_, &upstream_head_, &response_head_}) {
      if (s->capacity() > kLarge) *s = std::string();
    }
  }

  // From the worker's thread (Stop): ends the connection at its next step.
  void Close() {
    closing_ = true;
    error_code ec;
    client_.socket.close(ec);
    if (upstream_) upstream_->socket.close(ec);
  }

 private:
  const RouterOptions& opt() const { return w_.options; }

  // One deadline per connection bounds whichever operation runs next; when it passes,
  // both sockets' pending operations are cancelled and timed_out_ tells why. Arming is
  // just a clock read: the connection's one timer is restarted only when it must fire
  // earlier than it is set to (or is not set); when it fires before the deadline (which
  // moved later meanwhile) it is set again for the rest.
  void Arm(std::chrono::milliseconds d) {
    timed_out_ = false;
    deadline_ = Clock::now() + d;
    if (!timer_armed_ || deadline_ < timer_expiry_) StartTimer();
  }

  void StartTimer() {
    timer_armed_ = true;
    timer_expiry_ = deadline_;
    uint64_t gen = ++timer_gen_;
    timer_.expires_at(deadline_);
    std::weak_ptr<ClientConnection> weak = weak_from_this();
    timer_.async_wait([weak, gen](error_code ec) {
      auto self = weak.lock();
      if (!self || gen != self->timer_gen_) return;  // superseded by a later StartTimer
      self->timer_armed_ = false;
      if (ec) return;
      if (Clock::now() < self->deadline_) {
        self->StartTimer();
        return;
      }
      self->timed_out_ = true;
      error_code ignored;
      self->client_.socket.cancel(ignored);
      if (self->upstream_) self->upstream_->socket.cancel(ignored);
    });
  }

  // Reads what is available into `s`; `want`: room to make (heads small, bodies large).
  Task<Io> ReadMore(BufferedSocket& s, size_t want = 16 * 1024) {
    s.Reserve(want);
    error_code ec;
    size_t n = co_await s.socket.async_read_some(
        asio::buffer(s.buf.data() + s.end, s.buf.size() - s.end), asio::redirect_error(kAwait, ec));
    if (ec) co_return timed_out_ ? Io::kTimeout : Io::kClosed;
    s.end += n;
    co_return Io::kOk;
  }

  // The hot path's reads and writes: the asio operation awaited directly, without the
  // coroutine frame ReadMore/Write cost; the outcome is left in io_ec_ (a connection has
  // one operation in flight at a time) and read with Outcome(). A failed read yields 0.
  auto StartRead(BufferedSocket& s, size_t want) {
    s.Reserve(want);
    return s.socket.async_read_some(asio::buffer(s.buf.data() + s.end, s.buf.size() - s.end),
                                    asio::redirect_error(kAwait, io_ec_));
  }
  template <typename Buffers>
  auto StartWrite(Socket& s, const Buffers& buffers) {
    return asio::async_write(s, buffers, asio::redirect_error(kAwait, io_ec_));
  }
  Io Outcome() const { return !io_ec_ ? Io::kOk : timed_out_ ? Io::kTimeout : Io::kClosed; }

  template <typename Buffers>
  Task<Io> Write(Socket& s, const Buffers& buffers) {
    error_code ec;
    co_await asio::async_write(s, buffers, asio::redirect_error(kAwait, ec));
    if (ec) co_return timed_out_ ? Io::kTimeout : Io::kClosed;
    co_return Io::kOk;
  }

  Task<Io> WriteClient(Exchange* ex, std::string_view data) {
    Arm(opt().body_timeout);
    Io r = co_await Write(client_.socket, asio::buffer(data.data(), data.size()));
    if (ex && r == Io::kOk) ex->bytes += data.size();
    co_return r;
  }

  // Writes `data` to `sink`, as one chunk if `encode`.
  Task<Io> WriteData(Socket& sink, std::string_view data, bool encode) {
    Arm(opt().body_timeout);
    if (!encode) co_return co_await Write(sink, asio::buffer(data.data(), data.size()));
    char size_line[24];
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    std::array<asio::const_buffer, 3> bufs = {asio::buffer(size_line, static_cast<size_t>(n)),
                                              asio::buffer(data.data(), data.size()),
                                              asio::buffer("\r\n", 2)};
    co_return co_await Write(sink, bufs);
  }

  Task<Copy> CopyLength(BufferedSocket& src, Socket& sink, uint64_t n, uint64_t* counted) {
    while (n > 0) {
      if (src.size() == 0) {
        Arm(opt().body_timeout);
        Io r = co_await ReadMore(src);
        if (r != Io::kOk) co_return r == Io::kTimeout ? Copy::kSourceTimeout : Copy::kSourceFailed;
      }
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, src.size()));
      std::string_view data = src.data().substr(0, take);
      if (co_await WriteData(sink, data, false) != Io::kOk) co_return Copy::kSinkFailed;
      src.consume(take);
      n -= take;
      if (counted) *counted += take;
    }
    co_return Copy::kOk;
  }

  // Decodes chunked framing from `src`; re-encodes it to `sink` if `encode`, else
  // writes the bare data (an HTTP/1.0 client, closed at the end).
  Task<Copy> CopyChunked(BufferedSocket& src, Socket& sink, ChunkedDecoder& decoder, bool encode,
                         uint64_t* counted) {
    while (true) {
      while (src.size() > 0 && !decoder.done() && !decoder.error()) {
        ChunkedDecoder::Step step = decoder.Feed(src.data());
        if (!step.data.empty()) {
          if (co_await WriteData(sink, step.data, encode) != Io::kOk) co_return Copy::kSinkFailed;
          if (counted) *counted += step.data.size() + (encode ? 8 : 0);
        }
        src.consume(step.consumed);
      }
      if (decoder.error()) co_return Copy::kBadFraming;
      if (decoder.done()) {
        if (encode) {
          Arm(opt().body_timeout);
          if (co_await Write(sink, asio::buffer("0\r\n\r\n", 5)) != Io::kOk) {
            co_return Copy::kSinkFailed;
          }
        }
        co_return Copy::kOk;
      }
      Arm(opt().body_timeout);
      Io r = co_await ReadMore(src);
      if (r != Io::kOk) co_return r == Io::kTimeout ? Copy::kSourceTimeout : Copy::kSourceFailed;
    }
  }

  Task<Copy> CopyUntilClose(BufferedSocket& src, Socket& sink, bool encode, uint64_t* counted) {
    while (true) {
      if (src.size() > 0) {
        if (co_await WriteData(sink, src.data(), encode) != Io::kOk) co_return Copy::kSinkFailed;
        if (counted) *counted += src.size();
        src.consume(src.size());
      }
      Arm(opt().body_timeout);
      Io r = co_await ReadMore(src);
      if (r == Io::kTimeout) co_return Copy::kSourceTimeout;
      if (r == Io::kClosed) break;
    }
    if (encode) {
      Arm(opt().body_timeout);
      if (co_await Write(sink, asio::buffer("0\r\n\r\n", 5)) != Io::kOk)
        co_return Copy::kSinkFailed;
    }
    co_return Copy::kOk;
  }

  // Answers with one of the router's own pages.
  // Parameters by value: callers may build them in temporaries that end before the
  // coroutine body runs.
  Task<void> SendPage(Exchange& ex, int status, std::string detail, bool keep_alive,
                      std::string extra_headers = {}) {
    std::string env_name = ex.env ? ex.env->name : std::string();
    ErrorPage page = MakeErrorPage(status, env_name, NormalizeHost(ex.req.host), detail, ex.json);
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) +
                      "\r\nContent-Type: " + page.content_type +
                      "\r\nContent-Length: " + std::to_string(page.body.size()) +
                      "\r\nCache-Control: no-store\r\n";
    out += extra_headers;
    out += keep_alive ? (ex.req.version_minor == 0 ? "Connection: keep-alive\r\n" : "")
                      : "Connection: close\r\n";
    out += "\r\n";
    if (ex.req.method != "HEAD") out += page.body;
    ex.status = status;
    co_await WriteClient(&ex, out);
  }

  void Finish(Exchange& ex) {
    if (!ex.env) return;
    EnvStats& s = *ex.env->stats;
    s.bytes.fetch_add(ex.bytes, std::memory_order_relaxed);
    if (ex.status >= 500) s.errors_5xx.fetch_add(1, std::memory_order_relaxed);
    AccessRecord rec;
    rec.time_ms = ex.start_ms;
    rec.status = ex.status;
    rec.bytes = ex.bytes;
    rec.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - ex.start).count();
    rec.target = std::move(ex.target_id);
    w_.access_log.Log(ex.env->name, ex.req.method, ex.req.path, rec);
  }

  // Reads the next request head into `head`. False: the connection ends (answered or not).
  Task<bool> ReadRequestHead(std::string& head, Exchange& ex) {
    bool got_bytes = client_.size() > 0;
    Arm(got_bytes || requests_ == 0 ? opt().header_timeout : opt().idle_timeout);
    size_t scanned = 0;
    while (true) {
      // RFC 9112 2.2: ignore empty lines before a request line.
      while (client_.size() >= 2 && client_.data().substr(0, 2) == "\r\n") {
        client_.consume(2);
        scanned = 0;
      }
      std::string_view d = client_.data();
      size_t pos = d.find("\r\n\r\n", scanned >= 3 ? scanned - 3 : 0);
      if (pos != std::string_view::npos) {
        head.assign(d.substr(0, pos + 4));
        client_.consume(pos + 4);
        co_return true;
      }
      scanned = d.size();
      if (d.size() > opt().limits.max_header_bytes) {
        bool in_request_line = d.find("\r\n") == std::string_view::npos;
        if (in_request_line && d.size() > opt().limits.max_uri_bytes) {
          co_await SendPage(ex, 414, "The request-target is too long.", false);
        } else {
          co_await SendPage(ex, 431, "The request's header section is too large.", false);
        }
        co_return false;
      }
      size_t n = co_await StartRead(client_, BufferedSocket::kSmall);
      client_.end += n;
      Io r = Outcome();
      if (r != Io::kOk) {
        if (r == Io::kTimeout && got_bytes && !closing_) {
          co_await SendPage(ex, 408, "The request's headers did not arrive in time.", false);
        }
        co_return false;
      }
      if (!got_bytes) {
        got_bytes = true;
        Arm(opt().header_timeout);  // the whole head must now arrive within the deadline
      }
    }
  }

  Task<bool> HandleOne() {
    Exchange ex;
    std::string& head = request_head_;  // ex.req's header views point into it
    head.clear();
    // The common keep-alive case without ReadRequestHead's coroutine frame: wait for the
    // next request under the idle timeout and take its head if one read brought it whole.
    // Anything else (first request, pipelined or partial heads, leading empty lines,
    // limits, 408) is ReadRequestHead's.
    if (client_.size() == 0 && requests_ > 0 && !closing_) {
      Arm(opt().idle_timeout);
      size_t n = co_await StartRead(client_, BufferedSocket::kSmall);
      client_.end += n;
      if (Outcome() != Io::kOk) co_return false;  // as ReadRequestHead: nothing came, no page
    }
    std::string_view buffered = client_.data();
    size_t head_end = buffered.size() >= 4 && buffered[0] != '\r' ? buffered.find("\r\n\r\n")
                                                                  : std::string_view::npos;
    if (head_end != std::string_view::npos) {
      head.assign(buffered.substr(0, head_end + 4));
      client_.consume(head_end + 4);
    } else if (!co_await ReadRequestHead(head, ex)) {
      co_return false;
    }
    ++requests_;
    ex.start = Clock::now();
    ex.start_ms = WallMs();
    if (auto err = ParseRequestHead(head, opt().limits, ex.req)) {
      std::string detail = "The request was rejected: " + err->reason + ".";
      co_await SendPage(ex, err->status, detail, false);
      co_return false;
    }
    if (const std::string_view* accept = ex.req.Find("accept")) ex.json = PrefersJson(*accept);
    // A body we do not read leaves the connection unusable: close after answering.
    bool can_keep = ex.req.keep_alive && ex.req.framing == BodyFraming::kNone;

    ex.table = w_.table.Get();
    std::string host = NormalizeHost(ex.req.host);
    ex.env = ex.table->FindHost(host);
    if (!ex.env) {
      co_await SendPage(ex, 404,
                        "No environment has the host '" + host +
                            "'. Check the URL, or list environments with `adhoc ls`.",
                        can_keep);
      co_return can_keep;
    }
    EnvStats& stats = *ex.env->stats;
    stats.requests.fetch_add(1, std::memory_order_relaxed);
    stats.last_request_ms.store(ex.start_ms, std::memory_order_relaxed);
    stats.in_flight.fetch_add(1, std::memory_order_relaxed);
    // Proxied requests go straight to Proxy (one coroutine frame less); the router's own
    // answers and folders through Dispatch.
    const Route* route =
        ex.env->status == EnvStatus::kRunning ? ex.env->Match(ex.req.path) : nullptr;
    bool keep;
    if (route && !route->is_folder()) {
      keep = co_await Proxy(ex, *route);
    } else {
      keep = co_await Dispatch(ex, can_keep);
    }
    stats.in_flight.fetch_sub(1, std::memory_order_relaxed);
    Finish(ex);
    co_return keep;
  }

  Task<bool> Dispatch(Exchange& ex, bool can_keep) {
    const Environment& env = *ex.env;
    if (env.status != EnvStatus::kRunning) {
      std::string detail =
          "Environment '" + env.name + "' is " + EnvStatusName(env.status) +
          (env.status == EnvStatus::kStarting   ? "; try again in a moment."
           : env.status == EnvStatus::kSleeping ? "; wake it with `adhoc wake " + env.name + "`."
                                                : "; see `adhoc status " + env.name + "`.");
      co_await SendPage(ex, 503, detail, can_keep, "Retry-After: 5\r\n");
      co_return can_keep;
    }
    const Route* route = env.Match(ex.req.path);
    if (!route) {
      co_await SendPage(
          ex, 404,
          "Environment '" + env.name + "' has no route for the path '" + ex.req.path + "'.",
          can_keep);
      co_return can_keep;
    }
    if (route->is_folder()) co_return co_await ServeFolder(ex, *route, can_keep);
    co_return co_await Proxy(ex, *route);
  }

  Task<bool> ServeFolder(Exchange& ex, const Route& route, bool can_keep) {
    ex.target_id = "folder";
    const std::string& method = ex.req.method;
    if (method != "GET" && method != "HEAD") {
      co_await SendPage(ex, 405, "Static files of '" + ex.env->name + "' are read-only.", can_keep,
                        "Allow: GET, HEAD\r\n");
      co_return can_keep;
    }
    std::optional<StaticFile> file = OpenStaticFile(route.folder, ex.req.path);
    if (!file) {
      co_await SendPage(ex, 404,
                        "Environment '" + ex.env->name + "' has no file at '" + ex.req.path + "'.",
                        can_keep);
      co_return can_keep;
    }
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{file->fd};
    std::string last_modified = HttpDate(file->mtime);
    const std::string_view* ims = ex.req.Find("if-modified-since");
    bool not_modified = ims && *ims == last_modified;
    ex.status = not_modified ? 304 : 200;
    std::string out = not_modified ? "HTTP/1.1 304 Not Modified\r\n" : "HTTP/1.1 200 OK\r\n";
    out += "Content-Type: " + file->content_type + "\r\n";
    if (!not_modified) out += "Content-Length: " + std::to_string(file->size) + "\r\n";
    out += "Last-Modified: " + last_modified + "\r\n";
    out += can_keep ? (ex.req.version_minor == 0 ? "Connection: keep-alive\r\n" : "")
                    : "Connection: close\r\n";
    out += "\r\n";
    if (co_await WriteClient(&ex, out) != Io::kOk) co_return false;
    if (method == "HEAD" || not_modified) co_return can_keep;
    std::vector<char> chunk(64 * 1024);
    uint64_t offset = 0;
    while (offset < file->size) {
      ssize_t n = ::pread(file->fd, chunk.data(), chunk.size(), static_cast<off_t>(offset));
      if (n <= 0) co_return false;  // truncated under us: the length is promised, so close
      if (co_await WriteClient(&ex, std::string_view(chunk.data(), n)) != Io::kOk) co_return false;
      offset += static_cast<uint64_t>(n);
    }
    co_return can_keep;
  }

  // Least outstanding requests among healthy targets; ties rotate.
  const Target* PickTarget(const Route& route) {
    const Target* best = nullptr;
    int best_load = 0;
    size_t n = route.targets.size();
    if (n == 0) return nullptr;
    size_t start = w_.round_robin++ % n;
    for (size_t i = 0; i < n; ++i) {
      const Target& t = route.targets[(start + i) % n];
      if (!t.state->healthy.load(std::memory_order_relaxed)) continue;
      int load = t.state->outstanding.load(std::memory_order_relaxed);
      if (!best || load < best_load) {
        best = &t;
        best_load = load;
      }
    }
    return best;
  }

  void UpstreamHead(const RequestHead& req, std::string& out) {
    out.clear();
    out += req.method;
    out += ' ';
    if (req.target.front() == '/' || req.target == "*") {
      out += req.target;
    } else {  // absolute-form becomes origin-form
      out += req.path;
      if (req.has_query) out += "?" + req.query;
    }
    out += " HTTP/1.1\r\n";
    std::string forwarded_for;
    for (const Header& h : req.headers) {
      if (IsHopByHop(h.name, req.connection_options)) {
        if (EqualsIgnoreCase(h.name, "transfer-encoding")) out += "Transfer-Encoding: chunked\r\n";
        continue;
      }
      if (EqualsIgnoreCase(h.name, "expect")) continue;  // the router answers 100-continue
      if (EqualsIgnoreCase(h.name, "x-forwarded-for")) {
        if (!forwarded_for.empty()) forwarded_for += ", ";
        forwarded_for += h.value;
        continue;
      }
      if (EqualsIgnoreCase(h.name, "x-forwarded-proto") ||
          EqualsIgnoreCase(h.name, "x-forwarded-host")) {
        continue;
      }
      if (EqualsIgnoreCase(h.name, "host")) {
        AppendField(out, h.name, req.host);  // the absolute-form authority if any
        continue;
      }
      AppendField(out, h.name, h.value);
    }
    if (req.version_minor == 0 && !req.Find("host")) AppendField(out, "Host", req.host);
    out += "X-Forwarded-For: ";
    if (!forwarded_for.empty()) {
      out += forwarded_for;
      out += ", ";
    }
    out += client_ip_;
    out += "\r\nX-Forwarded-Proto: http\r\n";
    AppendField(out, "X-Forwarded-Host", req.host);
    out += "\r\n";
  }

  // Connects upstream_ to `target`. 0 on success, else the status to answer.
  Task<int> Connect(const Target& target, std::string& why) {
    error_code ec;
    auto address =
        asio::ip::make_address(target.host == "localhost" ? "127.0.0.1" : target.host, ec);
    if (ec) {
      why = "target address '" + target.address + "' is not an IP address";
      co_return 502;
    }
    upstream_ = std::make_unique<UpstreamConnection>(Socket(*w_.io));
    upstream_->address = target.address;
    Arm(opt().connect_timeout);
    co_await upstream_->socket.async_connect(tcp::endpoint(address, target.port),
                                             asio::redirect_error(kAwait, ec));
    if (ec) {
      bool timeout = timed_out_;
      upstream_.reset();
      if (timeout) {
        why = "did not accept a connection in time";
        co_return 504;
      }
      why = "refused the connection (" + ec.message() + ")";
      co_return 502;
    }
    upstream_->socket.set_option(tcp::no_delay(true), ec);
    co_return 0;
  }

  Task<bool> Proxy(Exchange& ex, const Route& route) {
    const RequestHead& req = ex.req;
    const Target* target = PickTarget(route);
    if (!target) {
      co_await SendPage(ex, 503,
                        "Environment '" + ex.env->name + "' has no healthy target for service '" +
                            route.service + "'.",
                        false);
      co_return false;
    }
    ex.target_id = target->id;
    std::shared_ptr<UpstreamState> state = target->state;
    state->outstanding.fetch_add(1, std::memory_order_relaxed);
    struct Outstanding {
      UpstreamState* s;
      ~Outstanding() { s->outstanding.fetch_sub(1, std::memory_order_relaxed); }
    } outstanding{state.get()};

    std::string& head = upstream_head_;
    UpstreamHead(req, head);
    auto fail = [&](int status, const std::string& why) {
      return SendPage(ex, status,
                      "Service '" + route.service + "' of environment '" + ex.env->name +
                          "' (target " + target->id + ") " + why + ".",
                      false);
    };
    bool sent_continue = false;
    ResponseHead& resp = response_;
    for (int attempt = 0;; ++attempt) {
      // Only a bodiless request can be retried on a fresh connection if this one is dead.
      upstream_ = w_.pool.Take(target->address, req.framing != BodyFraming::kNone);
      bool reused = upstream_ != nullptr;
      if (!reused) {
        std::string why;
        int status = co_await Connect(*target, why);
        if (status != 0) {
          co_await fail(status, why);
          co_return false;
        }
      }
      Arm(opt().body_timeout);
      co_await StartWrite(upstream_->socket, asio::buffer(head));
      if (Outcome() != Io::kOk) {
        if (reused && attempt == 0) continue;  // a stale pooled connection: once more, fresh
        co_await fail(502, "closed the connection");
        co_return false;
      }
      if (req.framing != BodyFraming::kNone) {
        if (req.expect_continue && !sent_continue) {
          sent_continue = true;
          if (co_await WriteClient(nullptr, "HTTP/1.1 100 Continue\r\n\r\n") != Io::kOk) {
            co_return false;
          }
        }
        Copy c;
        std::optional<HttpError> framing_error;
        if (req.framing == BodyFraming::kLength) {
          c = co_await CopyLength(client_, upstream_->socket, req.content_length, nullptr);
        } else {
          ChunkedDecoder decoder(opt().limits.max_body_bytes);
          c = co_await CopyChunked(client_, upstream_->socket, decoder, true, nullptr);
          framing_error = decoder.error();
        }
        if (c == Copy::kBadFraming) {
          upstream_.reset();
          co_await SendPage(ex, framing_error->status,
                            "The request body was rejected: " + framing_error->reason + ".", false);
          co_return false;
        }
        if (c == Copy::kSourceFailed || c == Copy::kSourceTimeout) {
          upstream_.reset();
          ex.status = c == Copy::kSourceTimeout ? 408 : 400;  // for the log; client is gone
          co_return false;
        }
        if (c == Copy::kSinkFailed) {
          co_await fail(502, "closed the connection while receiving the request body");
          co_return false;
        }
      }
      // The response head; 1xx interim answers are skipped (Expect is answered here).
      Arm(opt().upstream_timeout);
      Io r = Io::kOk;
      bool got_head = false;
      size_t scanned = 0;
      while (!got_head) {
        std::string_view d = upstream_->data();
        size_t pos = d.find("\r\n\r\n", scanned >= 3 ? scanned - 3 : 0);
        if (pos == std::string_view::npos) {
          scanned = d.size();
          if (d.size() > 64 * 1024) {
            co_await fail(502, "sent a response head that is too large");
            co_return false;
          }
          size_t n = co_await StartRead(*upstream_, 16 * 1024);
          upstream_->end += n;
          r = Outcome();
          if (r != Io::kOk) break;
          continue;
        }
        if (auto err = ParseResponseHead(d.substr(0, pos + 4), req.method, resp)) {
          co_await fail(502, "sent a malformed response: " + err->reason);
          co_return false;
        }
        upstream_->consume(pos + 4);
        scanned = 0;
        if (resp.status >= 100 && resp.status < 200) {
          if (resp.status == 101) {
            co_await fail(502, "switched protocols, which the router does not support");
            co_return false;
          }
          continue;
        }
        got_head = true;
      }
      if (got_head) break;
      if (r == Io::kTimeout) {
        co_await fail(
            504, "did not answer within " + std::to_string(opt().upstream_timeout.count()) + " ms");
        co_return false;
      }
      bool nothing_received = upstream_->size() == 0 && scanned == 0;
      if (reused && attempt == 0 && nothing_received && req.framing == BodyFraming::kNone) {
        continue;  // the pooled connection was closed under us: retry once, fresh
      }
      co_await fail(502, "closed the connection without answering");
      co_return false;
    }

    // Response head to the client: hop-by-hop fields dropped, framing decided here.
    bool client_11 = req.version_minor == 1;
    bool encode = false, close_after = !req.keep_alive;
    std::string& out = response_head_;
    out.clear();
    out += "HTTP/1.1 ";
    AppendStatus(out, resp.status);
    out += ' ';
    out += resp.reason;
    out += "\r\n";
    for (const Header& h : resp.headers) {
      if (IsHopByHop(h.name, resp.connection_options)) continue;
      AppendField(out, h.name, h.value);
    }
    if (resp.framing == BodyFraming::kChunked || resp.framing == BodyFraming::kUntilClose) {
      if (client_11) {
        out += "Transfer-Encoding: chunked\r\n";
        encode = true;
      } else {
        close_after = true;  // HTTP/1.0: the end of the body is the end of the connection
      }
    }
    out += close_after ? "Connection: close\r\n" : (client_11 ? "" : "Connection: keep-alive\r\n");
    out += "\r\n";
    ex.status = resp.status;
    // The head goes out together with the part of a Content-Length body already read
    // (all of a small one): one write instead of two.
    uint64_t body_left = resp.framing == BodyFraming::kLength ? resp.content_length : 0;
    size_t with_head = static_cast<size_t>(std::min<uint64_t>(body_left, upstream_->size()));
    Arm(opt().body_timeout);
    std::array<asio::const_buffer, 2> head_and_body = {
        asio::buffer(out), asio::buffer(upstream_->data().data(), with_head)};
    co_await StartWrite(client_.socket, head_and_body);
    if (Outcome() != Io::kOk) {
      upstream_.reset();
      co_return false;
    }
    ex.bytes += out.size() + with_head;
    upstream_->consume(with_head);
    body_left -= with_head;
    Copy c = Copy::kOk;
    std::optional<HttpError> framing_error;
    switch (resp.framing) {
      case BodyFraming::kNone:
        break;
      case BodyFraming::kLength:
        if (body_left > 0) {
          c = co_await CopyLength(*upstream_, client_.socket, body_left, &ex.bytes);
        }
        break;
      case BodyFraming::kChunked: {
        ChunkedDecoder decoder(~uint64_t{0}, 502);
        c = co_await CopyChunked(*upstream_, client_.socket, decoder, encode, &ex.bytes);
        framing_error = decoder.error();
        break;
      }
      case BodyFraming::kUntilClose:
        c = co_await CopyUntilClose(*upstream_, client_.socket, encode, &ex.bytes);
        break;
    }
    bool reusable = c == Copy::kOk && resp.keep_alive && resp.framing != BodyFraming::kUntilClose;
    if (reusable && w_.table.Get()->HasAddress(upstream_->address)) {
      w_.pool.Put(std::move(upstream_), opt().max_idle_per_target);
    }
    upstream_.reset();  // draining: a removed target's connection closes once its request is done
    co_return c == Copy::kOk && !close_after;
  }

  Worker& w_;
  BufferedSocket client_;
  std::string client_ip_;
  Timer timer_;
  uint64_t timer_gen_ = 0;
  Clock::time_point deadline_{};
  Clock::time_point timer_expiry_{};  // when timer_ fires, if timer_armed_
  bool timer_armed_ = false;
  bool timed_out_ = false;
  error_code io_ec_;  // the outcome of the last StartRead/StartWrite
  // Reused by each request in turn, so their capacity is allocated once per connection.
  std::string request_head_;   // the client's head, as read
  std::string upstream_head_;  // the head sent upstream
  ResponseHead response_;      // the upstream's head, parsed
  std::string response_head_;  // the head sent to the client
  bool closing_ = false;
  uint64_t requests_ = 0;
  std::unique_ptr<UpstreamConnection> upstream_;
};

void ScheduleSweep(Worker& w) {
  w.sweep_timer->expires_after(std::chrono::seconds(2));
  w.sweep_timer->async_wait([&w](error_code ec) {
    if (ec) return;
    w.pool.Sweep(std::chrono::seconds(30), *w.table.Get());
    ScheduleSweep(w);
  });
}

Result<tcp::endpoint> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return BadInput("--listen '" + listen + "': want host:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return BadInput("--listen '" + listen + "': '" + host + "' is not an IP address");
  int port = 0;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return BadInput("--listen '" + listen + "': bad port");
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

}  // namespace

struct Router::Impl {
  explicit Impl(RouterOptions o)
      : options(std::move(o)), feed(holder, registry), access_log(options.home), health(holder) {}

  Task<void> AcceptLoop() {
    size_t next = 0;
    asio::steady_timer backoff(acceptor->get_executor());
    while (true) {
      Worker& w = *workers[next++ % workers.size()];
      error_code ec;
      auto socket = co_await acceptor->async_accept(*w.io, asio::redirect_error(kAwait, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        // Out of descriptors or similar: wait a little instead of spinning.
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(asio::redirect_error(kAwait, ec));
        continue;
      }
      if (connections.fetch_add(1) >= options.max_connections) {
        connections.fetch_sub(1);
        continue;  // the socket closes as it goes out of scope
      }
      asio::post(*w.io, [&w, s = std::move(socket)]() mutable {
        auto conn = std::make_shared<ClientConnection>(w, std::move(s));
        asio::co_spawn(*w.io, ClientConnection::Serve(std::move(conn)), asio::detached);
      });
    }
  }

  RouterOptions options;
  RouteTableHolder holder;
  SharedStateRegistry registry;
  FeedHandler feed;
  std::unique_ptr<FeedServer> feed_server;
  AccessLog access_log;
  HealthChecker health;
  std::atomic<int> connections{0};
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<tcp::acceptor> acceptor;
  uint16_t port = 0;
  bool running = false;
};

Router::Router(RouterOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Router::~Router() { Stop(); }

Status Router::Start() {
  Impl& m = *impl_;
  if (m.running) return Conflict("router already started");
  ADHOC_ASSIGN_OR_RETURN(tcp::endpoint endpoint, ParseListen(m.options.listen));
  int threads =
      m.options.threads > 0 ? m.options.threads : std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < threads; ++i) {
    m.workers.push_back(std::make_unique<Worker>(m.options, m.holder, m.access_log, m.connections));
  }
  m.acceptor = std::make_unique<tcp::acceptor>(*m.workers[0]->io);
  error_code ec;
  m.acceptor->open(endpoint.protocol(), ec);
  if (!ec) m.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) m.acceptor->bind(endpoint, ec);
  if (!ec) m.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    m.acceptor.reset();
    m.workers.clear();
    return Failed("listening on " + m.options.listen + ": " + ec.message());
  }
  m.port = m.acceptor->local_endpoint().port();
  if (!m.options.home.empty() && m.options.feed_socket) {
    m.feed_server = std::make_unique<FeedServer>(m.feed);
    Status s = m.feed_server->Start(paths::RouterSocket(m.options.home));
    if (!s.ok()) {
      m.feed_server.reset();
      m.acceptor.reset();
      m.workers.clear();
      return s;
    }
  }
  if (!m.options.home.empty() && m.options.write_pid) {
    std::error_code fs_ec;
    std::filesystem::create_directories(paths::RouterDir(m.options.home), fs_ec);
    std::ofstream(paths::RouterPid(m.options.home)) << getpid() << "\n";
  }
  m.health.Start();
  asio::co_spawn(*m.workers[0]->io, m.AcceptLoop(), asio::detached);
  for (auto& w : m.workers) {
    ScheduleSweep(*w);
    w->thread = std::thread([io = w->io.get()] {
      // Errors inside a connection end that connection; the loop itself keeps going.
      while (true) {
        try {
          io->run();
          break;
        } catch (...) {
        }
      }
    });
  }
  m.running = true;
  return OkStatus();
}

void Router::Stop() {
  Impl& m = *impl_;
  if (!m.running) return;
  m.running = false;
  if (m.feed_server) m.feed_server->Stop();
  m.health.Stop();
  asio::post(*m.workers[0]->io, [&m] {
    error_code ec;
    m.acceptor->close(ec);
  });
  for (auto& w : m.workers) {
    asio::post(*w->io, [wp = w.get()] {
      wp->sweep_timer->cancel();
      wp->pool.Clear();
      std::vector<ClientConnection*> live(wp->live.begin(), wp->live.end());
      for (ClientConnection* c : live) c->Close();
    });
  }
  for (auto& w : m.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  m.acceptor.reset();
  m.workers.clear();
  m.access_log.Flush();
  if (!m.options.home.empty() && m.options.write_pid) {
    std::error_code fs_ec;
    std::filesystem::remove(paths::RouterPid(m.options.home), fs_ec);
  }
}

uint16_t Router::port() const { return impl_->port; }

std::string Router::HandleFeedMessage(std::string_view line) { return impl_->feed.Handle(line); }

RouteTableHolder& Router::table() { return impl_->holder; }

void Router::FlushAccessLogs() { impl_->access_log.Flush(); }

}  // namespace adhoc::router
