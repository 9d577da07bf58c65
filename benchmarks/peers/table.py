#!/usr/bin/env python3
# table.py - prints the ctxexec / thread_local / CPython / Node comparison.
#
# Reads the Google Benchmark JSON of context_benchmark (run with
# --benchmark_format=json or --benchmark_out_format=json, and preferably
# --benchmark_repetitions=N --benchmark_report_aggregates_only=true: the
# "median" aggregate is used; without repetitions the single run is used)
# and the JSON printed by contextvars_peer.py and als_peer.js, and prints ONE
# markdown table with the targets of the core API and whether each is met.
#
# A missed target is printed as "MISSED" with the reason; it never makes this
# script fail (benchmarks are measurements, not timed tests). The exit status
# is non-zero only for unusable input.
#
# usage: table.py --gbench context.json --cpython cpython.json
#                 [--node node.json] [--output table.md]

import argparse
import json
import sys

# Row key (as in the peer JSON "ops"), label, benchmark name, baseline name,
# absolute target in ns (None: none) and minimum CPython/ctxexec ratio (None:
# none).
ROWS = [
    ("get_1", "get, 1 var set", "BM_Get/1", "BM_GetBaseline", None, 5.0),
    ("get_8", "get, 8 vars set", "BM_Get/8", "BM_GetBaseline", 3.0, 5.0),
    ("get_1000", "get, 1000 vars set", "BM_Get/1000", "BM_GetBaseline", 10.0,
     5.0),
    ("get_rotating_1000", "get, 1000 vars set, each in turn",
     "BM_GetRotating/1000", "BM_GetBaseline", None, None),
    ("get_missing_default", "get, not set, default (8 set)",
     "BM_GetMissingDefault", "BM_GetBaseline", None, None),
    ("value_or", "value_or / get(fallback), set (8 set)", "BM_ValueOr",
     "BM_GetBaseline", None, None),
    ("set_reset_1", "set+reset, 1 var set", "BM_SetReset/1",
     "BM_SetResetBaseline", None, 4.0),
    ("set_reset_8", "set+reset, 8 vars set", "BM_SetReset/8",
     "BM_SetResetBaseline", 40.0, 4.0),
    ("set_reset_1000", "set+reset, 1000 vars set", "BM_SetReset/1000",
     "BM_SetResetBaseline", None, 4.0),
    ("scoped_set", "scoped_set guard (8 set)", "BM_ScopedSet",
     "BM_ScopedSetBaseline", None, None),
    ("copy_context", "copy_context + destroy (8 set)", "BM_CopyContext",
     "BM_CopyContextBaseline", 10.0, 2.5),
    ("run_noop", "context.run(noop)", "BM_RunNoop", "BM_RunNoopBaseline",
     10.0, 3.0),
]

_UNIT_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"table.py: cannot read the {what} JSON {path}: {error}")


def gbench_times(data):
    """Maps benchmark name -> (ns per iteration, source) from Google Benchmark.

    Uses the median aggregate when there is one, else the mean of the plain
    iteration runs. Real (wall) time is used, as the peers measure wall time.
    """
    medians = {}
    singles = {}
    for entry in data.get("benchmarks", []):
        name = entry.get("run_name") or entry.get("name", "")
        if "error_occurred" in entry and entry["error_occurred"]:
            continue
        scale = _UNIT_TO_NS.get(entry.get("time_unit", "ns"), 1.0)
        value = float(entry["real_time"]) * scale
        if entry.get("run_type") == "aggregate":
            if entry.get("aggregate_name") == "median":
                medians[name] = value
        else:
            singles.setdefault(name, []).append(value)
    times = {name: (sum(v) / len(v), "mean") for name, v in singles.items()}
    times.update({name: (v, "median") for name, v in medians.items()})
    return times


def fmt_ns(value):
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value):
    if value is None:
        return "n/a"
    return f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def main():
    parser = argparse.ArgumentParser(
        description="Prints the ctxexec comparison table (markdown).")
    parser.add_argument("--gbench", required=True,
                        help="context_benchmark JSON output")
    parser.add_argument("--cpython", help="contextvars_peer.py JSON output")
    parser.add_argument("--node", help="als_peer.js JSON output")
    parser.add_argument("--output", help="also write the table to this file")
    opts = parser.parse_args()

    gbench = load_json(opts.gbench, "Google Benchmark")
    times = gbench_times(gbench)
    if not times:
        sys.exit(f"table.py: no benchmark results in {opts.gbench}")
    cpython = load_json(opts.cpython, "CPython peer") if opts.cpython else {}
    node = load_json(opts.node, "Node peer") if opts.node else {}
    cpython_ops = cpython.get("ops", {})
    node_ops = node.get("ops", {})

    header = ["operation", "ctxexec ns", "baseline (thread_local) ns",
              f"CPython ns ({cpython.get('runtime', 'not run')})",
              f"Node ns ({node.get('runtime', 'not run')})",
              "CPython/ctxexec", "target", "met?"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * 5 + ["---", "---"]) + "|"]
    missed = []
    not_measured = []
    sources = set()
    for key, label, bench, baseline, abs_target, ratio_target in ROWS:
        ours, source = times.get(bench, (None, None))
        if source:
            sources.add(source)
        base = times.get(baseline, (None, None))[0]
        py = cpython_ops.get(key)
        js = node_ops.get(key)
        ratio = py / ours if (py is not None and ours) else None

        targets = []
        failures = []
        unchecked = None
        if abs_target is not None:
            targets.append(f"≤{abs_target:g} ns")
            if ours is not None and ours > abs_target:
                failures.append(f"{fmt_ns(ours)} ns > {abs_target:g} ns "
                                f"(+{(ours / abs_target - 1) * 100:.0f}%)")
        if ratio_target is not None:
            targets.append(f"≥{ratio_target:g}x CPython")
            if ratio is None:
                unchecked = "ratio unchecked: no CPython result"
            elif ratio < ratio_target:
                failures.append(f"{ratio:.1f}x < {ratio_target:g}x (needs ≤"
                                f"{fmt_ns(py / ratio_target)} ns)")
        if not targets:
            verdict = "—"
        elif ours is None:
            verdict = "not measured"
            not_measured.append(label)
        elif failures:
            verdict = "**MISSED**: " + "; ".join(failures)
            missed.append(f"{label}: " + "; ".join(failures))
        else:
            verdict = "yes"
        if unchecked and ours is not None:
            verdict += f"; {unchecked}"
        cells = [label, fmt_ns(ours), fmt_ns(base), fmt_ns(py), fmt_ns(js),
                 fmt_ratio(ratio), ", ".join(targets) or "—", verdict]
        lines.append("| " + " | ".join(cells) + " |")

    context = gbench.get("context", {})
    notes = [
        "",
        "ctxexec and baseline: Google Benchmark real time per iteration, "
        + ("median of the repetitions" if sources == {"median"} else
           "mean of the runs (no median aggregate in the input)")
        + f"; host {context.get('host_name', '?')}, "
        f"{context.get('num_cpus', '?')} CPUs at "
        f"{context.get('mhz_per_cpu', '?')} MHz, "
        f"library build {context.get('library_build_type', '?')}, "
        f"CPU scaling {'on' if context.get('cpu_scaling_enabled') else 'off'}.",
    ]
    load = context.get("load_avg") or []
    cpus = context.get("num_cpus") or 1
    if load and load[0] > cpus / 2:
        notes.append(f"WARNING: load average {load[0]:.2f} on {cpus} CPUs "
                     "when context_benchmark started: other processes were "
                     "running, so every column is noisier and slower than on "
                     "an idle machine.")
    if context.get("library_build_type") == "debug":
        notes.append("('library build debug' is the packaged libbenchmark, "
                     "built without NDEBUG; the timed loop itself is inlined "
                     "from benchmark.h into the Release-built benchmark.)")
    if cpython:
        notes.append(f"CPython: {cpython.get('method', '')}.")
    if node:
        node_notes = node.get("notes", {})
        notes.append(f"Node: {node.get('method', '')}; mapping: "
                     f"{node_notes.get('mapping', '')}; run_noop = "
                     f"{node_notes.get('run_noop', '')}; copy_context = "
                     f"{node_notes.get('copy_context', '')}.")
    else:
        notes.append("Node: not run.")
    if not_measured:
        notes.append("Not measured (no ctxexec result, e.g. filtered out): "
                     + "; ".join(not_measured) + ".")
    if missed:
        notes.append(f"Targets missed: {len(missed)} "
                     "(reported only, not a failure).")
    elif not not_measured:
        notes.append("All targets met.")

    text = "\n".join(lines + notes)
    print(text)
    if opts.output:
        with open(opts.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
