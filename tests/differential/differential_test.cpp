// Differential test: random programs run on ctxexec and on CPython's
// contextvars (contextvars_oracle.py) must produce identical traces.
// The program language is documented in contextvars_oracle.py.
//
// Environment:
//   CTXEXEC_DIFF_SEED   base seed (default: std::random_device)
//   CTXEXEC_DIFF_COUNT  number of programs (default: 10000)

#if __has_include(<ctxexec/core.hpp>)
#include <ctxexec/core.hpp>
#else
#include <ctxexec/context.hpp>
#include <ctxexec/context_var.hpp>
#include <ctxexec/errors.hpp>
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef CTXEXEC_PYTHON
#error "CTXEXEC_PYTHON must be defined (path of python3)"
#endif
#ifndef CTXEXEC_ORACLE
#error "CTXEXEC_ORACLE must be defined (path of contextvars_oracle.py)"
#endif

namespace {

// Must match contextvars_oracle.py.
constexpr long kCtxSlots = 4;
constexpr long kTokSlots = 6;
constexpr long kMaxValue = 100;

/// A bug in this test or a malformed program; never a trace event.
class harness_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by the `raise` statement. Not a std::exception on purpose.
struct program_raise {};

// ------------------------------------------------------------------ parsing

enum class op_code {
  set,
  reset,
  get,
  getd,
  tryget,
  copy,
  make_new,
  alias,
  run,
  thread,
  scoped,
  raise,
  tokinfo,
  ctxlen,
  ctxget,
  ctxhas,
  ctxitems,
  same
};

struct op_info {
  op_code code;
  std::string_view operands;  // v = var, c = ctx slot, t = token, n = value
  bool block;
};

const std::map<std::string, op_info, std::less<>>& op_table() {
  static const std::map<std::string, op_info, std::less<>> table = {
      {"set", {op_code::set, "vnt", false}},
      {"reset", {op_code::reset, "vt", false}},
      {"get", {op_code::get, "v", false}},
      {"getd", {op_code::getd, "vn", false}},
      {"tryget", {op_code::tryget, "v", false}},
      {"copy", {op_code::copy, "c", false}},
      {"new", {op_code::make_new, "c", false}},
      {"alias", {op_code::alias, "cc", false}},
      {"run", {op_code::run, "c", true}},
      {"thread", {op_code::thread, "", true}},
      {"scoped", {op_code::scoped, "vn", true}},
      {"raise", {op_code::raise, "", false}},
      {"tokinfo", {op_code::tokinfo, "t", false}},
      {"ctxlen", {op_code::ctxlen, "c", false}},
      {"ctxget", {op_code::ctxget, "cv", false}},
      {"ctxhas", {op_code::ctxhas, "cv", false}},
      {"ctxitems", {op_code::ctxitems, "c", false}},
      {"same", {op_code::same, "cc", false}},
  };
  return table;
}

struct stmt {
  int line = 0;
  int end_line = 0;
  op_code op = op_code::get;
  std::vector<long> args;
  std::vector<stmt> body;
};

struct var_decl {
  std::string name;
  std::optional<long> default_value;
};

struct program {
  std::vector<var_decl> vars;
  std::vector<stmt> body;
};

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

long parse_long(const std::string& s, int line_no) {
  std::size_t used = 0;
  long value = 0;
  try {
    value = std::stol(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty()) {
    throw harness_error("line " + std::to_string(line_no) + ": bad number '" +
                        s + "'");
  }
  return value;
}

program parse_program(const std::vector<std::string>& lines) {
  program prog;
  std::vector<stmt*> open_blocks;  // innermost last
  auto current_body = [&]() -> std::vector<stmt>& {
    return open_blocks.empty() ? prog.body : open_blocks.back()->body;
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int line_no = static_cast<int>(i) + 1;
    const auto fail = [&](const std::string& why) {
      throw harness_error("line " + std::to_string(line_no) + ": " + why);
    };
    const std::vector<std::string> words = split_words(lines[i]);
    if (words.empty()) fail("empty line");
    if (words[0] == "var") {
      if (words.size() != 4 || !open_blocks.empty() || !prog.body.empty() ||
          parse_long(words[1], line_no) !=
              static_cast<long>(prog.vars.size())) {
        fail("bad var line");
      }
      var_decl decl{words[2], std::nullopt};
      if (words[3] != "-") decl.default_value = parse_long(words[3], line_no);
      prog.vars.push_back(std::move(decl));
      continue;
    }
    if (words[0] == "end") {
      if (words.size() != 1 || open_blocks.empty()) fail("unmatched end");
      open_blocks.back()->end_line = line_no;
      open_blocks.pop_back();
      continue;
    }
    const auto it = op_table().find(words[0]);
    if (it == op_table().end()) fail("unknown op '" + words[0] + "'");
    const op_info& info = it->second;
    if (words.size() != 1 + info.operands.size()) fail("wrong operand count");
    stmt s;
    s.line = line_no;
    s.op = info.code;
    for (std::size_t k = 0; k < info.operands.size(); ++k) {
      const long value = parse_long(words[k + 1], line_no);
      long limit = 0;
      switch (info.operands[k]) {
        case 'v':
          limit = static_cast<long>(prog.vars.size());
          break;
        case 'c':
          limit = kCtxSlots;
          break;
        case 't':
          limit = kTokSlots;
          break;
        default:
          limit = kMaxValue;
          break;
      }
      if (value < 0 || value >= limit) fail("operand out of range");
      s.args.push_back(value);
    }
    std::vector<stmt>& body = current_body();
    body.push_back(std::move(s));
    if (info.block) open_blocks.push_back(&body.back());
  }
  if (!open_blocks.empty()) throw harness_error("unterminated block");
  return prog;
}

// -------------------------------------------------------------- execution

/// Runs fn() in a new thread and joins it; rethrows what it threw.
template <class F>
void run_in_new_thread(F&& fn) {
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      fn();
    } catch (const program_raise&) {
      error = std::make_exception_ptr(harness_error("raise escaped a thread"));
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) std::rethrow_exception(error);
}

/// Calls a ctxexec API; maps its documented errors to trace results.
template <class F>
std::string guarded(F&& fn) {
  try {
    return fn();
  } catch (const ctxexec::lookup_error&) {
    return "err lookup";
  } catch (const ctxexec::token_error& e) {
    switch (e.code()) {
      case ctxexec::token_errc::already_used:
        return "err used";
      case ctxexec::token_errc::different_var:
        return "err var";
      case ctxexec::token_errc::different_context:
        return "err ctx";
    }
    throw harness_error("unknown token_errc");
  }
}

class interpreter {
 public:
  explicit interpreter(const program& prog) : prog_(prog) {
    for (const var_decl& d : prog.vars) {
      vars_.push_back(d.default_value
                          ? std::make_unique<var_type>(d.name, *d.default_value)
                          : std::make_unique<var_type>(d.name));
    }
  }

  /// Runs the program in a fresh thread; returns its trace.
  std::vector<std::string> run() {
    run_in_new_thread([&] { exec_block(prog_.body); });
    return std::move(trace_);
  }

 private:
  using var_type = ctxexec::context_var<long>;
  using token_type = ctxexec::token<long>;

  void emit(int line, std::string_view result) {
    trace_.push_back(std::to_string(line) + " " + std::string(result));
  }

  ctxexec::context& ctx(long slot, const stmt& s) {
    if (!ctxs_[slot]) {
      throw harness_error("line " + std::to_string(s.line) +
                          ": ctx slot unassigned");
    }
    return *ctxs_[slot];
  }

  token_type& tok(long slot, const stmt& s) {
    if (!toks_[slot]) {
      throw harness_error("line " + std::to_string(s.line) +
                          ": token slot unassigned");
    }
    return *toks_[slot];
  }

  void exec_block(const std::vector<stmt>& body) {
    for (const stmt& s : body) exec(s);
  }

  void exec(const stmt& s) {
    switch (s.op) {
      case op_code::run:
        exec_run(s);
        return;
      case op_code::thread:
        emit(s.line, "thread");
        run_in_new_thread([&] { exec_block(s.body); });
        emit(s.end_line, "end thread");
        return;
      case op_code::scoped: {
        emit(s.line, "scoped");
        {
          auto guard = vars_[s.args[0]]->scoped_set(s.args[1]);
          exec_block(s.body);
        }
        emit(s.end_line, "end scoped");
        return;
      }
      case op_code::raise:
        emit(s.line, "raise");
        throw program_raise{};
      default:
        emit(s.line, exec_leaf(s));
    }
  }

  void exec_run(const stmt& s) {
    ctxexec::context target = ctx(s.args[0], s);  // slot may change in body
    bool entered = false;
    try {
      target.run([&] {
        entered = true;
        emit(s.line, "run");
        exec_block(s.body);
      });
    } catch (const program_raise&) {
      emit(s.line, "raised");
      return;
    } catch (const ctxexec::context_error&) {
      if (entered) throw;
      emit(s.line, "err entered");
      return;
    }
    emit(s.end_line, "end run");
  }

  static std::string show(const long* value) {
    return value ? std::to_string(*value) : "none";
  }

  std::string exec_leaf(const stmt& s) {
    const std::vector<long>& a = s.args;
    switch (s.op) {
      case op_code::set: {
        var_type& var = *vars_[a[0]];
        return guarded([&] {
          toks_[a[2]].emplace(var.set(a[1]));
          return std::string("ok");
        });
      }
      case op_code::reset: {
        var_type& var = *vars_[a[0]];
        token_type& token = tok(a[1], s);
        return guarded([&] {
          var.reset(token);
          return std::string("ok");
        });
      }
      case op_code::get: {
        const var_type& var = *vars_[a[0]];
        return guarded([&] { return std::to_string(var.get()); });
      }
      case op_code::getd: {
        const var_type& var = *vars_[a[0]];
        return guarded([&] { return std::to_string(var.value_or(a[1])); });
      }
      case op_code::tryget:
        return show(vars_[a[0]]->try_get());
      case op_code::copy:
        ctxs_[a[0]] = ctxexec::copy_context();
        return "ok";
      case op_code::make_new:
        ctxs_[a[0]] = ctxexec::context();
        return "ok";
      case op_code::alias:
        ctxs_[a[0]] = ctx(a[1], s);  // copies the handle, not the contents
        return "ok";
      case op_code::tokinfo: {
        const token_type& token = tok(a[0], s);
        const long* old = token.old_value();
        return std::string(token.var().name()) + " " +
               (old ? std::to_string(*old) : "MISSING");
      }
      case op_code::ctxlen:
        return std::to_string(ctx(a[0], s).size());
      case op_code::ctxget:
        return show(ctx(a[0], s).find(*vars_[a[1]]).get());
      case op_code::ctxhas:
        return ctx(a[0], s).contains(*vars_[a[1]]) ? "true" : "false";
      case op_code::ctxitems: {
        std::vector<std::string> items;
        ctx(a[0], s).for_each([&](std::string_view name, std::string_view v) {
          items.push_back(std::string(name) + "=" + std::string(v));
        });
        std::sort(items.begin(), items.end());
        std::string out = "{";
        for (std::size_t i = 0; i < items.size(); ++i) {
          out += (i ? "," : "") + items[i];
        }
        return out + "}";
      }
      case op_code::same:
        return ctx(a[0], s) == ctx(a[1], s) ? "true" : "false";
      default:
        throw harness_error("not a leaf statement");
    }
  }

  const program& prog_;
  // Declared so that tokens and contexts die before the vars.
  std::vector<std::unique_ptr<var_type>> vars_;
  std::vector<std::optional<ctxexec::context>> ctxs_ =
      std::vector<std::optional<ctxexec::context>>(kCtxSlots);
  std::vector<std::optional<token_type>> toks_ =
      std::vector<std::optional<token_type>>(kTokSlots);
  std::vector<std::string> trace_;
};

// ------------------------------------------------------------ batch file

struct case_data {
  long index = 0;
  std::uint64_t seed = 0;
  std::vector<std::string> program_lines;
  std::vector<std::string> trace;
};

std::vector<case_data> read_batch(const std::filesystem::path& path,
                                  long& declared_count) {
  std::ifstream in(path);
  if (!in) throw harness_error("cannot open oracle output " + path.string());
  std::vector<case_data> cases;
  declared_count = -1;
  enum { outside, in_program, in_trace } state = outside;
  for (std::string line; std::getline(in, line);) {
    if (state == outside) {
      std::istringstream words(line);
      std::string tag;
      words >> tag;
      if (tag == "#program") {
        case_data c;
        if (!(words >> c.index >> c.seed)) throw harness_error("bad " + line);
        cases.push_back(std::move(c));
        state = in_program;
      } else if (tag == "#count" && (words >> declared_count)) {
        break;
      } else {
        throw harness_error("unexpected line in oracle output: " + line);
      }
    } else if (line == "#trace") {
      state = in_trace;
    } else if (line == "#end") {
      state = outside;
    } else if (state == in_program) {
      cases.back().program_lines.push_back(line);
    } else {
      cases.back().trace.push_back(line);
    }
  }
  if (state != outside) throw harness_error("oracle output is truncated");
  return cases;
}

// ------------------------------------------------------------------ helpers

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s)
    out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string oracle_command(std::uint64_t seed, long count,
                           const std::string& out) {
  return shell_quote(CTXEXEC_PYTHON) + " " + shell_quote(CTXEXEC_ORACLE) +
         " --seed " + std::to_string(seed) + " --count " +
         std::to_string(count) + " --out " + shell_quote(out);
}

std::string numbered(const std::vector<std::string>& lines) {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += "  " + std::to_string(i + 1) + ":\t" + lines[i] + "\n";
  }
  return out;
}

std::string indented(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += "    " + line + "\n";
  return out;
}

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (*end != '\0') {
    throw harness_error(std::string(name) + " is not a number: " + text);
  }
  return value;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

TEST(DifferentialTest, MatchesCPython) {
  const std::uint64_t base_seed =
      env_u64("CTXEXEC_DIFF_SEED", std::random_device{}());
  const std::uint64_t requested = env_u64("CTXEXEC_DIFF_COUNT", 10000);
  ASSERT_GT(requested, 0u) << "CTXEXEC_DIFF_COUNT must be positive";
  const long count = static_cast<long>(requested);
  std::cout << "[differential] seed=" << base_seed << " count=" << count
            << std::endl;
  RecordProperty("seed", std::to_string(base_seed));

  // Run the oracle.
  const std::filesystem::path out_path =
      std::filesystem::temp_directory_path() /
      ("ctxexec_diff_" + std::to_string(base_seed) + "_" +
       std::to_string(std::random_device{}()) + ".txt");
  const std::string command =
      oracle_command(base_seed, count, out_path.string());
  const auto oracle_start = std::chrono::steady_clock::now();
  const int rc = std::system(command.c_str());
  const double oracle_seconds = seconds_since(oracle_start);
  ASSERT_EQ(rc, 0) << "oracle failed (status " << rc << "): " << command;

  long declared = -1;
  const std::vector<case_data> cases = read_batch(out_path, declared);
  ASSERT_EQ(declared, count)
      << "oracle output lacks '#count " << count << "': " << out_path;
  ASSERT_EQ(static_cast<long>(cases.size()), count)
      << "oracle produced too few programs: " << out_path;

  // Interpret each program with ctxexec and compare.
  const auto cpp_start = std::chrono::steady_clock::now();
  std::size_t total_lines = 0;
  std::map<std::string, std::size_t> outcomes;  // coverage of key events
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const case_data& c = cases[i];
    ASSERT_EQ(c.index, static_cast<long>(i)) << "oracle output out of order";
    ASSERT_EQ(c.seed, base_seed + i) << "oracle used another seed";
    std::vector<std::string> actual;
    std::string crash;
    try {
      actual = interpreter(parse_program(c.program_lines)).run();
    } catch (const std::exception& e) {
      crash = std::string("unexpected exception: ") + e.what();
    } catch (...) {
      crash = "unexpected non-std exception";
    }
    std::size_t diff = 0;
    while (diff < actual.size() && diff < c.trace.size() &&
           actual[diff] == c.trace[diff]) {
      ++diff;
    }
    if (!crash.empty() || actual.size() != c.trace.size() ||
        diff != actual.size()) {
      const auto at = [&](const std::vector<std::string>& v) {
        return diff < v.size() ? v[diff] : std::string("<end of trace>");
      };
      FAIL() << "Mismatch in program " << c.index << " of " << count
             << "\n  base seed:    " << base_seed
             << "\n  program seed: " << c.seed << "\n"
             << (crash.empty() ? "" : "  ctxexec side: " + crash + "\n")
             << "program:\n"
             << numbered(c.program_lines) << "expected (CPython):\n"
             << indented(c.trace) << "actual (ctxexec):\n"
             << indented(actual) << "first difference at trace line "
             << diff + 1 << ":\n  expected: " << at(c.trace)
             << "\n  actual:   " << at(actual)
             << "\nreproduce:\n  CTXEXEC_DIFF_SEED=" << c.seed
             << " CTXEXEC_DIFF_COUNT=1 ./differential_test\n  "
             << oracle_command(c.seed, 1, "-") << "\noracle output kept at "
             << out_path.string() << "\n";
    }
    total_lines += actual.size();
    for (const std::string& line : actual) {
      const std::string result = line.substr(line.find(' ') + 1);
      if (result.rfind("err ", 0) == 0 || result == "raised") {
        ++outcomes[result];
      } else if (result.size() > 8 &&
                 result.compare(result.size() - 8, 8, " MISSING") == 0) {
        ++outcomes["tokinfo MISSING"];
      }
    }
  }
  const double cpp_seconds = seconds_since(cpp_start);
  std::filesystem::remove(out_path);

  // Guard against a generator that stopped producing the hard cases.
  if (count >= 1000) {
    for (const char* key : {"err lookup", "err used", "err var", "err ctx",
                            "err entered", "raised", "tokinfo MISSING"}) {
      EXPECT_GT(outcomes[key], 0u) << "no '" << key << "' events generated";
    }
  }
  std::cout << "[differential] outcomes:";
  for (const auto& [key, n] : outcomes) std::cout << " " << key << "=" << n;
  std::cout << "\n[differential] oracle " << oracle_seconds << " s, ctxexec "
            << cpp_seconds << " s\n"
            << count << " programs, " << total_lines << " lines, 0 mismatches"
            << std::endl;
}

}  // namespace
