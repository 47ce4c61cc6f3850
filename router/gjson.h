// GJSON paths evaluated exactly as github.com/tidwall/gjson v1.18.0 evaluates them (with
// tidwall/match v1.1.1 for `%` patterns and tidwall/pretty v1.2.1 for @pretty and @ugly). KServe's
// InferenceGraph router uses two calls: ValidBytes on a body, and GetBytes(body, condition)
// .Exists(). Both are here, together with everything GJSON's path syntax has: keys with `\`
// escapes and `*`/`?` wildcards, indexes, `#`, `#.key`, `#(...)` and `#(...)#` queries with all
// operators and `~` coercions, `|` and `.` chaining, modifiers (@this, @reverse, @ugly, @pretty,
// @valid, @flatten, @join, @keys, @values, @tostr, @fromstr, @group, @dig) with their arguments,
// `[...]` and `{...}` multipaths, `!literal` values and `..` JSON lines.
//
// GJSON does not validate what it reads, and neither does get(): on an invalid document it
// answers what gjson answers (tests/router/conformance holds such cases on purpose). The
// implementation follows gjson's algorithms step by step; it was written from their behaviour,
// not copied.
//
// Costs: get() does not copy the document. It allocates only for text it builds (modifiers,
// multipaths, `#.` and `#(...)#` results), for escaped strings and keys it compares, for the
// bookkeeping of multipaths, `#.` and `%` patterns with stars, and for the Result it returns.
//
// Limits: gjson recurses once per path component, per nested query, modifier or multipath, and,
// for @pretty, @flatten and @dig, per level of document nesting. get() allows kMaxDepth such
// levels; an evaluation that would go deeper stops and answers "does not exist" with
// Result::limited set (gjson would go on while Go's stack lasts). At the limit get() uses about
// 0.5 MB of stack in an optimised build (2 MB under AddressSanitizer), well within a thread's
// default 8 MB. get() also builds at most kMaxBuiltBytes of text per call, then stops the same
// way: gjson has no such limit, and a path such as `[@this,@this]|[@this,@this]|...` doubles the
// text at each step. validBytes() needs no limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace router::gjson {

// The nesting levels one get() may use, and the text it may build (see the limits above).
inline constexpr int kMaxDepth = 500;
inline constexpr size_t kMaxBuiltBytes = size_t{64} << 20;

// The value types, in gjson's order.
enum class Type { Null, False, Number, String, True, JSON };

// The name gjson's Type.String() gives: "Null", "False", "Number", "String", "True", "JSON".
std::string_view typeName(Type type);

// What get() found: gjson's Result without the positions.
struct Result {
  Type type = Type::Null;
  // The value's text as it stands in the document, or the text gjson builds (modifiers,
  // multipaths, `#` counts, `#.` and `#(...)#` arrays).
  std::string raw;
  // For a String: its value with the escapes decoded as gjson decodes them.
  std::string str;
  // For a Number: its value as Go's strconv.ParseFloat reads raw (0 when it cannot).
  double num = 0;
  // Set when the evaluation stopped at kMaxDepth or kMaxBuiltBytes; the result then does not
  // exist.
  bool limited = false;

  // gjson's Exists(): true for every value found, null, false, 0, "", [] and {} included.
  bool exists() const noexcept { return type != Type::Null || !raw.empty(); }
  // gjson's Result.String(): the string value, the number's text, "true"/"false", or raw.
  std::string toString() const;
};

// gjson.ValidBytes: strict JSON (RFC 8259) with any value at the top, surrounded by optional
// spaces, tabs, CRs and LFs. Empty or all-space input is invalid. Works at any nesting depth.
bool validBytes(std::string_view json);

// gjson.GetBytes(json, path).
Result get(std::string_view json, std::string_view path);

}  // namespace router::gjson
