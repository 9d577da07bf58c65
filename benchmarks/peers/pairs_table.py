#!/usr/bin/env python3
# pairs_table.py - prints the ctxexec-versus-plain-Asio tables of
# asio_benchmark and run_sync_benchmark (and asyncio.to_thread's figures
# from to_thread_peer.py), with the targets and whether each is met.
#
# Reads Google Benchmark JSON (preferably run with --benchmark_repetitions=N
# --benchmark_report_aggregates_only=true: the "median" aggregate is used).
# A missed target is printed, never fatal; the exit status is non-zero only
# for unusable input.
#
# usage: pairs_table.py [--asio asio.json] [--run-sync run_sync.json]
#                       [--to-thread to_thread.json] [--output table.md]

import argparse

from table import gbench_times, load_json

# label, ctxexec benchmark, plain baseline, target kind, target value,
# divisor (ns per reported unit of work: 1000 callers per iteration).
ASIO_ROWS = [
    ("co_await post hop, io_context", "BM_PostHop", "BM_PostHopBaseline",
     "diff", 10.0, 1),
    ("co_await post hop, strand", "BM_StrandHop", "BM_StrandHopBaseline",
     "diff", 10.0, 1),
    ("hop with a loop_monitor on (baseline: the ctxexec hop without it)",
     "BM_PostHopMonitored", "BM_PostHop", "diff", 5.0, 1),
    ("co_spawn + await, child on this_coro::executor", "BM_CoSpawnAwait",
     "BM_CoSpawnAwaitBaseline", "ratio", 1.15, 1),
    ("co_spawn + await, child on the io_context executor",
     "BM_CoSpawnAwaitIoExecutor", "BM_CoSpawnAwaitIoExecutorBaseline",
     "ratio", 1.15, 1),
    ("timer wait of 0", "BM_TimerZero", "BM_TimerZeroBaseline", None, None, 1),
    ("loopback TCP echo, 64 bytes", "BM_TcpEcho", "BM_TcpEchoBaseline", None,
     None, 1),
    ("post(io, handler), ctxexec::post snapshots", "BM_PostHandler",
     "BM_PostHandlerBaseline", None, None, 1),
]

RUN_SYNC_ROWS = [
    ("round trip, one caller", "BM_RoundTrip", "BM_RoundTripBaseline",
     "ratio", 1.1, 1, "round_trip"),
    ("round trip, warm path (a worker polls 200 us)", "BM_RoundTripWarm",
     "BM_RoundTripBaseline", None, None, 1, "round_trip"),
    ("throughput, 1000 callers, 40 tokens (per call)", "BM_Throughput",
     "BM_ThroughputBaseline", None, None, 1000, "throughput"),
    ("throughput, warm path (per call)", "BM_ThroughputWarm",
     "BM_ThroughputBaseline", None, None, 1000, "throughput"),
]


def medians(gbench):
    """Median real time in ns per benchmark name (table.py's reading)."""
    return {name.replace("/real_time", ""): ns
            for name, (ns, _) in gbench_times(gbench).items()}


def fmt(ns):
    if ns >= 1e5:
        return f"{ns / 1e3:.0f} us"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} us"
    if ns >= 100:
        return f"{ns:.0f} ns"
    return f"{ns:.1f} ns"


def verdict(kind, target, ours, plain):
    if kind is None:
        return "—", "—"
    if kind == "diff":
        return f"≤ +{target:g} ns", "yes" if ours - plain <= target else "no"
    return f"≤ {target:g}x", "yes" if ours / plain <= target else "no"


def asio_table(times):
    lines = ["| measure | plain Asio | ctxexec | difference | ratio | target | met |",
             "|---|---:|---:|---:|---:|---|---|"]
    for label, ours, base, kind, target, div in ASIO_ROWS:
        if ours not in times or base not in times:
            continue
        o, p = times[ours] / div, times[base] / div
        t, met = verdict(kind, target, o, p)
        lines.append(f"| {label} | {fmt(p)} | {fmt(o)} | {o - p:+.1f} ns | "
                     f"{o / p:.2f}x | {t} | {met} |")
    return lines


def run_sync_table(times, peer):
    lines = ["| measure | plain Asio | ctxexec | ratio | target | met | "
             "asyncio.to_thread | to_thread / ctxexec | ≥ 4x |",
             "|---|---:|---:|---:|---|---|---:|---:|---|"]
    for label, ours, base, kind, target, div, peer_key in RUN_SYNC_ROWS:
        if ours not in times or base not in times:
            continue
        o, p = times[ours] / div, times[base] / div
        t, met = verdict(kind, target, o, p)
        py = peer["ops"].get(peer_key) if peer else None
        py_cells = (f"{fmt(py)} | {py / o:.1f}x | "
                    f"{'yes' if py / o >= 4 else 'no'}") if py else "n/a | n/a | —"
        lines.append(f"| {label} | {fmt(p)} | {fmt(o)} | {o / p:.2f}x | {t} | "
                     f"{met} | {py_cells} |")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--asio")
    parser.add_argument("--run-sync")
    parser.add_argument("--to-thread")
    parser.add_argument("--output")
    args = parser.parse_args()
    out = []
    if args.asio:
        out.append("Boost.Asio integration (asio_benchmark, medians):\n")
        out += asio_table(medians(load_json(args.asio, "asio_benchmark")))
        out.append("")
    if args.run_sync:
        peer = load_json(args.to_thread, "to_thread peer") if args.to_thread else None
        runtime = f" and {peer['runtime']}" if peer else ""
        out.append(f"run_sync_with_context (run_sync_benchmark, medians{runtime}):\n")
        out += run_sync_table(medians(load_json(args.run_sync, "run_sync_benchmark")), peer)
        out.append("")
    text = "\n".join(out)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
