#!/usr/bin/env python3
# contextvars_peer.py - the CPython peer of benchmarks/context_benchmark.cpp.
#
# Times CPython's own `contextvars` (PEP 567) on the operations that the
# ctxexec core benchmarks measure, so that scripts/bench.sh can print them
# side by side (benchmarks/peers/table.py). Prints one JSON object:
#
#   {"runtime": "CPython 3.11.7", "ops": {"get_8": <ns/op>, ...}, ...}
#
# Method (also written into the JSON under "method"):
#   * every operation is a statement compiled into a generated function whose
#     `for` loop body repeats it UNROLL times, so the loop costs little per
#     operation; every name the statement uses is a function local;
#   * the loop count is calibrated so that one timed run takes --target-ms;
#   * the run is repeated --repeats times (gc disabled while timing, like
#     timeit) and the MEDIAN ns/op is kept;
#   * the same loop with an empty body is timed the same way, and its cost per
#     operation is SUBTRACTED from every operation in "ops". That makes CPython
#     look a little faster, i.e. it is the conservative choice for the
#     CPython/ctxexec ratios. The unsubtracted medians are in "ops_raw".
#
# Operation mapping (the keys are the rows of the comparison table):
#   get_N                var.get() in a context where N vars are set and var
#                        is the one with index N // 2 (as in the C++ file)
#   get_rotating_1000    get() on each of the 1000 set vars in turn (defeats
#                        the per-ContextVar cache that CPython keeps)
#   get_missing_default  var.get() for a var with a default, not set; 8 others
#                        are set
#   value_or             var.get(0) for a set var (8 vars set)
#   set_reset_N          t = var.set(42); var.reset(t) on one of N set vars
#   copy_context         contextvars.copy_context() with 8 vars set; the copy
#                        is dropped at once
#   run_noop             ctx.run(noop) on an empty Context, noop being
#                        `def noop(): pass` (its call is part of the cost; see
#                        call_noop)
#   scoped_set           `with var.set(42): pass` where Python has it (3.14+),
#                        else t = var.set(42); try: pass; finally: var.reset(t)
#   call_noop            noop() alone, to help read run_noop (no target)

import argparse
import contextvars
import gc
import json
import platform
import statistics
import sys
import time

UNROLL = 10


def build_loop(params, body, unroll=UNROLL, iterate="range(_n)",
               target="_"):
    """Compiles `def _loop(_n, *params)` that runs `body` unroll times a turn.

    The loop is `for <target> in <iterate>:`; when iterate is not range(_n)
    the loop runs `_n` times over it (an outer range loop is added).
    """
    params_text = "".join(f", {p}" for p in params)
    lines = [f"def _loop(_n{params_text}):"]
    indent = "    "
    if iterate != "range(_n)":
        lines.append(f"{indent}for _ in range(_n):")
        indent += "    "
    lines.append(f"{indent}for {target} in {iterate}:")
    indent += "    "
    body_lines = body.strip("\n").splitlines() if body.strip() else []
    for _ in range(unroll):
        lines.extend(indent + line for line in body_lines)
    if not body_lines or unroll == 0:
        lines.append(indent + "pass")
    namespace = {}
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<contextvars_peer>", "exec"), namespace)
    return namespace["_loop"]


def time_loop(loop, args, ops_per_call, target_ms, repeats):
    """Median ns per operation of loop(n, *args) over `repeats` runs.

    ops_per_call(n) is the number of operations one loop(n, ...) performs.
    """
    target_ns = target_ms * 1e6
    n = 1
    while True:
        start = time.perf_counter_ns()
        loop(n, *args)
        elapsed = time.perf_counter_ns() - start
        if elapsed >= target_ns / 8 or n >= 1 << 30:
            break
        n *= 2
    n = max(1, int(n * target_ns / max(elapsed, 1)))
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        loop(max(1, n // 10), *args)  # warm-up (specialization, caches)
        for _ in range(repeats):
            start = time.perf_counter_ns()
            loop(n, *args)
            elapsed = time.perf_counter_ns() - start
            samples.append(elapsed / ops_per_call(n))
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(
        description="Times CPython contextvars; prints JSON.")
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed runs per operation (default 7)")
    parser.add_argument("--target-ms", type=float, default=40.0,
                        help="wall time of one timed run (default 40)")
    parser.add_argument("--output", help="also write the JSON to this file")
    opts = parser.parse_args()

    def measure(params, body, args, unroll=UNROLL):
        loop = build_loop(params, body, unroll)
        return time_loop(loop, args, lambda n: n * unroll, opts.target_ms,
                         opts.repeats)

    all_vars = [contextvars.ContextVar(f"v{i}") for i in range(1000)]
    missing_var = contextvars.ContextVar("missing_with_default", default=7)

    def noop():
        pass

    def in_fresh_context(n_set, fn):
        """Runs fn() in a new empty Context after setting the first n_set."""

        def inner():
            for i, var in enumerate(all_vars[:n_set]):
                var.set(i)
            return fn()

        return contextvars.Context().run(inner)

    if hasattr(contextvars.Token, "__enter__"):
        scoped_body = "with var.set(42):\n    pass"
        scoped_form = "with var.set(42): pass"
    else:
        scoped_body = ("_t = var.set(42)\n"
                       "try:\n"
                       "    pass\n"
                       "finally:\n"
                       "    var.reset(_t)")
        scoped_form = ("t = var.set(42); try: pass; finally: var.reset(t) "
                       "(this Python has no `with var.set()`)")

    raw = {}
    loop_overhead = measure([], "", [])

    for n_set in (1, 8, 1000):
        var = all_vars[n_set // 2]
        raw[f"get_{n_set}"] = in_fresh_context(
            n_set, lambda: measure(["var"], "var.get()", [var]))
        raw[f"set_reset_{n_set}"] = in_fresh_context(
            n_set,
            lambda: measure(["var"], "_t = var.set(42)\nvar.reset(_t)", [var]))

    # get() over all 1000 vars in turn: the loop walks 100 groups of 10 vars,
    # each unpacked into the locals a..j, so a turn is 10 gets as above. The
    # same loop with an empty body is its own overhead.
    groups = [tuple(all_vars[i:i + 10]) for i in range(0, 1000, 10)]
    names = list("abcdefghij")
    rotating_loop = build_loop(["_groups"],
                               "\n".join(f"{x}.get()" for x in names),
                               unroll=1, iterate="_groups",
                               target=", ".join(names))
    rotating_empty = build_loop(["_groups"], "", unroll=1, iterate="_groups",
                                target=", ".join(names))

    def ops_rotating(n):
        return n * 1000

    raw["get_rotating_1000"] = in_fresh_context(
        1000, lambda: time_loop(rotating_loop, [groups], ops_rotating,
                                opts.target_ms, opts.repeats))
    rotating_overhead = time_loop(rotating_empty, [groups], ops_rotating,
                                  opts.target_ms, opts.repeats)

    raw["get_missing_default"] = in_fresh_context(
        8, lambda: measure(["var"], "var.get()", [missing_var]))
    raw["value_or"] = in_fresh_context(
        8, lambda: measure(["var"], "var.get(0)", [all_vars[4]]))
    raw["copy_context"] = in_fresh_context(
        8, lambda: measure(["copy_context"], "copy_context()",
                           [contextvars.copy_context]))
    raw["scoped_set"] = in_fresh_context(
        8, lambda: measure(["var"], scoped_body, [all_vars[4]]))
    raw["run_noop"] = measure(["ctx", "noop"], "ctx.run(noop)",
                              [contextvars.Context(), noop])
    raw["call_noop"] = measure(["noop"], "noop()", [noop])

    ops = {}
    for key, value in raw.items():
        overhead = (rotating_overhead if key == "get_rotating_1000"
                    else loop_overhead)
        ops[key] = round(max(value - overhead, 0.0), 2)

    result = {
        "runtime": (f"{platform.python_implementation()} "
                    f"{platform.python_version()}"),
        "ops": ops,
        "ops_raw": {key: round(value, 2) for key, value in raw.items()},
        "loop_overhead_subtracted_ns": {
            "default": round(loop_overhead, 2),
            "get_rotating_1000": round(rotating_overhead, 2),
        },
        "method": (
            f"median of {opts.repeats} runs of ~{opts.target_ms:g} ms each, "
            f"time.perf_counter_ns, gc disabled, statement unrolled "
            f"{UNROLL}x in the loop body, locals only; 'ops' = median minus "
            "the empty-loop cost per operation (subtracted for every op, "
            "conservative for the ratios); 'ops_raw' = median without "
            "subtraction"),
        "notes": {
            "get_N": "var.get(), N vars set in a fresh Context, var index N//2",
            "get_rotating_1000": "get() on all 1000 set vars in turn (misses "
                                 "the per-ContextVar cache)",
            "get_missing_default": "var.get() on a var with default=7, not "
                                   "set; 8 other vars set",
            "value_or": "var.get(0) on a set var, 8 vars set",
            "set_reset_N": "t = var.set(42); var.reset(t), N vars set",
            "copy_context": "contextvars.copy_context(), 8 vars set, the copy "
                            "dropped at once",
            "run_noop": "Context().run(noop), noop = `def noop(): pass`; "
                        "includes the Python call of noop (see call_noop)",
            "scoped_set": scoped_form + ", 8 vars set",
            "call_noop": "noop() alone (information only)",
        },
    }
    text = json.dumps(result, indent=2)
    if opts.output:
        with open(opts.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
