#include "cli/runtime_names.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/cri_names.h"

namespace dpi::cli {

namespace {

constexpr auto kCrictlTimeout = std::chrono::seconds(10);

// The executable `name` in $PATH, or "" when there is none.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  const std::string dirs = path;
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat sb {};
    if (stat(candidate.c_str(), &sb) == 0 && S_ISREG(sb.st_mode) &&
        access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return {};
}

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

struct ProgramRun {
  std::string out, err;
  int status = 0;  // waitpid's
  bool timed_out = false, too_big = false;
  int read_errno = 0;  // waiting for its output failed
};

// Runs program with args, stdin from /dev/null, and collects stdout and stderr until it exits
// (or the timeout passes: then it is killed). The error is about starting it.
Result<ProgramRun> run_program(const std::string& program, const std::vector<std::string>& args,
                               std::size_t max_bytes) {
  Fd out_r, out_w, err_r, err_w;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return make_error(ErrorCode::system, fmt::format("pipe: {}", std::strerror(errno)));
  out_r.fd = p[0];
  out_w.fd = p[1];
  if (pipe2(p, O_CLOEXEC) != 0)
    return make_error(ErrorCode::system, fmt::format("pipe: {}", std::strerror(errno)));
  err_r.fd = p[0];
  err_w.fd = p[1];
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(all.size() + 1);
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return make_error(ErrorCode::system, fmt::format("{}: {}", program, std::strerror(rc)));
  close(out_w.fd);
  out_w.fd = -1;
  close(err_w.fd);
  err_w.fd = -1;
  ProgramRun run;
  const auto deadline = std::chrono::steady_clock::now() + kCrictlTimeout;
  pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
  std::string* into[2] = {&run.out, &run.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Nothing more can be read: stop crictl rather than wait for it without a limit.
      run.read_errno = errno;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      into[i]->append(buf, static_cast<std::size_t>(got));
      if (into[i]->size() > max_bytes) {
        run.too_big = true;
        open_fds = 0;
      }
    }
  }
  if (run.timed_out || run.too_big || run.read_errno) kill(pid, SIGKILL);
  while (waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
  }
  return run;
}

// "exit 1: <first line of stderr>", "killed after 10 s", ...
std::string failure(const ProgramRun& run) {
  if (run.timed_out)
    return fmt::format("no answer within {} s", std::chrono::seconds(kCrictlTimeout).count());
  if (run.too_big) return "printed more than --max-input-mb";
  if (run.read_errno) return fmt::format("reading its output: {}", std::strerror(run.read_errno));
  std::string line = run.err.substr(0, run.err.find('\n'));
  if (WIFEXITED(run.status))
    return fmt::format("exit {}{}{}", WEXITSTATUS(run.status), line.empty() ? "" : ": ", line);
  return fmt::format("killed by signal {}", WTERMSIG(run.status));
}

// One crictl command's JSON, or a note saying why there is none.
std::optional<nlohmann::json> crictl_json(const std::string& crictl,
                                          const std::vector<std::string>& args,
                                          std::size_t max_bytes, std::string& note) {
  std::string cmd = "crictl";
  for (std::size_t i = 0; i < args.size() && i < 4; ++i) cmd += " " + args[i];
  if (args.size() > 4) cmd += " ...";
  auto run = run_program(crictl, args, max_bytes);
  if (!run) {
    note = fmt::format("`{}` could not be started ({})", cmd, run.error().message);
    return std::nullopt;
  }
  if (run->timed_out || run->too_big || run->read_errno || !WIFEXITED(run->status) ||
      WEXITSTATUS(run->status) != 0) {
    note = fmt::format("`{}` failed ({})", cmd, failure(*run));
    return std::nullopt;
  }
  auto doc = nlohmann::json::parse(run->out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    note = fmt::format("`{}` printed no JSON", cmd);
    return std::nullopt;
  }
  return doc;
}

}  // namespace

RuntimeNames runtime_names(std::size_t max_bytes) {
  RuntimeNames r;
  const std::string crictl = find_on_path("crictl");
  if (crictl.empty()) {
    r.notes.push_back(
        "no pod names from the container runtime: crictl is not on PATH (--k8s FILE names pods "
        "and services)");
    return r;
  }
  r.on_path = true;
  std::string note;
  auto pods = crictl_json(crictl, {"pods", "--state", "ready", "-o", "json"}, max_bytes, note);
  if (!pods) {
    r.notes.push_back("no pod names from the container runtime: " + note);
    return r;
  }
  auto sandboxes = parse_crictl_pods(*pods);
  if (!sandboxes) {
    r.notes.push_back("no pod names from the container runtime: `crictl pods -o json`: " +
                      sandboxes.error().message);
    return r;
  }
  std::optional<nlohmann::json> status;
  if (!sandboxes->empty()) {
    std::vector<std::string> args{"inspectp", "-o", "json"};
    for (const auto& s : *sandboxes) args.push_back(s.id);
    status = crictl_json(crictl, args, max_bytes, note);
    if (!status)
      r.notes.push_back(
          "pods of the container runtime without addresses (their cali* interfaces "
          "still name them): " +
          note);
  }
  auto names = cri_names(*sandboxes, status ? &*status : nullptr);
  if (!names && status) {
    r.notes.push_back(
        "pods of the container runtime without addresses (their cali* interfaces still name "
        "them): `crictl inspectp -o json`: " +
        names.error().message);
    names = cri_names(*sandboxes, nullptr);
  }
  if (!names) {  // cannot fail without addresses; kept exhaustive
    r.notes.push_back("no pod names from the container runtime: " + names.error().message);
    return r;
  }
  r.source = fmt::format("the container runtime (crictl, {} pod{} on this node)",
                         names->pods.size(), names->pods.size() == 1 ? "" : "s");
  r.names = std::move(*names);
  return r;
}

}  // namespace dpi::cli
