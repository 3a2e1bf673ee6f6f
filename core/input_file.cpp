#include "core/input_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace dpi {

namespace {

class Fd {
 public:
  explicit Fd(int fd, bool owned) : fd_(fd), owned_(owned) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
  bool owned_;
};

Error too_large(const std::string& origin, std::size_t max_bytes, const std::string& hint,
                const std::string& size) {
  return make_error(ErrorCode::bad_input, fmt::format("{}: {} is larger than the {} MiB limit ({})",
                                                      origin, size, max_bytes >> 20, hint));
}

}  // namespace

std::string input_origin(const std::string& path) {
  return path == "-" ? "<stdin>" : path;
}

Result<std::string> read_input_file(const std::string& path, std::size_t max_bytes,
                                    const std::string& limit_hint) {
  const std::string origin = input_origin(path);
  Fd fd(path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC), path != "-");
  if (fd.get() < 0)
    return make_error(errno == EACCES ? ErrorCode::permission : ErrorCode::not_found,
                      fmt::format("{}: cannot open: {}", origin, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return make_error(ErrorCode::system,
                      fmt::format("{}: cannot stat: {}", origin, std::strerror(errno)));
  if (S_ISDIR(st.st_mode))
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: is a directory, expected a file", origin));
  std::string text;
  if (S_ISREG(st.st_mode)) {
    auto size = static_cast<std::size_t>(st.st_size);
    if (size > max_bytes)
      return too_large(origin, max_bytes, limit_hint, fmt::format("{} bytes", size));
    text.reserve(size);
  }
  // Pipes and character devices have no size up front: read until EOF or one byte past the limit.
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ErrorCode::system,
                        fmt::format("{}: cannot read: {}", origin, std::strerror(errno)));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) return too_large(origin, max_bytes, limit_hint, "the input");
  }
  return text;
}

}  // namespace dpi
