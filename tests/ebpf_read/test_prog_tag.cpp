#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/prog_tag.h"
#include "backends/ebpf/sha256.h"
#include "backends/ebpf/tag_check.h"

using namespace dpi::ebpf;

namespace {

std::string hex(std::span<const uint8_t> d) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += k[b >> 4];
    out += k[b & 15];
  }
  return out;
}

std::vector<uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

RawInsn raw(std::array<uint8_t, 8> b) {
  return RawInsn{b};
}

}  // namespace

TEST_CASE("sha256: FIPS 180-4 vectors", "[unit]") {
  CHECK(hex(sha256(bytes(""))) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex(sha256(bytes("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(sha256(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // 55, 56 and 64 bytes: the padding boundaries.
  CHECK(hex(sha256(bytes(std::string(55, 'a')))) ==
        "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(hex(sha256(bytes(std::string(56, 'a')))) ==
        "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(hex(sha256(bytes(std::string(64, 'a')))) ==
        "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  CHECK(hex(sha256(bytes(std::string(1000000, 'a')))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("tag input: map references zeroed as the kernel does", "[unit]") {
  const std::vector<RawInsn> in = {
      raw({0x18, 0x11, 0, 0, 5, 0, 0, 0}),  // r1 = map fd 5
      raw({0, 0, 0, 0, 0, 0, 0, 0}),
      raw({0x18, 0x21, 0, 0, 9, 0, 0, 0}),  // r2 = map fd 9, high half nonzero
      raw({0, 0, 0, 0, 7, 0, 0, 0}),
      raw({0x18, 0x22, 0, 0, 6, 0, 0, 0}),  // r2 = map value (src 2), offset 12
      raw({0, 0, 0, 0, 12, 0, 0, 0}),
      raw({0x18, 0x02, 0, 0, 0x2a, 0, 0, 0}),  // r2 = 42: a constant, kept
      raw({0, 0, 0, 0, 1, 0, 0, 0}),
      raw({0xb7, 0x00, 0, 0, 2, 0, 0, 0}),
      raw({0x95, 0, 0, 0, 0, 0, 0, 0}),
  };
  const std::vector<RawInsn> want = {
      raw({0x18, 0x11, 0, 0, 0, 0, 0, 0}),    raw({0, 0, 0, 0, 0, 0, 0, 0}),
      raw({0x18, 0x21, 0, 0, 0, 0, 0, 0}),    raw({0, 0, 0, 0, 0, 0, 0, 0}),
      raw({0x18, 0x22, 0, 0, 0, 0, 0, 0}),    raw({0, 0, 0, 0, 0, 0, 0, 0}),
      raw({0x18, 0x02, 0, 0, 0x2a, 0, 0, 0}), raw({0, 0, 0, 0, 1, 0, 0, 0}),
      raw({0xb7, 0x00, 0, 0, 2, 0, 0, 0}),    raw({0x95, 0, 0, 0, 0, 0, 0, 0}),
  };
  CHECK(tag_input(in) == want);
  // Different fds, same tag.
  std::vector<RawInsn> other = in;
  other[0].b[4] = 77;
  CHECK(prog_tag(other, TagHash::sha256) == prog_tag(in, TagHash::sha256));
  CHECK(prog_tag(other, TagHash::sha1) == prog_tag(in, TagHash::sha1));
  CHECK(prog_tag(in, TagHash::sha1) != prog_tag(in, TagHash::sha256));
  // "r0 = 2; exit": SHA-256 of these 16 bytes, first 8 bytes.
  const std::vector<RawInsn> tiny = {raw({0xb7, 0x00, 0, 0, 2, 0, 0, 0}),
                                     raw({0x95, 0, 0, 0, 0, 0, 0, 0})};
  const std::vector<uint8_t> tiny_bytes = {0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
  CHECK(tag_hex(prog_tag(tiny, TagHash::sha256)) == hex(sha256(tiny_bytes)).substr(0, 16));
  CHECK(tag_matches(tiny, prog_tag(tiny, TagHash::sha1)));
}

TEST_CASE("tag check: debug JSON sub-programs against live tags", "[unit]") {
  auto prog =
      load_debug_json(std::string(DPI_EBPF_FIXTURES) + "/cali12345678901_egress_v4.v3_32.json");
  REQUIRE(prog.ok());
  REQUIRE(prog->subprograms.size() == 2);
  ProgTag t0 = prog_tag(prog->program(0), TagHash::sha256);
  ProgTag t1 = prog_tag(prog->program(1), TagHash::sha1);  // an older kernel's tag
  CHECK(t0 != prog_tag(prog->program(1), TagHash::sha256));

  std::vector<std::optional<ProgTag>> both = {t0, t1};
  auto ok = check_tags(*prog, both);
  CHECK(ok.all_match());
  CHECK(ok.mismatch() == "");

  std::vector<std::optional<ProgTag>> missing = {t0, std::nullopt};
  auto m = check_tags(*prog, missing);
  CHECK_FALSE(m.all_match());
  CHECK(m.mismatch() == "sub-program 1: no live program");

  ProgTag stale = t0;
  stale[0] ^= 0xff;
  std::vector<std::optional<ProgTag>> wrong = {stale, t1};
  auto w = check_tags(*prog, wrong);
  CHECK_FALSE(w.all_match());
  CHECK(w.mismatch() ==
        "sub-program 0: JSON tag " + tag_hex(t0) + " (sha256), live tag " + tag_hex(stale));
}
