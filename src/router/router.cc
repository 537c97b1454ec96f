#include "router/router.h"

#include <fcntl.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include "common/paths.h"
#include "router/access_log.h"
#include "router/error_pages.h"
#include "router/feed.h"
#include "router/metrics.h"
#include "router/static_files.h"
#include "router/wake_signal.h"
#include "router/websocket_frames.h"

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

// ---------------------------------------------------------------------------
// TLS over a non-blocking socket: OpenSSL reads and writes the descriptor itself (one
// syscall per read, as nginx does; no memory-BIO copies) and the coroutine waits on the
// reactor only when OpenSSL wants to read or write more.

// A socket BIO that never raises SIGPIPE (send with MSG_NOSIGNAL).
BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "adhoc-socket");
    BIO_meth_set_write(m, [](BIO* b, const char* data, int n) -> int {
      BIO_clear_retry_flags(b);
      int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
      ssize_t r = ::send(fd, data, static_cast<size_t>(n), MSG_NOSIGNAL);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_write(b);
      }
      return static_cast<int>(r);
    });
    BIO_meth_set_read(m, [](BIO* b, char* data, int n) -> int {
      BIO_clear_retry_flags(b);
      int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
      ssize_t r = ::recv(fd, data, static_cast<size_t>(n), 0);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_read(b);
      }
      return static_cast<int>(r);
    });
    BIO_meth_set_ctrl(
        m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
    BIO_meth_set_create(m, [](BIO* b) -> int {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

class TlsStream {
 public:
  TlsStream(Socket socket, std::shared_ptr<const TlsContext> context)
      : socket_(std::move(socket)), context_(std::move(context)) {
    error_code ec;
    socket_.non_blocking(true, ec);
    ssl_ = SSL_new(context_->native());
    if (ssl_) {
      BIO* bio = BIO_new(SocketBioMethod());
      BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(socket_.native_handle())));
      SSL_set_bio(ssl_, bio, bio);
      SSL_set_accept_state(ssl_);
    }
  }
  ~TlsStream() {
    if (ssl_) SSL_free(ssl_);
  }
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  Socket& lowest() { return socket_; }

  Task<bool> Handshake(error_code& ec) {
    ec = {};
    if (!ssl_) {
      ec = asio::error::no_memory;
      co_return false;
    }
    ERR_clear_error();
    while (true) {
      int r = SSL_do_handshake(ssl_);
      if (r == 1) {
        ERR_clear_error();  // whatever a callback left (a certificate not minted)
        co_return true;
      }
      Socket::wait_type wait;
      if (!Retry(r, ec, wait)) co_return false;
      co_await socket_.async_wait(wait, asio::redirect_error(kAwait, ec));
      if (ec) co_return false;
    }
  }

  // OpenSSL's error queue is kept empty (it is cleared after every failure), so reads and
  // writes skip clearing it first: that costs more than the rest of a small read.
  Task<size_t> ReadSome(asio::mutable_buffer b, error_code& ec) {
    ec = {};
    while (true) {
      int n = SSL_read(ssl_, b.data(), static_cast<int>(std::min<size_t>(b.size(), 1 << 30)));
      if (n > 0) co_return static_cast<size_t>(n);
      Socket::wait_type wait;
      if (!Retry(n, ec, wait)) co_return 0;
      co_await socket_.async_wait(wait, asio::redirect_error(kAwait, ec));
      if (ec) co_return 0;
    }
  }

  // Writes all of `buffers`; small gathers are joined first so they make one TLS record.
  template <typename Buffers>
  Task<size_t> WriteAll(const Buffers& buffers, error_code& ec) {
    ec = {};
    size_t total = asio::buffer_size(buffers);
    size_t count =
        std::distance(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
    auto it = asio::buffer_sequence_begin(buffers);
    auto end = asio::buffer_sequence_end(buffers);
    bool joined = count > 1 && total <= 16 * 1024;
    if (joined) {
      gather_.clear();
      for (auto p = it; p != end; ++p) {
        asio::const_buffer piece(*p);
        gather_.append(static_cast<const char*>(piece.data()), piece.size());
      }
    }
    const char* data = nullptr;
    size_t size = 0;
    while (true) {
      if (size == 0) {
        if (joined) {
          if (data) co_return total;  // the joined buffer is out
          data = gather_.data();
          size = gather_.size();
        } else {
          if (it == end) co_return total;
          asio::const_buffer piece(*it++);
          data = static_cast<const char*>(piece.data());
          size = piece.size();
          if (size == 0) continue;
        }
      }
      int n = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(size, 1 << 30)));
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
        if (joined && size == 0) co_return total;
        continue;
      }
      Socket::wait_type wait;
      if (!Retry(n, ec, wait)) co_return 0;
      co_await socket_.async_wait(wait, asio::redirect_error(kAwait, ec));
      if (ec) co_return 0;
    }
  }

  // Best effort, never waits: a close_notify alert if the socket takes it now.
  void SendCloseNotify() {
    if (!ssl_ || !SSL_is_init_finished(ssl_)) return;
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }

  // Best effort, never waits: `data` as application data if the socket takes it now.
  bool TryWriteNow(std::string_view data) {
    ERR_clear_error();
    bool ok = SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
              static_cast<int>(data.size());
    ERR_clear_error();
    return ok;
  }

 private:
  // After an OpenSSL call returned `r` <= 0: true when it waits for the socket (`wait`
  // says which way), else false with `ec` set and the error queue cleared.
  bool Retry(int r, error_code& ec, Socket::wait_type& wait) {
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      wait = err == SSL_ERROR_WANT_READ ? Socket::wait_read : Socket::wait_write;
      return true;
    }
    ERR_clear_error();
    if (err == SSL_ERROR_ZERO_RETURN) {
      ec = asio::error::eof;
    } else {
      ec = asio::error::connection_reset;
    }
    return false;
  }

  Socket socket_;
  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;
  std::string gather_;
};

inline Socket& Lowest(Socket& s) { return s; }
inline Socket& Lowest(TlsStream& s) { return s.lowest(); }

// One read of what is available: the asio operation itself for a plain socket (no extra
// coroutine frame on the hot path), OpenSSL's for TLS.
inline auto ReadSomeOp(Socket& s, asio::mutable_buffer b, error_code& ec) {
  return s.async_read_some(b, asio::redirect_error(kAwait, ec));
}
inline auto ReadSomeOp(TlsStream& s, asio::mutable_buffer b, error_code& ec) {
  return s.ReadSome(b, ec);
}
template <typename Buffers>
auto WriteAllOp(Socket& s, const Buffers& buffers, error_code& ec) {
  return asio::async_write(s, buffers, asio::redirect_error(kAwait, ec));
}
template <typename Buffers>
auto WriteAllOp(TlsStream& s, const Buffers& buffers, error_code& ec) {
  return s.WriteAll(buffers, ec);
}

// A stream with a read buffer: bytes read but not yet consumed stay between calls
// (the start of a body after its head, a pipelined request).
template <typename Stream>
struct Buffered {
  template <typename... Args>
  explicit Buffered(Args&&... args) : socket(std::forward<Args>(args)...), buf(kSmall) {}
  static constexpr size_t kSmall = 4096;  // idle keep-alive connections stay small
  Stream socket;
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
  asio::mutable_buffer Space(size_t want) {
    Reserve(want);
    return asio::buffer(buf.data() + end, buf.size() - end);
  }
};

struct UpstreamConnection : Buffered<Socket> {
  using Buffered<Socket>::Buffered;
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

IpAddress ToIpAddress(const asio::ip::address& a) {
  if (a.is_v4()) return IpFromV4(a.to_v4().to_bytes());
  return IpFromV6(a.to_v6().to_bytes());
}

// Whether a (normalized) host names the router itself: an IP address, not an environment.
bool IsRouterHost(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (!(host.front() >= '0' && host.front() <= '9') && host.find(':') == std::string_view::npos) {
    return false;
  }
  return ParseIpAddress(host).has_value();
}

// Connections as the worker sees them, whatever their stream.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // From the worker's thread (Stop): ends the connection at its next step.
  virtual void Close() = 0;
  // From the worker's thread: closes an upgraded connection of this environment.
  virtual void CloseIfUpgradedIn(const EnvStats* env) = 0;
};

}  // namespace

// What the workers share, owned by Router::Impl.
struct Shared {
  Shared(const RouterOptions& o, RouteTableHolder& h, AccessLog& log)
      : options(o), holder(h), access_log(log) {
    if (o.wake || !o.home.empty())
      waker = std::make_unique<WakeSignal>(
          o.home.empty() ? std::filesystem::path() : paths::ServerSocket(o.home), o.wake);
  }
  // "wake ENV" to the control plane, for requests held for a sleeping environment.
  void RequestWake(const std::string& env) {
    if (waker) waker->Request(env);
  }
  std::unique_ptr<WakeSignal> waker;
  const RouterOptions& options;
  RouteTableHolder& holder;
  AccessLog& access_log;
  RouterMetrics metrics;
  std::vector<Cidr> metrics_allow;
  std::atomic<std::shared_ptr<const TlsContext>> tls;  // for new TLS connections
  uint16_t tls_port = 0;
  // The thread that accepts connections also opens upstream sockets (OpenOn below).
  asio::io_context* registrar = nullptr;
};

// Opens `socket` on `elsewhere`'s thread, then completes on the caller's executor.
// Why: asio allocates a socket's reactor state on the thread that opens it and keeps it
// for reuse forever; made on the workers' threads, such states end up scattered among
// the connections' memory and keep its pages from going back to the system after a burst.
// Made on one other thread they sit together. Costs two thread hops per new upstream
// connection (pooled ones are reused without it).
template <typename Token>
auto OpenOn(asio::io_context& elsewhere, Socket& socket, tcp protocol, Token&& token) {
  return asio::async_initiate<Token, void(error_code)>(
      [&elsewhere, &socket, protocol](auto handler) {
        auto back = asio::get_associated_executor(handler, socket.get_executor());
        auto work = asio::make_work_guard(back);
        asio::post(elsewhere,
                   [&socket, protocol, h = std::move(handler), work = std::move(work)]() mutable {
                     error_code ec;
                     socket.open(protocol, ec);
                     auto ex = work.get_executor();
                     asio::post(ex, [h = std::move(h), ec]() mutable { h(ec); });
                   });
      },
      token);
}

struct Worker {
  Worker(Shared& s, uint64_t seed)
      : io(std::make_unique<asio::io_context>(1)),
        shared(s),
        options(s.options),
        table(s.holder),
        sweep_timer(std::make_unique<asio::steady_timer>(*io)),
        request_id_prefix(seed) {}
  ~Worker() {
    pool.Clear();
    sweep_timer.reset();
    // Destroys pending handlers (and their coroutines) while the rest is still alive.
    io.reset();
  }

  // 32 hex digits: this worker's random prefix and a counter. Unique without a lock.
  void NextRequestId(char out[32]) {
    static constexpr char kHex[] = "0123456789abcdef";
    uint64_t parts[2] = {request_id_prefix, ++request_id_counter};
    for (int p = 0; p < 2; ++p) {
      for (int i = 0; i < 16; ++i) out[p * 16 + i] = kHex[(parts[p] >> (60 - 4 * i)) & 15];
    }
  }

  std::unique_ptr<asio::io_context> io;
  Shared& shared;
  const RouterOptions& options;
  RouteTableHolder::Reader table;
  UpstreamPool pool;
  std::unordered_set<ConnectionBase*> live;
  uint64_t round_robin = 0;
  std::unique_ptr<asio::steady_timer> sweep_timer;
  uint64_t request_id_prefix, request_id_counter = 0;
  std::thread thread;
};

namespace {

enum class Io { kOk, kClosed, kTimeout };

// Result of copying a body from one side to the other.
enum class Copy { kOk, kSourceFailed, kSourceTimeout, kSinkFailed, kBadFraming };

struct Exchange {
  Exchange(RequestHead& r, char* id) : req(r), id_buf(id) {}
  RequestHead& req;                         // the connection's, reused by each request in turn
  std::shared_ptr<const RouteTable> table;  // keeps `env` alive
  const Environment* env = nullptr;
  RequestMetrics* metrics = nullptr;  // the (environment, service) counters
  Clock::time_point start;
  int64_t start_ms = 0;
  int status = 0;
  uint64_t bytes = 0;     // response bytes sent
  uint64_t bytes_in = 0;  // request bytes read (head and body)
  std::string target_id;
  bool json = false;
  // Access: credentials consumed by the router, not to be forwarded.
  const Header* consumed_authorization = nullptr;
  bool strip_cookie = false;
  const char* refusal = "";  // why the rules refused it
  // X-Request-Id: the client's, or one made here into id_buf (then added upstream).
  char* id_buf;  // 32 chars, the connection's
  std::string_view request_id;
  bool request_id_given = false;
};

template <typename ClientStream>
class ClientConnection : public ConnectionBase,
                         public std::enable_shared_from_this<ClientConnection<ClientStream>> {
 public:
  static constexpr bool kTls = std::is_same_v<ClientStream, TlsStream>;

  template <typename... StreamArgs>
  ClientConnection(Worker& w, StreamArgs&&... args)
      : w_(w), client_(std::forward<StreamArgs>(args)...), timer_(*w.io) {
    w_.live.insert(this);
    if constexpr (kTls) w_.shared.metrics.open_tls_connections.fetch_add(1);
    error_code ec;
    Socket& s = Lowest(client_.socket);
    s.set_option(tcp::no_delay(true), ec);
    auto remote = s.remote_endpoint(ec);
    if (!ec) {
      client_ip_ = remote.address().to_string();
      client_addr_ = ToIpAddress(remote.address());
    }
  }
  ~ClientConnection() override {
    w_.live.erase(this);
    if constexpr (kTls) w_.shared.metrics.open_tls_connections.fetch_sub(1);
    w_.shared.metrics.open_connections.fetch_sub(1);
  }

  static Task<void> Serve(std::shared_ptr<ClientConnection> self) {
    bool ready = true;
    if constexpr (kTls) ready = co_await self->Handshake();
    while (ready && !self->closing_) {
      bool keep = co_await self->HandleOne();
      if (!keep) break;
      self->client_.Shrink();
      self->ShrinkHeads();
    }
    co_await self->CloseGracefully();
  }

  void Close() override {
    closing_ = true;
    error_code ec;
    Lowest(client_.socket).close(ec);
    if (upstream_) upstream_->socket.close(ec);
  }

  void CloseIfUpgradedIn(const EnvStats* env) override {
    if (!tunnel_env_ || tunnel_env_.get() != env) return;
    // A WebSocket gets a Close frame (1001, going away) if it sits between two frames and
    // nothing is being written to it; then both sides get an orderly end of stream.
    closing_ = true;
    error_code ec;
    if (websocket_ && downstream_writing_) {
      // A write to the client is in flight (its completion not yet handled): the Close frame
      // follows it, sent by the downstream pump when the write is done.
      going_away_after_write_ = true;
      if (upstream_) upstream_->socket.close(ec);
      return;
    }
    if (websocket_ && downstream_frames_.at_boundary()) SendGoingAway();
    Lowest(client_.socket).shutdown(Socket::shutdown_send, ec);
    Lowest(client_.socket).cancel(ec);
    if (upstream_) upstream_->socket.close(ec);
  }

  // The WebSocket Close frame (1001, going away), written now without waiting.
  void SendGoingAway() {
    if constexpr (kTls) {
      client_.socket.TryWriteNow(kWebSocketGoingAway);
    } else {
      ::send(client_.socket.native_handle(), kWebSocketGoingAway.data(), kWebSocketGoingAway.size(),
             MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }

 private:
  const RouterOptions& opt() const { return w_.options; }
  Shared& shared() { return w_.shared; }

  // Gives back the reused head buffers after an unusually large head (between requests).
  void ShrinkHeads() {
    constexpr size_t kLarge = 16 * 1024;
    for (std::string* s : {&request_head_, &upstream_head_, &response_head_}) {
      if (s->capacity() > kLarge) *s = std::string();
    }
  }

  Task<bool> Handshake() {
    if constexpr (kTls) {
      Arm(opt().header_timeout);
      bool ok = co_await client_.socket.Handshake(io_ec_);
      if (!ok) shared().metrics.tls_handshake_failures_total.fetch_add(1);
      co_return ok;
    }
    co_return true;
  }

  // The end of a connection: a TLS close_notify, our FIN, and, when the client may still
  // be sending a body nobody read, a bounded wait that reads and drops it, so the client
  // reads our answer instead of a reset (RFC 9112 9.6).
  Task<void> CloseGracefully() {
    timer_.cancel();
    Socket& s = Lowest(client_.socket);
    error_code ec;
    if (!closing_) {
      if constexpr (kTls) client_.socket.SendCloseNotify();
      s.shutdown(Socket::shutdown_send, ec);
      if (linger_) {
        Arm(opt().linger_timeout);
        std::array<char, 16 * 1024> sink;
        uint64_t dropped = 0;
        while (dropped < 256 * 1024 * 1024) {
          size_t n =
              co_await s.async_read_some(asio::buffer(sink), asio::redirect_error(kAwait, ec));
          if (ec) break;
          dropped += n;
        }
        timer_.cancel();
      }
    }
    s.close(ec);
  }

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
    std::weak_ptr<ClientConnection> weak = this->weak_from_this();
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
      Lowest(self->client_.socket).cancel(ignored);
      if (self->upstream_) self->upstream_->socket.cancel(ignored);
    });
  }

  // Reads what is available into `s`; `want`: room to make (heads small, bodies large).
  template <typename S>
  Task<Io> ReadMore(Buffered<S>& s, size_t want = 16 * 1024) {
    error_code ec;
    size_t n = co_await ReadSomeOp(s.socket, s.Space(want), ec);
    if (ec) co_return timed_out_ ? Io::kTimeout : Io::kClosed;
    s.end += n;
    co_return Io::kOk;
  }

  // The hot path's reads and writes: the asio operation awaited directly, without the
  // coroutine frame ReadMore/Write cost; the outcome is left in io_ec_ (one operation at a
  // time outside tunnels) and read with Outcome(). A failed read yields 0.
  template <typename S>
  auto StartRead(Buffered<S>& s, size_t want) {
    return ReadSomeOp(s.socket, s.Space(want), io_ec_);
  }
  template <typename S, typename Buffers>
  auto StartWrite(S& s, const Buffers& buffers) {
    return WriteAllOp(s, buffers, io_ec_);
  }
  Io Outcome() const { return !io_ec_ ? Io::kOk : timed_out_ ? Io::kTimeout : Io::kClosed; }

  template <typename S, typename Buffers>
  Task<Io> Write(S& s, const Buffers& buffers) {
    error_code ec;
    co_await WriteAllOp(s, buffers, ec);
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
  template <typename S>
  Task<Io> WriteData(S& sink, std::string_view data, bool encode) {
    Arm(opt().body_timeout);
    if (!encode) co_return co_await Write(sink, asio::buffer(data.data(), data.size()));
    char size_line[24];
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    std::array<asio::const_buffer, 3> bufs = {asio::buffer(size_line, static_cast<size_t>(n)),
                                              asio::buffer(data.data(), data.size()),
                                              asio::buffer("\r\n", 2)};
    co_return co_await Write(sink, bufs);
  }

  template <typename Src, typename Sink>
  Task<Copy> CopyLength(Buffered<Src>& src, Sink& sink, uint64_t n, uint64_t* counted) {
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
  // writes the bare data (an HTTP/1.0 client, closed at the end). `counted` gets the
  // bytes written; `counted_in` the bytes read.
  template <typename Src, typename Sink>
  Task<Copy> CopyChunked(Buffered<Src>& src, Sink& sink, ChunkedDecoder& decoder, bool encode,
                         uint64_t* counted, uint64_t* counted_in = nullptr) {
    while (true) {
      while (src.size() > 0 && !decoder.done() && !decoder.error()) {
        ChunkedDecoder::Step step = decoder.Feed(src.data());
        if (!step.data.empty()) {
          if (co_await WriteData(sink, step.data, encode) != Io::kOk) co_return Copy::kSinkFailed;
          if (counted) *counted += step.data.size() + (encode ? 8 : 0);
        }
        src.consume(step.consumed);
        if (counted_in) *counted_in += step.consumed;
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

  template <typename Src, typename Sink>
  Task<Copy> CopyUntilClose(Buffered<Src>& src, Sink& sink, bool encode, uint64_t* counted) {
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

  // The request's id field and keep-alive choice for a page or redirect of the router's own.
  void AppendOwnHeaders(std::string& out, const Exchange& ex, bool keep_alive) {
    if (!ex.request_id.empty()) AppendField(out, "X-Request-Id", ex.request_id);
    out += keep_alive ? (ex.req.version_minor == 0 ? "Connection: keep-alive\r\n" : "")
                      : "Connection: close\r\n";
    out += "\r\n";
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
    AppendOwnHeaders(out, ex, keep_alive);
    if (ex.req.method != "HEAD") out += page.body;
    ex.status = status;
    co_await WriteClient(&ex, out);
  }

  void Finish(Exchange& ex) {
    if (!ex.env) return;
    EnvStats& s = *ex.env->stats;
    s.bytes.fetch_add(ex.bytes, std::memory_order_relaxed);
    s.bytes_received.fetch_add(ex.bytes_in, std::memory_order_relaxed);
    if (ex.status >= 500) s.errors_5xx.fetch_add(1, std::memory_order_relaxed);
    auto elapsed = Clock::now() - ex.start;
    if (ex.metrics) {
      ex.metrics->Record(ex.status,
                         std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
    }
    AccessRecord rec;
    rec.time_ms = ex.start_ms;
    rec.status = ex.status;
    rec.bytes = ex.bytes;
    rec.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    rec.target = std::move(ex.target_id);
    rec.request_id = ex.request_id;
    shared().access_log.Log(ex.env->name, ex.req.method, ex.req.path, rec);
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
      // A bare CR or LF can never become a valid head: refused now, not at the deadline.
      if (HasBareCrOrLf(d, scanned)) {
        shared().metrics.rejected_requests_total.fetch_add(1, std::memory_order_relaxed);
        co_await SendPage(ex, 400, "The request was rejected: bare CR or LF in head.", false);
        co_return false;
      }
      scanned = d.size();
      if (d.size() > opt().limits.max_header_bytes) {
        shared().metrics.rejected_requests_total.fetch_add(1, std::memory_order_relaxed);
        bool in_request_line = d.find("\r\n") == std::string_view::npos;
        if (in_request_line && d.size() > opt().limits.max_uri_bytes) {
          co_await SendPage(ex, 414, "The request-target is too long.", false);
        } else {
          co_await SendPage(ex, 431, "The request's header section is too large.", false);
        }
        co_return false;
      }
      size_t n = co_await StartRead(client_, Buffered<ClientStream>::kSmall);
      client_.end += n;
      Io r = Outcome();
      if (r != Io::kOk) {
        if (r == Io::kTimeout && got_bytes && !closing_) {
          shared().metrics.rejected_requests_total.fetch_add(1, std::memory_order_relaxed);
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
    Exchange ex(request_, request_id_);
    std::string& head = request_head_;  // ex.req's header views point into it
    head.clear();
    // What a page for a head that never parsed reads must not be the previous request's.
    request_.method.clear();
    request_.host.clear();
    request_.headers.clear();
    request_.version_minor = 1;
    // The common keep-alive case without ReadRequestHead's coroutine frame: wait for the
    // next request under the idle timeout and take its head if one read brought it whole.
    // Anything else (first request, pipelined or partial heads, leading empty lines,
    // limits, 408) is ReadRequestHead's.
    if (client_.size() == 0 && requests_ > 0 && !closing_) {
      Arm(opt().idle_timeout);
      size_t n = co_await StartRead(client_, Buffered<ClientStream>::kSmall);
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
    ex.bytes_in = head.size();
    if (auto err = ParseRequestHead(head, opt().limits, ex.req)) {
      shared().metrics.rejected_requests_total.fetch_add(1, std::memory_order_relaxed);
      if (err->status == 413) linger_ = true;  // the client may be sending that body now
      std::string detail = "The request was rejected: " + err->reason + ".";
      co_await SendPage(ex, err->status, detail, false);
      co_return false;
    }
    if (const std::string_view* given = ex.req.Find("x-request-id");
        given && !given->empty() && given->size() <= 200) {
      ex.request_id = *given;
      ex.request_id_given = true;
    } else {
      w_.NextRequestId(ex.id_buf);
      ex.request_id = std::string_view(ex.id_buf, 32);
    }
    if (const std::string_view* accept = ex.req.Find("accept")) ex.json = PrefersJson(*accept);
    // A body we do not read leaves the connection unusable: close after answering.
    bool can_keep = ex.req.keep_alive && ex.req.framing == BodyFraming::kNone;
    linger_ = ex.req.framing != BodyFraming::kNone;  // until Proxy has read the body

    ex.table = w_.table.Get();
    NormalizeHostInto(ex.req.host, host_);
    const std::string& host = host_;
    ex.env = ex.table->FindHost(host);
    if (!ex.env) {
      if (IsRouterHost(host)) {
        if constexpr (!kTls) {
          if (opt().tls.redirect_http && ex.req.path != "/metrics") {
            co_return co_await RedirectToHttps(ex, can_keep);
          }
        }
        co_return co_await ServeRouterPage(ex, can_keep);
      }
      shared().metrics.unknown_host_requests_total.fetch_add(1, std::memory_order_relaxed);
      if constexpr (!kTls) {
        if (opt().tls.redirect_http) co_return co_await RedirectToHttps(ex, can_keep);
      }
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
    ex.metrics = ex.env->router_metrics.get();
    bool keep;
    if constexpr (!kTls) {
      if (opt().tls.redirect_http) {
        keep = co_await RedirectToHttps(ex, can_keep);
        stats.in_flight.fetch_sub(1, std::memory_order_relaxed);
        Finish(ex);
        co_return keep;
      }
    }
    // Access rules come first: nothing (not even an environment's status) is shown to a
    // client the rules refuse.
    AccessVerdict verdict = AccessVerdict::kAllow;
    if (ex.env->access) {
      AccessDecision d = CheckAccess(*ex.env->access, ex.req, client_addr_);
      verdict = d.verdict;
      ex.consumed_authorization = d.consumed_authorization;
      ex.strip_cookie = d.strip_cookie;
      if (verdict != AccessVerdict::kAllow) ex.refusal = d.why;
    }
    // Proxied requests go straight to Proxy (one coroutine frame less); the router's own
    // answers, access refusals and folders through Dispatch.
    const Route* route = nullptr;
    if (ex.env->status == EnvStatus::kRunning && verdict == AccessVerdict::kAllow) {
      route = ex.env->Match(ex.req.path);
      if (route && route->is_folder()) route = nullptr;
    }
    if (route) {
      ex.metrics = route->metrics.get();
      keep = co_await Proxy(ex, *route);
    } else {
      keep = co_await Dispatch(ex, verdict, can_keep);
    }
    stats.in_flight.fetch_sub(1, std::memory_order_relaxed);
    Finish(ex);
    co_return keep;
  }

  Task<bool> Dispatch(Exchange& ex, AccessVerdict verdict, bool can_keep) {
    const Environment& env = *ex.env;
    if (verdict != AccessVerdict::kAllow) co_return co_await Refuse(ex, verdict, can_keep);
    if (env.status == EnvStatus::kSleeping) co_return co_await HoldWhileAsleep(ex, can_keep);
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
    ex.metrics = route->metrics.get();
    if (route->is_folder()) co_return co_await ServeFolder(ex, *route, can_keep);
    co_return co_await Proxy(ex, *route);
  }

  // A request for a sleeping environment: the control plane is asked to wake it (again each
  // second: the ask is idempotent), and the request waits until the table says the
  // environment runs, then goes on as any other. Bounded: 503 with Retry-After after
  // hold_timeout, or for a browser after holding_page_after a page that reloads itself.
  Task<bool> HoldWhileAsleep(Exchange& ex, bool can_keep) {
    const std::string name = ex.env->name;
    const std::string host = host_;
    const auto start = Clock::now();
    const RouterOptions& o = opt();
    const std::string_view* accept = ex.req.Find("accept");
    const bool browser = accept && accept->find("text/html") != std::string_view::npos &&
                         (ex.req.method == "GET" || ex.req.method == "HEAD");
    // The connection's watchdog must not end the wait (nothing is read or written meanwhile).
    Arm(o.hold_timeout + std::chrono::seconds(10));
    shared().RequestWake(name);
    Timer timer(co_await asio::this_coro::executor);
    for (;;) {
      timer.expires_after(std::chrono::milliseconds(20));
      error_code ec;
      co_await timer.async_wait(asio::redirect_error(kAwait, ec));
      std::shared_ptr<const RouteTable> table = w_.table.Get();
      const Environment* env = table->FindHost(host);
      if (!env || env->name != name || env->status != EnvStatus::kSleeping) {
        if (!env || env->name != name) {
          co_await SendPage(ex, 503, "Environment '" + name + "' went away while it was woken.",
                            can_keep, "Retry-After: 5\r\n");
          co_return can_keep;
        }
        // Awake (or another status, which Dispatch answers): the request goes on from here.
        ex.table = std::move(table);
        ex.env = env;
        co_return co_await Dispatch(ex, AccessVerdict::kAllow, can_keep);
      }
      const auto waited = Clock::now() - start;
      if (browser && waited >= o.holding_page_after) {
        co_await SendPage(
            ex, 503,
            "Environment '" + name + "' was asleep and is waking up; this page reloads by itself.",
            can_keep, "Retry-After: 2\r\nRefresh: 2\r\n");
        co_return can_keep;
      }
      if (waited >= o.hold_timeout) {
        co_await SendPage(
            ex, 503,
            "Environment '" + name + "' was asleep and is still waking up; try again in a moment.",
            can_keep, "Retry-After: 5\r\n");
        co_return can_keep;
      }
      shared().RequestWake(name);  // at most once a second per environment (wake_signal.h)
    }
  }

  // 401, 403, or the token link's redirect.
  Task<bool> Refuse(Exchange& ex, AccessVerdict verdict, bool can_keep) {
    const AccessRules& rules = *ex.env->access;
    if (verdict == AccessVerdict::kTokenLink) {
      std::string location = ex.req.path;
      std::string query = WithoutTokenParam(ex.req.query);
      if (!query.empty()) location += "?" + query;
      std::string out = "HTTP/1.1 302 Found\r\nLocation: " + location +
                        "\r\nCache-Control: no-store\r\nContent-Length: 0\r\nSet-Cookie: ";
      out += kAccessCookie;
      out += "=" + rules.token + "; Path=/; Max-Age=" + std::to_string(rules.cookie_max_age_s) +
             "; HttpOnly; SameSite=Lax";
      if constexpr (kTls) out += "; Secure";
      out += "\r\n";
      AppendOwnHeaders(out, ex, can_keep);
      ex.status = 302;
      if (co_await WriteClient(&ex, out) != Io::kOk) co_return false;
      co_return can_keep;
    }
    if (verdict == AccessVerdict::kForbidden) {
      ex.env->stats->denied_address.fetch_add(1, std::memory_order_relaxed);
      co_await SendPage(
          ex, 403,
          "Environment '" + ex.env->name + "' is not open to your address (" + client_ip_ + ").",
          can_keep);
      co_return can_keep;
    }
    ex.env->stats->denied_credentials.fetch_add(1, std::memory_order_relaxed);
    std::string challenge;
    if (!rules.basic_credentials.empty()) {
      challenge = "WWW-Authenticate: Basic realm=\"" + rules.realm + "\", charset=\"UTF-8\"\r\n";
    }
    co_await SendPage(ex, 401, "Environment '" + ex.env->name + "': " + ex.refusal + ".", can_keep,
                      challenge);
    co_return can_keep;
  }

  // 308 to the same URL over https (the plain listener when --redirect-http is on).
  Task<bool> RedirectToHttps(Exchange& ex, bool can_keep) {
    std::string location = "https://";
    std::string_view host = ex.req.host;
    if (!host.empty() && host.front() == '[') {
      host = host.substr(0, host.find(']') + 1);
    } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
      host = host.substr(0, colon);
    }
    location += host;
    if (shared().tls_port != 443) location += ":" + std::to_string(shared().tls_port);
    location += ex.req.path;
    if (ex.req.has_query) location += "?" + ex.req.query;
    std::string out =
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: " + location + "\r\nContent-Length: 0\r\n";
    AppendOwnHeaders(out, ex, can_keep);
    ex.status = 308;
    if (co_await WriteClient(&ex, out) != Io::kOk) co_return false;
    co_return can_keep;
  }

  // Requests addressed to the router itself (an IP address as Host): /metrics for allowed
  // clients; anything else is an unknown host.
  Task<bool> ServeRouterPage(Exchange& ex, bool can_keep) {
    bool allowed = false;
    for (const Cidr& c : shared().metrics_allow) allowed = allowed || c.Contains(client_addr_);
    if (!allowed || ex.req.path != "/metrics" ||
        (ex.req.method != "GET" && ex.req.method != "HEAD")) {
      shared().metrics.unknown_host_requests_total.fetch_add(1, std::memory_order_relaxed);
      co_await SendPage(ex, 404,
                        "No environment has the host '" + host_ +
                            "'. Check the URL, or list environments with `adhoc ls`.",
                        can_keep);
      co_return can_keep;
    }
    std::string body = RenderMetrics(*ex.table, shared().metrics);
    std::string out =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        "Cache-Control: no-store\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n";
    AppendOwnHeaders(out, ex, can_keep);
    if (ex.req.method != "HEAD") out += body;
    ex.status = 200;
    if (co_await WriteClient(&ex, out) != Io::kOk) co_return false;
    co_return can_keep;
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

  // Least outstanding requests; ties rotate. (Every target fed is healthy: the control plane
  // feeds no other.)
  const Target* PickTarget(const Route& route) {
    const Target* best = nullptr;
    int best_load = 0;
    size_t n = route.targets.size();
    if (n == 0) return nullptr;
    size_t start = w_.round_robin++ % n;
    for (size_t i = 0; i < n; ++i) {
      const Target& t = route.targets[(start + i) % n];
      int load = t.state->outstanding.load(std::memory_order_relaxed);
      if (!best || load < best_load) {
        best = &t;
        best_load = load;
      }
    }
    return best;
  }

  void UpstreamHead(const Exchange& ex, std::string& out) {
    const RequestHead& req = ex.req;
    out.clear();
    out += req.method;
    out += ' ';
    if (req.target.front() == '/' && !req.path_changed) {
      out += req.target;
    } else if (req.target == "*") {
      out += req.target;
    } else {  // absolute-form becomes origin-form; a normalized path goes as normalized
      out += req.path;
      if (req.has_query) {
        out += '?';
        out += req.query;
      }
    }
    out += " HTTP/1.1\r\n";
    std::string forwarded_for;
    for (const Header& h : req.headers) {
      if (&h == ex.consumed_authorization) continue;  // the router's credentials, not the app's
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
      if (ex.strip_cookie && EqualsIgnoreCase(h.name, "cookie")) {
        std::string rest = WithoutAccessCookie(h.value);
        if (!rest.empty()) AppendField(out, h.name, rest);
        continue;
      }
      AppendField(out, h.name, h.value);
    }
    if (req.version_minor == 0 && !req.Find("host")) AppendField(out, "Host", req.host);
    if (!req.upgrade.empty()) {
      out += "Connection: Upgrade\r\n";
      AppendField(out, "Upgrade", req.upgrade);
    }
    out += "X-Forwarded-For: ";
    if (!forwarded_for.empty()) {
      out += forwarded_for;
      out += ", ";
    }
    out += client_ip_;
    out += kTls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n";
    AppendField(out, "X-Forwarded-Host", req.host);
    if (!ex.request_id_given) AppendField(out, "X-Request-Id", ex.request_id);
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
    tcp protocol = address.is_v4() ? tcp::v4() : tcp::v6();
    if (shared().registrar) {
      co_await OpenOn(*shared().registrar, upstream_->socket, protocol,
                      asio::redirect_error(kAwait, ec));
    } else {
      upstream_->socket.open(protocol, ec);
    }
    if (!ec) {
      co_await upstream_->socket.async_connect(tcp::endpoint(address, target.port),
                                               asio::redirect_error(kAwait, ec));
    }
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

  // While a request body goes upstream, an upstream that answers early (a 413 before the
  // body is all sent) must be heard: a wait on the upstream socket stops the copy.
  void WatchForEarlyAnswer() {
    watching_ = true;
    uint64_t gen = ++watch_gen_;
    std::weak_ptr<ClientConnection> weak = this->weak_from_this();
    upstream_->socket.async_wait(Socket::wait_read, [weak, gen](error_code ec) {
      auto self = weak.lock();
      if (!self || ec || gen != self->watch_gen_ || !self->watching_) return;
      self->early_answer_ = true;
      error_code ignored;
      Lowest(self->client_.socket).cancel(ignored);
      if (self->upstream_) self->upstream_->socket.cancel(ignored);
    });
  }
  void StopWatching() {
    watching_ = false;
    ++watch_gen_;
    error_code ec;
    if (upstream_) upstream_->socket.cancel(ec);  // the pending wait ends as aborted
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
    bool upgrade = !req.upgrade.empty();
    if (upgrade && ex.env->stats->upgraded.load() >= opt().max_upgraded_per_env) {
      co_await SendPage(ex, 503,
                        "Environment '" + ex.env->name + "' has " +
                            std::to_string(opt().max_upgraded_per_env) +
                            " upgraded connections open, its limit.",
                        false, "Retry-After: 5\r\n");
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
    UpstreamHead(ex, head);
    auto fail = [&](int status, const std::string& why) {
      return SendPage(ex, status,
                      "Service '" + route.service + "' of environment '" + ex.env->name +
                          "' (target " + target->id + ") " + why + ".",
                      false);
    };
    bool sent_continue = false;
    bool early = false;  // the upstream answered before it had the whole request body
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
        early_answer_ = false;
        WatchForEarlyAnswer();
        Copy c;
        std::optional<HttpError> framing_error;
        if (req.framing == BodyFraming::kLength) {
          c = co_await CopyLength(client_, upstream_->socket, req.content_length, &ex.bytes_in);
        } else {
          ChunkedDecoder decoder(opt().limits.max_body_bytes);
          c = co_await CopyChunked(client_, upstream_->socket, decoder, true, nullptr,
                                   &ex.bytes_in);
          framing_error = decoder.error();
        }
        // A body sent whole is a normal exchange, even if the answer raced the last write.
        early = early_answer_ && c != Copy::kOk;
        StopWatching();
        if (c == Copy::kOk) {
          linger_ = false;  // the whole body was read
        } else if (early || c == Copy::kSinkFailed) {
          // The upstream answered, or stopped reading (and perhaps answered before it
          // closed): its answer, if any, is read below; the client's connection then ends.
          early = true;
        } else if (c == Copy::kBadFraming) {
          upstream_.reset();
          co_await SendPage(ex, framing_error->status,
                            "The request body was rejected: " + framing_error->reason + ".", false);
          co_return false;
        } else {  // kSourceFailed, kSourceTimeout
          upstream_.reset();
          ex.status = c == Copy::kSourceTimeout ? 408 : 400;  // for the log; client is gone
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
            if (!upgrade || resp.upgrade.empty() || early) {
              co_await fail(502, "switched protocols without being asked to");
              co_return false;
            }
            co_return co_await Tunnel(ex, resp);
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
      co_await fail(502, early ? "closed the connection while receiving the request body"
                               : "closed the connection without answering");
      co_return false;
    }

    // Response head to the client: hop-by-hop fields dropped, framing decided here.
    bool client_11 = req.version_minor == 1;
    bool encode = false, close_after = !req.keep_alive || early;
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
    bool reusable =
        c == Copy::kOk && resp.keep_alive && resp.framing != BodyFraming::kUntilClose && !early;
    if (reusable && w_.table.Get()->HasAddress(upstream_->address)) {
      w_.pool.Put(std::move(upstream_), opt().max_idle_per_target);
    }
    upstream_.reset();  // draining: a removed target's connection closes once its request is done
    co_return c == Copy::kOk && !close_after;
  }

  // After a 101: relays bytes both ways until either side ends, the idle timeout passes, or
  // the environment is removed. The connection ends with the tunnel.
  Task<bool> Tunnel(Exchange& ex, const ResponseHead& resp) {
    std::string& out = response_head_;
    out.clear();
    out += "HTTP/1.1 101 ";
    out += resp.reason;
    out += "\r\n";
    for (const Header& h : resp.headers) {
      if (IsHopByHop(h.name, resp.connection_options)) continue;
      AppendField(out, h.name, h.value);
    }
    out += "Connection: Upgrade\r\n";
    AppendField(out, "Upgrade", resp.upgrade);
    out += "\r\n";
    ex.status = 101;
    websocket_ = EqualsIgnoreCase(resp.upgrade, "websocket");
    Arm(opt().body_timeout);
    if (co_await Write(client_.socket, asio::buffer(out)) != Io::kOk) {
      upstream_.reset();
      co_return false;
    }
    ex.bytes += out.size();
    EnvStats& stats = *ex.env->stats;
    tunnel_env_ = ex.env->stats;
    stats.upgraded.fetch_add(1);
    stats.upgraded_total.fetch_add(1);
    if (!stats.removed.load()) {
      auto self = this->shared_from_this();
      tunnel_other_done_ = false;
      downstream_running_ = true;
      asio::co_spawn(*w_.io, PumpDownstream(self, &ex.bytes), asio::detached);
      co_await PumpUpstream(&ex.bytes_in);
      if (downstream_running_) {
        // Waits for the other direction: its end cancels this timer.
        Timer done(*w_.io);
        tunnel_done_ = &done;
        done.expires_at(Clock::time_point::max());
        error_code ec;
        co_await done.async_wait(asio::redirect_error(kAwait, ec));
        tunnel_done_ = nullptr;
      }
    }
    stats.upgraded.fetch_sub(1);
    tunnel_env_.reset();
    upstream_.reset();
    linger_ = false;
    co_return false;
  }

  // Client to upstream.
  Task<void> PumpUpstream(uint64_t* counted) {
    error_code ec;
    while (!closing_) {
      if (client_.size() > 0) {
        Arm(opt().upgraded_idle_timeout);
        co_await WriteAllOp(upstream_->socket, asio::buffer(client_.data()), ec);
        if (ec) break;
        *counted += client_.size();
        client_.consume(client_.size());
      }
      Arm(opt().upgraded_idle_timeout);
      size_t n = co_await ReadSomeOp(client_.socket, client_.Space(16 * 1024), ec);
      if (ec) {
        if (ec == asio::error::eof && upstream_ && !timed_out_) {
          upstream_->socket.shutdown(Socket::shutdown_send, ec);  // half-close, as the client did
          co_return;
        }
        break;
      }
      client_.end += n;
    }
    EndTunnel();
  }

  // Upstream to client (spawned; holds the connection alive).
  static Task<void> PumpDownstream(std::shared_ptr<ClientConnection> self, uint64_t* counted) {
    error_code ec;
    UpstreamConnection& up = *self->upstream_;
    while (!self->closing_) {
      if (up.size() > 0) {
        if (self->websocket_) self->downstream_frames_.Feed(up.data());
        self->Arm(self->opt().upgraded_idle_timeout);
        self->downstream_writing_ = true;
        co_await WriteAllOp(self->client_.socket, asio::buffer(up.data()), ec);
        self->downstream_writing_ = false;
        if (self->going_away_after_write_) {
          // Its environment was removed during that write (CloseIfUpgradedIn).
          self->going_away_after_write_ = false;
          if (!ec && self->downstream_frames_.at_boundary()) self->SendGoingAway();
          break;
        }
        if (ec) break;
        *counted += up.size();
        up.consume(up.size());
      }
      self->Arm(self->opt().upgraded_idle_timeout);
      size_t n = co_await ReadSomeOp(up.socket, up.Space(16 * 1024), ec);
      if (ec) break;
      up.end += n;
    }
    // The upstream ended (or failed): the client's side ends too.
    self->EndTunnel();
    self->downstream_running_ = false;
    if (self->tunnel_done_) self->tunnel_done_->cancel();
  }

  // Ends both directions of a tunnel (idempotent).
  void EndTunnel() {
    error_code ec;
    Lowest(client_.socket).shutdown(Socket::shutdown_send, ec);
    Lowest(client_.socket).cancel(ec);
    if (upstream_) upstream_->socket.cancel(ec);
  }

  Worker& w_;
  Buffered<ClientStream> client_;
  std::string client_ip_;
  IpAddress client_addr_;
  std::string host_;  // the request's normalized host, reused
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
  RequestHead request_;        // the client's head, parsed (views into request_head_)
  char request_id_[32];        // an X-Request-Id made here
  ResponseHead response_;      // the upstream's head, parsed
  std::string response_head_;  // the head sent to the client
  bool closing_ = false;
  bool linger_ = false;  // a request body may still be coming: drain before closing
  uint64_t requests_ = 0;
  std::unique_ptr<UpstreamConnection> upstream_;
  // Early answers.
  bool watching_ = false, early_answer_ = false;
  uint64_t watch_gen_ = 0;
  // Tunnels.
  std::shared_ptr<EnvStats> tunnel_env_;
  bool websocket_ = false, downstream_running_ = false, downstream_writing_ = false;
  bool going_away_after_write_ = false;
  bool tunnel_other_done_ = false;
  Timer* tunnel_done_ = nullptr;
  WebSocketFrameTracker downstream_frames_;
};

void ScheduleSweep(Worker& w) {
  w.sweep_timer->expires_after(std::chrono::seconds(2));
  w.sweep_timer->async_wait([&w](error_code ec) {
    if (ec) return;
    w.pool.Sweep(std::chrono::seconds(30), *w.table.Get());
    ScheduleSweep(w);
  });
}

Result<tcp::endpoint> ParseListen(const std::string& listen, const char* flag) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return BadInput(std::string(flag) + " '" + listen + "': want host:port");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return BadInput(std::string(flag) + " '" + listen + "': '" + host + "' is not an IP address");
  }
  int port = 0;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return BadInput(std::string(flag) + " '" + listen + "': bad port");
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

Result<std::unique_ptr<tcp::acceptor>> Listen(asio::io_context& io, const tcp::endpoint& endpoint,
                                              const std::string& text) {
  auto acceptor = std::make_unique<tcp::acceptor>(io);
  error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Failed("listening on " + text + ": " + ec.message());
  return acceptor;
}

}  // namespace

struct Router::Impl {
  explicit Impl(RouterOptions o)
      : options(std::move(o)),
        access_log(options.home),
        shared(options, holder, access_log),
        feed(holder, registry, Hooks()) {}

  FeedHooks Hooks() {
    FeedHooks hooks;
    hooks.env_removed = [this](std::shared_ptr<EnvStats> stats) {
      CloseUpgraded(std::move(stats));
    };
    hooks.reload_tls = [this]() -> Status { return Reload(); };
    hooks.metrics = [this] { return RenderMetrics(*holder.Load(), shared.metrics); };
    return hooks;
  }

  // Gives freed memory back to the system once many connections have gone: glibc keeps
  // freed heap pages otherwise, so a burst of 10,000 connections would keep its peak.
  // The workers' idle upstream connections go too (they are reopened on demand): they sit
  // among the freed memory and would pin its pages.
  void ScheduleTrim() {
    trim_timer->expires_after(std::chrono::seconds(2));
    trim_timer->async_wait([this](error_code ec) {
      if (ec) return;
      int64_t now = shared.metrics.open_connections.load();
      if (now > trim_peak) trim_peak = now;
      if (trim_peak >= 256 && now <= trim_peak / 4) {
        trim_peak = now;
        std::lock_guard lock(workers_mu);
        for (auto& w : workers) {
          asio::post(*w->io, [wp = w.get()] {
            wp->pool.Clear();
            malloc_trim(0);
          });
        }
      }
      ScheduleTrim();
    });
  }

  void CloseUpgraded(std::shared_ptr<EnvStats> stats) {
    std::lock_guard lock(workers_mu);
    for (auto& w : workers) {
      asio::post(*w->io, [wp = w.get(), stats] {
        std::vector<ConnectionBase*> live(wp->live.begin(), wp->live.end());
        for (ConnectionBase* c : live) c->CloseIfUpgradedIn(stats.get());
      });
    }
  }

  Status Reload() {
    if (!options.tls.enabled()) return Failed("the router has no HTTPS listener");
    auto context = TlsContext::Create(options.tls);
    if (!context.ok()) return context.error();
    shared.tls.store(std::move(*context));
    return OkStatus();
  }

  Task<void> AcceptLoop(tcp::acceptor& acceptor, bool tls) {
    size_t next = 0;
    asio::steady_timer backoff(acceptor.get_executor());
    while (true) {
      Worker& w = *workers[next++ % workers.size()];
      error_code ec;
      auto socket = co_await acceptor.async_accept(*w.io, asio::redirect_error(kAwait, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        // Out of descriptors or similar: wait a little instead of spinning.
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(asio::redirect_error(kAwait, ec));
        continue;
      }
      RouterMetrics& m = shared.metrics;
      if (m.open_connections.fetch_add(1) >= options.max_connections) {
        m.open_connections.fetch_sub(1);
        m.connections_refused_total.fetch_add(1, std::memory_order_relaxed);
        continue;  // the socket closes as it goes out of scope
      }
      m.connections_total.fetch_add(1, std::memory_order_relaxed);
      if (tls) {
        std::shared_ptr<const TlsContext> context = shared.tls.load();
        asio::post(*w.io, [&w, s = std::move(socket), context]() mutable {
          auto conn = std::make_shared<ClientConnection<TlsStream>>(w, std::move(s), context);
          asio::co_spawn(*w.io, ClientConnection<TlsStream>::Serve(std::move(conn)),
                         asio::detached);
        });
      } else {
        asio::post(*w.io, [&w, s = std::move(socket)]() mutable {
          auto conn = std::make_shared<ClientConnection<Socket>>(w, std::move(s));
          asio::co_spawn(*w.io, ClientConnection<Socket>::Serve(std::move(conn)), asio::detached);
        });
      }
    }
  }

  RouterOptions options;
  RouteTableHolder holder;
  SharedStateRegistry registry;
  AccessLog access_log;
  Shared shared;
  FeedHandler feed;
  std::unique_ptr<FeedServer> feed_server;
  std::mutex workers_mu;  // guards `workers` against CloseUpgraded from the feed's thread
  std::vector<std::unique_ptr<Worker>> workers;
  // Accepting runs on a thread of its own: a socket's reactor state (which asio keeps for
  // reuse, never frees) is allocated by the accepting thread, so it is packed in that
  // thread's heap instead of pinning pages among the connections' memory in the workers'
  // heaps, and the workers' memory can go back to the system after a burst.
  std::unique_ptr<asio::io_context> accept_io;
  // Keeps the accepting thread up until the workers are gone (they open sockets there).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> accept_work;
  std::thread accept_thread;
  std::unique_ptr<tcp::acceptor> acceptor, tls_acceptor;
  std::unique_ptr<asio::steady_timer> trim_timer;
  int64_t trim_peak = 0;
  uint16_t port = 0;
  bool running = false;
};

Router::Router(RouterOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Router::~Router() { Stop(); }

Status Router::Start() {
  Impl& m = *impl_;
  if (m.running) return Conflict("router already started");
  ADHOC_ASSIGN_OR_RETURN(tcp::endpoint endpoint, ParseListen(m.options.listen, "--listen"));
  std::optional<tcp::endpoint> tls_endpoint;
  if (m.options.tls.enabled()) {
    ADHOC_ASSIGN_OR_RETURN(tls_endpoint, ParseListen(m.options.tls.listen, "--tls-listen"));
    ADHOC_ASSIGN_OR_RETURN(std::shared_ptr<TlsContext> context, TlsContext::Create(m.options.tls));
    m.shared.tls.store(std::move(context));
  } else {
    ADHOC_RETURN_IF_ERROR(m.options.tls.Validate());
  }
  m.shared.metrics_allow.clear();
  for (const std::string& c : m.options.metrics_allow) {
    auto cidr = ParseCidr(c);
    if (!cidr.ok()) return std::move(cidr).error().context("--metrics-allow");
    m.shared.metrics_allow.push_back(*cidr);
  }
  int threads =
      m.options.threads > 0 ? m.options.threads : std::max(1u, std::thread::hardware_concurrency());
  std::random_device random;
  {
    std::lock_guard lock(m.workers_mu);
    for (int i = 0; i < threads; ++i) {
      uint64_t seed = (uint64_t{random()} << 32) ^ random();
      m.workers.push_back(std::make_unique<Worker>(m.shared, seed));
    }
  }
  auto fail = [&](Status s) {
    m.tls_acceptor.reset();
    m.acceptor.reset();
    m.accept_io.reset();
    std::lock_guard lock(m.workers_mu);
    m.workers.clear();
    return s;
  };
  m.accept_io = std::make_unique<asio::io_context>(1);
  m.shared.registrar = m.accept_io.get();
  auto acceptor = Listen(*m.accept_io, endpoint, m.options.listen);
  if (!acceptor.ok()) return fail(acceptor.error());
  m.acceptor = std::move(*acceptor);
  m.port = m.acceptor->local_endpoint().port();
  if (tls_endpoint) {
    auto tls = Listen(*m.accept_io, *tls_endpoint, m.options.tls.listen);
    if (!tls.ok()) return fail(tls.error());
    m.tls_acceptor = std::move(*tls);
    m.shared.tls_port = m.tls_acceptor->local_endpoint().port();
  }
  if (!m.options.home.empty() && m.options.feed_socket) {
    m.feed_server = std::make_unique<FeedServer>(m.feed);
    Status s = m.feed_server->Start(paths::RouterSocket(m.options.home));
    if (!s.ok()) {
      m.feed_server.reset();
      return fail(s);
    }
  }
  if (!m.options.home.empty() && m.options.write_pid) {
    std::error_code fs_ec;
    // Only inside a home that still exists: a removed one is not brought back.
    std::filesystem::create_directory(paths::RouterDir(m.options.home), fs_ec);
    if (std::filesystem::is_directory(paths::RouterDir(m.options.home), fs_ec))
      std::ofstream(paths::RouterPid(m.options.home)) << getpid() << "\n";
  }
  asio::co_spawn(*m.accept_io, m.AcceptLoop(*m.acceptor, false), asio::detached);
  if (m.tls_acceptor) {
    asio::co_spawn(*m.accept_io, m.AcceptLoop(*m.tls_acceptor, true), asio::detached);
  }
  m.trim_timer = std::make_unique<asio::steady_timer>(*m.accept_io);
  m.ScheduleTrim();
  m.accept_work.emplace(m.accept_io->get_executor());
  m.accept_thread = std::thread([io = m.accept_io.get()] {
    while (true) {
      try {
        io->run();
        break;
      } catch (...) {
      }
    }
  });
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
  // No connection is accepted once this returns, so none comes after the workers' close.
  std::promise<void> accepting_stopped;
  asio::post(*m.accept_io, [&m, &accepting_stopped] {
    error_code ec;
    m.acceptor->close(ec);
    if (m.tls_acceptor) m.tls_acceptor->close(ec);
    m.trim_timer->cancel();
    accepting_stopped.set_value();
  });
  accepting_stopped.get_future().wait();
  for (auto& w : m.workers) {
    asio::post(*w->io, [wp = w.get()] {
      wp->sweep_timer->cancel();
      wp->pool.Clear();
      std::vector<ConnectionBase*> live(wp->live.begin(), wp->live.end());
      for (ConnectionBase* c : live) c->Close();
    });
  }
  for (auto& w : m.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  m.accept_work.reset();
  if (m.accept_thread.joinable()) m.accept_thread.join();
  m.acceptor.reset();
  m.tls_acceptor.reset();
  m.trim_timer.reset();
  m.accept_io.reset();
  {
    std::lock_guard lock(m.workers_mu);
    m.workers.clear();
  }
  m.access_log.Flush();
  if (!m.options.home.empty() && m.options.write_pid) {
    std::error_code fs_ec;
    std::filesystem::remove(paths::RouterPid(m.options.home), fs_ec);
  }
}

uint16_t Router::port() const { return impl_->port; }

uint16_t Router::tls_port() const { return impl_->shared.tls_port; }

Status Router::ReloadTls() { return impl_->Reload(); }

std::string Router::TlsFingerprint() const {
  std::shared_ptr<const TlsContext> t = impl_->shared.tls.load();
  return t ? t->fingerprint() : std::string();
}

std::string Router::Metrics() {
  return RenderMetrics(*impl_->holder.Load(), impl_->shared.metrics);
}

std::string Router::HandleFeedMessage(std::string_view line) { return impl_->feed.Handle(line); }

RouteTableHolder& Router::table() { return impl_->holder; }

void Router::FlushAccessLogs() { impl_->access_log.Flush(); }

}  // namespace adhoc::router
