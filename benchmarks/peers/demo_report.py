#!/usr/bin/env python3
# demo_report.py - prints the report of scripts/demo.sh and draws its chart.
#
# Reads what demo.sh left in --results: the ctxexec_load JSON of each run
# (report.json, cmp-<server>-<async|sync>-<connections>.json,
# block-<server>-<unloaded|loaded>.json), the /metrics text scraped during
# and after the loads (*.metrics), wrk's output (wrk-<server>-<route>.txt)
# and the servers' exit statuses (exits.txt). Prints, in markdown:
#
#   1. the propagation report: per route requests, errors, the share of
#      responses carrying their own request's trace id and user id (through
#      /chain's upstream too), p50/p90/p99/max latency; the servers' limiter,
#      DB pool, request scope and cleanup statistics;
#   2. (not with --smoke) the comparison at 200 connections, wrk's totals,
#      the connection sweep, the loop check, and the goals, met or missed;
#
# writes the same to report.md and a summary.json, and with --chart draws
# req/s and p99 against connections with gnuplot. A missed goal is printed,
# never fatal; the exit status is non-zero only for unusable input.

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

SERVER_NAMES = {
    "ctxexec": "ctxexec_demo",
    "plain": "ctxexec_demo --plain",
    "ctxexec1": "ctxexec_demo --threads=1",
    "fastapi": "FastAPI peer",
}

# Each statistic of /metrics, by the metric names it may have (the first
# that is present wins): the demo contract's names, and their spellings in
# the FastAPI peer.
METRICS = {
    "requests": [r"requests_total"],
    "errors": [r"errors_total"],
    "limiter_total": [r"limiter_total_tokens", r"limiter_tokens_total",
                      r"limiter_tokens"],
    "limiter_borrowed": [r"limiter_borrowed_tokens", r"limiter_borrowed"],
    "limiter_waiting": [r"limiter_waiting", r"limiter_tasks_waiting",
                        r"limiter_waiters"],
    "db_size": [r"db_pool_size", r"db_sessions_total", r"db_pool_sessions"],
    "db_in_use": [r"db_sessions_in_use", r"db_in_use"],
    "db_waiting": [r"db_session_waiting", r"db_waiting"],
    "db_waits": [r"db_session_waits_total", r"db_waits_total", r"db_waits"],
    "scopes_open": [r"request_scopes_open", r"scopes_open"],
    "scopes_opened": [r"request_scopes_opened_total", r"scopes_opened_total"],
    "scopes_closed": [r"request_scopes_closed_total", r"scopes_closed_total"],
    "cleanups_registered": [r"cleanups_registered_total"],
    "cleanups_run": [r"cleanups_run_total", r"cleanups_total"],
}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def load_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def parse_metrics(path):
    """[(name, {label: value}, float)] from Prometheus text; [] if absent."""
    samples = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                m = _SAMPLE.match(line)
                if not m or line.startswith("#"):
                    continue
                labels = dict(_LABEL.findall(m.group(3) or ""))
                try:
                    samples.append((m.group(1), labels, float(m.group(4))))
                except ValueError:
                    pass
    except OSError:
        pass
    return samples


def metric(samples, key):
    """The samples of statistic `key`: [(labels, value)], the first alias
    present; [] if none is."""
    for alias in METRICS[key]:
        found = [(labels, value) for name, labels, value in samples
                 if name == alias or name.endswith("_" + alias)]
        if found:
            return found
    return []


def metric_total(samples, key):
    found = metric(samples, key)
    return sum(value for _, value in found) if found else None


def loop_lag(samples):
    """"p50 / p99 / max ms" of the loop-lag probes (ctxexec_demo's loop
    monitors), the worst loop at each quantile; "n/a" without them."""
    lag = {}
    for name, labels, value in samples:
        if name == "ctxexec_loop_lag_seconds" and "quantile" in labels:
            q = labels["quantile"]
            lag[q] = max(lag.get(q, 0.0), value * 1e3)
    if not lag:
        return "n/a"
    return " / ".join(ms(lag.get(q)) for q in ("0.5", "0.99", "1"))


def blocked_handlers(samples):
    found = [v for name, _, v in samples
             if name == "ctxexec_blocked_handlers_total"]
    return number(sum(found)) if found else "n/a"


def number(value):
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.3g}"


def ms(value):
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def rps(value):
    return "n/a" if value is None else f"{value:,.0f}"


def pct(part, whole):
    return "n/a" if not whole else f"{100.0 * part / whole:.2f}%"


class Report:
    def __init__(self, args):
        self.args = args
        self.lines = []
        self.summary = {}

    def out(self, text=""):
        self.lines.append(text)

    def table(self, header, rows, align=None):
        align = align or ["---"] + ["---:"] * (len(header) - 1)
        self.out("| " + " | ".join(header) + " |")
        self.out("|" + "|".join(align) + "|")
        for row in rows:
            self.out("| " + " | ".join(str(cell) for cell in row) + " |")
        self.out()

    def run(self, name):
        return load_json(os.path.join(self.args.results, name + ".json"))

    # --- 1. The propagation report --------------------------------------

    def propagation(self):
        a = self.args
        data = self.run("report")
        if data is None:
            sys.exit("demo_report.py: no report.json in " + a.results)
        server = SERVER_NAMES.get(a.report_kind, a.report_kind)
        self.out(f"## Propagation: gateway -> backend ({server})")
        self.out()
        self.out(f"ctxexec_load on the gateway: {data['connections']} "
                 f"keep-alive connections, {a.report_seconds} s after "
                 f"{a.warmup} s of warm-up, mix `{data['mix']}`; every "
                 "request with its own traceparent and x-user-id; /chain "
                 "goes through the backend (hops=2: backend to itself).")
        self.out()
        rows = []
        for r in data["routes"] + [data["total"]]:
            lat = r["latency_ms"]
            rows.append([f"`{r['route']}`", number(r["requests"]),
                         number(r["errors"]),
                         pct(r["matched"], r["responses"]),
                         ms(lat["p50"]), ms(lat["p90"]), ms(lat["p99"]),
                         ms(lat["max"]), rps(r["rps"])])
        self.table(["route", "requests", "errors",
                    "own trace and user id", "p50 ms", "p90 ms", "p99 ms",
                    "max ms", "req/s"], rows)
        total = data["total"]
        self.out(f"match rate: {pct(total['matched'], total['responses'])} "
                 f"({total['matched']} of {total['responses']} responses), "
                 f"errors: {total['errors']}, connect errors: "
                 f"{data['connect_errors']}")
        self.out()
        bad = {k: v for k, v in total["verdicts"].items() if v}
        if bad:
            self.out("failed checks: " + ", ".join(
                f"{k} {v}" for k, v in bad.items()))
            for sample in data.get("samples", []):
                self.out(f"    {sample}")
            self.out()
        self.summary["report"] = {
            "match_rate": total["match_rate"], "responses": total["responses"],
            "errors": total["errors"] + data["connect_errors"]}
        self.server_statistics()

    def server_statistics(self):
        res = self.args.results
        servers = ("gateway", "backend")
        mid = {s: parse_metrics(os.path.join(res, f"report-{s}-mid.metrics"))
               for s in servers}
        end = {s: parse_metrics(os.path.join(res, f"report-{s}-end.metrics"))
               for s in servers}

        def per_route(samples, key):
            found = metric(samples, key)
            if not found:
                return "n/a"
            parts = [f"{labels.get('route', '?')} {number(value)}"
                     for labels, value in found if value]
            return ", ".join(parts) or "0"

        def pair(a, b):
            return f"{number(a)} / {number(b)}"

        rows = [
            ["requests by route", *(per_route(end[s], "requests")
                                    for s in servers)],
            ["errors by route", *(per_route(end[s], "errors")
                                  for s in servers)],
            ["limiter tokens borrowed / total, mid-load",
             *(pair(metric_total(mid[s], "limiter_borrowed"),
                    metric_total(mid[s], "limiter_total")) for s in servers)],
            ["limiter waiters, mid-load",
             *(number(metric_total(mid[s], "limiter_waiting"))
               for s in servers)],
            ["DB sessions in use / pool, mid-load",
             *(pair(metric_total(mid[s], "db_in_use"),
                    metric_total(mid[s], "db_size")) for s in servers)],
            ["DB session waiters, mid-load",
             *(number(metric_total(mid[s], "db_waiting")) for s in servers)],
            ["DB session waits, total",
             *(number(metric_total(end[s], "db_waits")) for s in servers)],
            ["request scopes opened / closed",
             *(pair(metric_total(end[s], "scopes_opened"),
                    metric_total(end[s], "scopes_closed")) for s in servers)],
            ["request scopes open after the load",
             *(number(metric_total(end[s], "scopes_open")) for s in servers)],
            ["cleanups run / registered",
             *(pair(metric_total(end[s], "cleanups_run"),
                    metric_total(end[s], "cleanups_registered"))
               for s in servers)],
            ["loop lag p50 / p99 / max ms (worst loop, whole run)",
             *(loop_lag(end[s]) for s in servers)],
            ["handlers that blocked a loop (loop monitor)",
             *(blocked_handlers(end[s]) for s in servers)],
        ]
        self.out("### Server statistics (/metrics, mid-load and after)")
        self.out()
        self.table(["statistic", "gateway", "backend"], rows,
                   ["---", "---", "---"])
        for s in servers:
            run = metric_total(end[s], "cleanups_run")
            registered = metric_total(end[s], "cleanups_registered")
            opened = metric_total(end[s], "scopes_opened")
            still = metric_total(end[s], "scopes_open")
            self.out(f"cleanups ({s}): {number(run)} run of "
                     f"{number(registered)} registered, in "
                     f"{number(opened)} request scopes opened; "
                     f"{number(still)} open after the load (the /metrics "
                     "request itself included)")
            self.summary.setdefault("cleanups", {})[s] = {
                "run": run, "registered": registered, "scopes_opened": opened,
                "scopes_open": still}
        self.out()
        with open(os.path.join(res, "exits.txt"), encoding="utf-8") as f:
            exits = f.read().split("\n")
        self.out("exit status after SIGTERM: " + ", ".join(
            line for line in exits if line))
        self.out()

    # --- 2. The comparison ----------------------------------------------

    def cmp_runs(self, kind, route, conns):
        runs = [self.run(f"cmp-{kind}-{route}-{conns}-{r}")
                for r in range(1, self.args.repeats + 1)]
        return [d for d in runs if d]

    def cmp(self, kind, route, conns):
        """The totals of the point's run with the most req/s, or None."""
        runs = self.cmp_runs(kind, route, conns)
        best = max(runs, key=lambda d: d["total"]["rps"], default=None)
        return best["total"] if best else None

    def wrk(self, kind, route):
        """(req/s, p99 ms, problems) from wrk's output, or None."""
        path = os.path.join(self.args.results, f"wrk-{kind}-{route}.txt")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            return None
        m = re.search(r"Requests/sec:\s+([\d.]+)", text)
        p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            return None
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
        problems = []
        for pattern in (r"Non-2xx or 3xx responses: \d+",
                        r"Socket errors: [^\n]+"):
            found = re.search(pattern, text)
            if found:
                problems.append(found.group(0))
        return (float(m.group(1)),
                float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
                "; ".join(problems))

    def comparison(self):
        a = self.args
        conns = 200 if 200 in a.sweep else a.sweep[len(a.sweep) // 2]
        self.conns = conns
        self.out(f"## Comparison at {conns} connections")
        self.out()
        self.out(f"Each server alone, fresh, `--tokens={a.tokens} "
                 f"--db-pool={a.tokens}`; ctxexec_load, one thread, "
                 f"{a.seconds} s after {a.warmup} s of warm-up, the best of "
                 f"{a.repeats} runs; every response checked.")
        self.out()
        rows = []
        for kind in a.servers:
            cells = [SERVER_NAMES[kind]]
            errors = matched = responses = 0
            for route in ("async", "sync"):
                t = self.cmp(kind, route, conns)
                cells += [rps(t and t["rps"]),
                          ms(t and t["latency_ms"]["p99"])]
                if t:
                    errors += t["errors"]
                    matched += t["matched"]
                    responses += t["responses"]
            cells += [number(errors), pct(matched, responses)]
            rows.append(cells)
        self.table(["server", "/async?ms=0 req/s", "p99 ms",
                    "/sync?ms=0 req/s", "p99 ms", "errors",
                    "own trace and user id"], rows)

        rows = []
        for kind in a.servers:
            for route in ("async", "sync"):
                w = self.wrk(kind, route)
                t = self.cmp(kind, route, conns)
                if w is None:
                    continue
                ratio = f"{w[0] / t['rps']:.2f}" if t and t["rps"] else "n/a"
                rows.append([SERVER_NAMES[kind], f"`/{route}?ms=0`",
                             rps(t and t["rps"]), rps(w[0]), ratio,
                             ms(w[1]), w[2] or "none"])
        if rows:
            self.out(f"wrk's totals (`wrk -t1 -c{conns} --latency`, same "
                     "servers, no trace headers) beside ctxexec_load's:")
            self.out()
            self.table(["server", "route", "ctxexec_load req/s",
                        "wrk req/s", "wrk / load", "wrk p99 ms",
                        "wrk errors"], rows)

    def sweep(self):
        a = self.args
        self.out("## Connections sweep (the chart)")
        self.out()
        rows = []
        for kind in a.servers:
            for conns in a.sweep:
                cells = [SERVER_NAMES[kind], str(conns)]
                for route in ("async", "sync"):
                    t = self.cmp(kind, route, conns)
                    cells += [rps(t and t["rps"]),
                              ms(t and t["latency_ms"]["p99"])]
                rows.append(cells)
        self.table(["server", "connections", "/async?ms=0 req/s", "p99 ms",
                    "/sync?ms=0 req/s", "p99 ms"], rows)

    def loop_check(self):
        a = self.args
        self.out("## Is the loop ever blocked?")
        self.out()
        self.out(f"`/async?ms=0` at {a.block_rate:g} requests/s on "
                 f"{a.block_connections} connections, alone, then beside "
                 f"`/sync?ms=200` on {a.tokens + 10} connections (more than "
                 f"the {a.tokens} limiter tokens: all busy, some waiting):")
        self.out()
        rows = []
        self.blocked = {}
        for kind in a.servers:
            alone = self.run(f"block-{kind}-unloaded")
            loaded = self.run(f"block-{kind}-loaded")
            sync = self.run(f"block-{kind}-sync")
            mid = parse_metrics(os.path.join(a.results,
                                             f"block-{kind}-mid.metrics"))
            if not alone or not loaded or not sync:
                continue
            async_loaded = loaded["total"]
            sync_loaded = sync["total"]
            p_alone = alone["total"]["latency_ms"]["p99"]
            p_loaded = async_loaded["latency_ms"]["p99"]
            ratio = p_loaded / p_alone if p_alone else None
            borrowed = metric_total(mid, "limiter_borrowed")
            total = metric_total(mid, "limiter_total")
            self.blocked[kind] = (ratio, p_alone, p_loaded, borrowed, total)
            rows.append([SERVER_NAMES[kind], ms(p_alone), ms(p_loaded),
                         "n/a" if ratio is None else f"{ratio:.2f}x",
                         rps(alone["total"]["rps"]),
                         rps(async_loaded["rps"]),
                         f"{number(borrowed)} / {number(total)}",
                         rps(sync_loaded["rps"]), loop_lag(mid)])
        self.table(["server", "p99 alone ms", "p99 beside /sync ms",
                    "ratio", "req/s alone", "req/s beside /sync",
                    "tokens busy mid-load", "/sync?ms=200 req/s",
                    "loop lag since start p50 / p99 / max ms"], rows)

    def goals(self):
        a = self.args
        conns = self.conns
        rows = []

        def verdict(ok):
            return "met" if ok else "**MISSED**"

        pair = self.pair_medians()
        if pair:
            ratio, c_rps, p_rps, n = pair
            rows.append(["/async?ms=0 at 200 connections: ctxexec req/s"
                         " >= 0.97x --plain",
                         f"{ratio:.3f}x (median of {n} alternated rounds' "
                         f"ratios; median req/s {rps(c_rps)} vs "
                         f"{rps(p_rps)})", verdict(ratio >= 0.97)])
        for route in ("async", "sync"):
            c = self.cmp("ctxexec", route, conns)
            f = self.cmp("fastapi", route, conns)
            if c and f and f["rps"]:
                ratio = c["rps"] / f["rps"]
                rows.append([f"/{route}?ms=0 at {conns} connections: "
                             "ctxexec req/s >= 10x FastAPI",
                             f"{ratio:.1f}x ({rps(c['rps'])} vs "
                             f"{rps(f['rps'])})", verdict(ratio >= 10)])
        if "ctxexec" in self.blocked:
            ratio, alone, loaded, borrowed, total = self.blocked["ctxexec"]
            busy = borrowed is not None and borrowed == total
            rows.append([f"loop never blocked: /async?ms=0 p99 (at "
                         f"{a.block_rate:g}/s) while "
                         f"/sync?ms=200 holds all {a.tokens} tokens <= 2x "
                         "its p99 alone",
                         f"{'n/a' if ratio is None else f'{ratio:.2f}x'} "
                         f"({ms(loaded)} ms vs {ms(alone)} ms; "
                         f"tokens busy {number(borrowed)}/{number(total)})",
                         verdict(ratio is not None and ratio <= 2 and busy)])
        # Propagation: every ctxexec_load run against ctxexec_demo.
        responses = matched = errors = 0
        names = ["report"] if a.report_kind == "ctxexec" else []
        if "ctxexec" in a.servers:
            names += [f"cmp-ctxexec-{r}-{n}-{k}" for r in ("async", "sync")
                      for n in a.sweep for k in range(1, a.repeats + 1)]
            names += ["block-ctxexec-unloaded", "block-ctxexec-loaded",
                      "block-ctxexec-sync"]
            names += [f"pair-ctxexec-{r}" for r in range(1, a.rounds + 1)]
        for name in names:
            data = self.run(name)
            if data:
                responses += data["total"]["responses"]
                matched += data["total"]["matched"]
                errors += data["total"]["errors"] + data["connect_errors"]
        if names:
            rows.append(["propagation: 100% of responses carry their own "
                         "trace and user id, 0 errors",
                         f"{pct(matched, responses)} of {responses:,} "
                         f"responses in {len(names)} runs, {errors} errors",
                         verdict(responses and matched == responses
                                 and errors == 0)])
        self.out("## Goals (a benchmark: a missed goal is printed, never "
                 "fatal)")
        self.out()
        if rows:
            self.table(["goal", "measured", "met?"], rows,
                       ["---", "---", "---"])
        else:
            self.out("none measured: the goals compare ctxexec_demo, which "
                     "did not run")
            self.out()
        self.summary["goals"] = [{"goal": g, "measured": m, "met": v == "met"}
                                 for g, m, v in rows]

    def pair_medians(self):
        """(the median of the rounds' ctxexec/--plain ratios, the median
        ctxexec req/s, the median --plain req/s, rounds), or None. Each
        round runs both back to back, so its ratio shares its moment's
        noise; the median drops a round that a neighbour disturbed."""
        ratios, c_values, p_values = [], [], []
        for r in range(1, self.args.rounds + 1):
            c = self.run(f"pair-ctxexec-{r}")
            p = self.run(f"pair-plain-{r}")
            if not c or not p or not p["total"]["rps"]:
                continue
            c_values.append(c["total"]["rps"])
            p_values.append(p["total"]["rps"])
            ratios.append(c_values[-1] / p_values[-1])
        if not ratios:
            return None
        return (statistics.median(ratios), statistics.median(c_values),
                statistics.median(p_values), len(ratios))

    def pair_rounds(self):
        rows = []
        for r in range(1, self.args.rounds + 1):
            runs = [self.run(f"pair-{kind}-{r}") for kind in
                    ("ctxexec", "plain")]
            if not all(runs):
                return
            c, p = (d["total"] for d in runs)
            rows.append([str(r), rps(c["rps"]), ms(c["latency_ms"]["p99"]),
                         rps(p["rps"]), ms(p["latency_ms"]["p99"]),
                         f"{c['rps'] / p['rps']:.3f}" if p["rps"] else "n/a"])
        self.out("## ctxexec against --plain, alternated rounds")
        self.out()
        self.out("Both servers up side by side; `/async?ms=0` at 200 "
                 "connections on each in turn, short rounds (pairs close in "
                 "time share the machine's noise):")
        self.out()
        self.table(["round", "ctxexec req/s", "p99 ms", "--plain req/s",
                    "p99 ms", "ratio"], rows)

    # --- The chart --------------------------------------------------------

    def chart(self, path):
        a = self.args
        gnuplot = shutil.which("gnuplot")
        if not gnuplot:
            self.out("chart: gnuplot not found, no chart")
            return
        data = os.path.join(a.results, "sweep.dat")
        with open(data, "w", encoding="utf-8") as handle:
            for kind in a.servers:
                handle.write(f'"{SERVER_NAMES[kind]}"\n')
                for conns in a.sweep:
                    cells = [str(conns)]
                    for route in ("async", "sync"):
                        t = self.cmp(kind, route, conns)
                        cells += [f"{t['rps']:.1f}" if t else "NaN",
                                  f"{t['latency_ms']['p99']:.3f}" if t
                                  else "NaN"]
                    handle.write(" ".join(cells) + "\n")
                handle.write("\n\n")
        plots = []
        for column, title, ylabel in ((2, "/async?ms=0: req/s", "req/s"),
                                      (4, "/sync?ms=0: req/s", "req/s"),
                                      (3, "/async?ms=0: p99 latency",
                                       "p99 ms"),
                                      (5, "/sync?ms=0: p99 latency",
                                       "p99 ms")):
            plots.append(
                f'set title "{title}"; set ylabel "{ylabel}"\n'
                f"plot for [i=0:{len(a.servers) - 1}] '{data}' index i "
                f"using 1:{column} with linespoints lw 2 pt 7 "
                "title columnheader(1)\n")
        script = (
            f"set terminal pngcairo size 1500,900 font 'sans,10' "
            "noenhanced\n"
            f"set output '{path}'\n"
            "set multiplot layout 2,2 title 'ctxexec_demo, --plain and the "
            "FastAPI peer on loopback (ctxexec_load, 2-core VM)'\n"
            "set logscale x; set grid\n"
            f"set xrange [{min(a.sweep) * 0.8}:{max(a.sweep) * 1.25}]\n"
            f"set xtics ({', '.join(str(c) for c in a.sweep)})\n"
            "set xlabel 'connections'\n"
            "set key outside right top vertical samplen 2\n"
            "set logscale y\n" + "".join(plots) + "unset multiplot\n")
        gp = os.path.join(a.results, "sweep.gp")
        with open(gp, "w", encoding="utf-8") as handle:
            handle.write(script)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        result = subprocess.run([gnuplot, gp], capture_output=True,
                                text=True, check=False)
        if result.returncode:
            self.out(f"chart: gnuplot failed: {result.stderr.strip()}")
        else:
            self.out(f"chart: {path}")
        self.out()


def main():
    parser = argparse.ArgumentParser(
        description="The report and chart of scripts/demo.sh.")
    parser.add_argument("--results", required=True)
    parser.add_argument("--report-kind", default="ctxexec")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--report-seconds", default="10")
    parser.add_argument("--seconds", default="4")
    parser.add_argument("--warmup", default="1")
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--block-connections", type=int, default=20)
    parser.add_argument("--block-rate", type=float, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--servers", nargs="*", default=[])
    parser.add_argument("--sweep", nargs="*", type=int, default=[200])
    parser.add_argument("--chart")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()

    report = Report(args)
    report.propagation()
    if not args.smoke:
        report.comparison()
        report.sweep()
        report.loop_check()
        report.pair_rounds()
        report.goals()
        if args.chart:
            report.chart(args.chart)
    text = "\n".join(report.lines)
    print(text)
    with open(os.path.join(args.results, "report.md"), "w",
              encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(os.path.join(args.results, "summary.json"), "w",
              encoding="utf-8") as handle:
        json.dump(report.summary, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
