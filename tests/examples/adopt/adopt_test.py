#!/usr/bin/env python3
"""Drives one server of examples/adopt over loopback.

Usage: adopt_test.py --binary PATH [--plain] --log-lines N

Starts the server on a free port (port 0), opens CONNECTIONS keep-alive
connections at once, and sends REQUESTS requests on each, one after the
other, with distinct ids: each connection cycles through a request with a
traceparent and an x-user-id, one with neither, one with a user id only,
one with a traceparent only and one with an invalid traceparent, so that a
request without x-user-id follows one with it on the same connection.
Then it closes the connections, stops the server with SIGTERM, and checks:

- every answer is 200, on the connection it was sent on (keep-alive), with
  the body "hello <target> trace_id=<id> user_id=<id or ->": the trace id
  of its traceparent, else a new one of its own; its own user id, else "-";
- every log line is "trace_id=<id> user_id=<id> <message>" of one request,
  with that request's user id; each request has exactly N lines, among them
  "GET <target>" and "rendering <target>";
- the server exits with status 0.

With --plain (the twin without ctxexec): the answers are "hello <target>"
and the log has N lines per request, without ids.

Every wait is bounded (socket and process timeouts); nothing sleeps.
"""

import argparse
import http.client
import re
import secrets
import signal
import subprocess
import sys
import threading

CONNECTIONS = 6
REQUESTS = 5
TIMEOUT = 60  # seconds, for any single wait (TSan builds are slow)
HEX32 = re.compile(r"[0-9a-f]{32}")
LOG_LINE = re.compile(r"trace_id=(\S+) user_id=(\S+) (.*)")


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Request:
    """One request: what it sends and what it must get."""

    def __init__(self, connection, index):
        self.target = f"/c{connection}/r{index}"
        self.trace_id = None  # sent in a traceparent, or None
        self.user_id = None  # sent in x-user-id, or None
        self.headers = {}
        kind = index % 5
        if kind in (0, 3):
            self.trace_id = secrets.token_hex(16)
            parent = secrets.token_hex(8)
            self.headers["traceparent"] = f"00-{self.trace_id}-{parent}-01"
        if kind == 4:
            self.headers["traceparent"] = "00-not-a-traceparent-01"
        if kind in (0, 2, 4):
            self.user_id = f"user-{connection}-{index}"
            self.headers["x-user-id"] = self.user_id
        self.status = None
        self.body = None
        self.seen_trace_id = None  # from the answer


def run_connection(port, requests, start, errors):
    try:
        start.wait(TIMEOUT)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        sock = None
        for r in requests:
            conn.request("GET", r.target, headers=r.headers)
            answer = conn.getresponse()
            r.status = answer.status
            r.body = answer.read().decode()
            if sock is None:
                sock = conn.sock
            check(conn.sock is sock and sock is not None,
                  f"{r.target}: the connection was not kept alive")
        conn.close()
    except Exception as e:  # reported by the main thread
        errors.append(f"connection of {requests[0].target}: {e!r}")


def read_first_line(stream, out):
    out.append(stream.readline())


def check_answers(requests, plain):
    for r in requests:
        check(r.status == 200, f"{r.target}: status {r.status}")
        if plain:
            check(r.body == f"hello {r.target}\n",
                  f"{r.target}: body {r.body!r}")
            continue
        m = re.fullmatch(rf"hello {re.escape(r.target)} "
                         r"trace_id=(\S+) user_id=(\S+)\n", r.body)
        check(m is not None, f"{r.target}: body {r.body!r}")
        trace_id, user_id = m.groups()
        check(HEX32.fullmatch(trace_id) and trace_id != "0" * 32,
              f"{r.target}: trace id {trace_id!r}")
        if r.trace_id is not None:
            check(trace_id == r.trace_id,
                  f"{r.target}: trace id {trace_id}, sent {r.trace_id}")
        check(user_id == (r.user_id or "-"),
              f"{r.target}: user id {user_id}, sent {r.user_id}")
        r.seen_trace_id = trace_id
    if not plain:
        ids = [r.seen_trace_id for r in requests]
        check(len(set(ids)) == len(ids),
              "two requests answered with the same trace id")


def check_log(requests, log, plain, lines_per_request):
    if plain:
        check(len(log) == lines_per_request * len(requests),
              f"{len(log)} log lines for {len(requests)} requests, expected "
              f"{lines_per_request} each:\n" + "\n".join(log))
        for r in requests:
            for message in (f"GET {r.target}", f"rendering {r.target}"):
                check(log.count(message) == 1, f"log: {message!r} missing")
        return
    by_trace = {r.seen_trace_id: r for r in requests}
    lines = {r.target: [] for r in requests}
    for line in log:
        m = LOG_LINE.fullmatch(line)
        check(m is not None, f"log line without ids: {line!r}")
        trace_id, user_id, message = m.groups()
        r = by_trace.get(trace_id)
        check(r is not None, f"log line of no request: {line!r}")
        check(user_id == (r.user_id or "-"),
              f"log line of {r.target} with user id {user_id}: {line!r}")
        lines[r.target].append(message)
    for r in requests:
        messages = lines[r.target]
        check(len(messages) == lines_per_request,
              f"{r.target}: {len(messages)} log lines, expected "
              f"{lines_per_request}: {messages}")
        for message in (f"GET {r.target}", f"rendering {r.target}"):
            check(message in messages, f"{r.target}: no log line {message!r}")


def print_log(log):
    print("server log (stderr):\n" + "".join(log), file=sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--log-lines", type=int, required=True)
    args = parser.parse_args()

    server = subprocess.Popen([args.binary, "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    log = []
    drain = threading.Thread(target=lambda: log.extend(server.stderr))
    drain.start()
    failed = True
    try:
        first = []
        reader = threading.Thread(target=read_first_line,
                                  args=(server.stdout, first))
        reader.start()
        reader.join(TIMEOUT)
        check(first and first[0].startswith("listening on 127.0.0.1:"),
              f"first line {first!r}")
        port = int(first[0].rsplit(":", 1)[1])

        per_connection = [[Request(c, i) for i in range(REQUESTS)]
                          for c in range(CONNECTIONS)]
        start = threading.Barrier(CONNECTIONS)
        errors = []
        clients = [threading.Thread(target=run_connection,
                                    args=(port, rs, start, errors))
                   for rs in per_connection]
        for c in clients:
            c.start()
        for c in clients:
            c.join(TIMEOUT * REQUESTS)
            check(not c.is_alive(), "a client did not finish in time")
        check(not errors, "\n".join(errors))
        failed = False
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            status = server.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
        finally:
            drain.join(TIMEOUT)
            if failed:
                print_log(log)
    try:
        check(status == 0, f"the server exited with {status}")
        requests = [r for rs in per_connection for r in rs]
        check_answers(requests, args.plain)
        check_log(requests, [line.rstrip("\n") for line in log], args.plain,
                  args.log_lines)
    except Failure:
        print_log(log)
        raise
    print(f"{len(requests)} requests on {CONNECTIONS} connections, "
          f"{len(log)} log lines: all carry their own ids" if not args.plain
          else f"{len(requests)} requests, {len(log)} log lines")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
