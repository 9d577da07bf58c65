#!/usr/bin/env python3
# to_thread_peer.py - the CPython peer of benchmarks/run_sync_benchmark.cpp.
#
# Times asyncio.to_thread, which copies the caller's context into a worker
# of the loop's default ThreadPoolExecutor (what Starlette's
# run_in_threadpool does through anyio), on this machine. Prints one JSON
# object:
#
#   {"runtime": "CPython 3.11.7", "ops": {"round_trip": <ns/call>,
#    "throughput": <ns/call>}, "method": ...}
#
#   round_trip  one coroutine awaits to_thread(f) in a loop, f trivial
#   throughput  1000 coroutines each await to_thread(f) once, gathered;
#               ns per call over the batch (the executor has 40 workers,
#               as Starlette's limiter has 40 tokens)
#
# Each is timed --repeats times; the MEDIAN is kept.

import argparse
import asyncio
import concurrent.futures
import contextvars
import json
import platform
import statistics
import time

request_id = contextvars.ContextVar("request_id")
CALLERS = 1000
WORKERS = 40


def work(x):
    return x + request_id.get()


async def round_trip(n):
    x = 0
    start = time.perf_counter_ns()
    for _ in range(n):
        x = await asyncio.to_thread(work, x)
    elapsed = time.perf_counter_ns() - start
    if x != n:
        raise SystemExit("to_thread_peer: wrong result")
    return elapsed / n


async def throughput():
    start = time.perf_counter_ns()
    results = await asyncio.gather(
        *(asyncio.to_thread(work, i) for i in range(CALLERS)))
    elapsed = time.perf_counter_ns() - start
    if sum(results) != sum(range(CALLERS)) + CALLERS:
        raise SystemExit("to_thread_peer: wrong result")
    return elapsed / CALLERS


async def measure(repeats, calls):
    loop = asyncio.get_running_loop()
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS))
    request_id.set(1)
    await round_trip(max(1, calls // 10))  # warm-up: threads started
    await throughput()
    trips = [await round_trip(calls) for _ in range(repeats)]
    batches = [await throughput() for _ in range(repeats)]
    return statistics.median(trips), statistics.median(batches)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000,
                        help="round trips per timed run")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    trip, batch = asyncio.run(measure(args.repeats, args.calls))
    result = {
        "runtime": f"{platform.python_implementation()} "
                   f"{platform.python_version()}",
        "ops": {"round_trip": trip, "throughput": batch},
        "method": f"median of {args.repeats} runs; round_trip: {args.calls} "
                  f"sequential awaits of asyncio.to_thread(f); throughput: "
                  f"{CALLERS} concurrent callers gathered, default executor "
                  f"with {WORKERS} workers",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
