#!/usr/bin/env python3
"""Tests of the demo server (examples/server), driving the real ctxexec_demo
binary over loopback: the route and JSON contract, propagation (also across
keep-alive requests and /chain), the W3C test service, bad input (each case
followed by a good request), a client that disconnects mid-request, and
SIGTERM with requests in flight. Python 3 standard library only.

Usage: demo_test.py --binary PATH [unittest names...]
Every wait is bounded; no test sleeps to synchronise: each polls a condition
(the server's /metrics, a socket) with a deadline.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

BINARY = None
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


class Server:
    """A ctxexec_demo process on a free port."""

    def __init__(self, *flags):
        self.proc = subprocess.Popen(
            [BINARY, "--port=0", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"unexpected first line: {line!r}")
        self.first_line = line
        self.port = int(m.group(1))
        self.stderr = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, headers=None, conn=None):
        c = conn or self.conn()
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        if conn is None:
            c.close()
        return r, body

    def get_json(self, path, headers=None, conn=None):
        r, body = self.get(path, headers, conn)
        return r, json.loads(body)

    def metrics(self, conn=None):
        _, body = self.get("/metrics", conn=conn)
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value) if "." in value else int(value)
        return values

    def wait_metrics(self, predicate, what, timeout=15):
        # One keep-alive connection: each /metrics request is finished (no
        # longer counted in flight) before the next one is read.
        conn = self.conn()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                m = self.metrics(conn)
                if predicate(m):
                    return m
        finally:
            conn.close()
        raise AssertionError(f"timed out waiting for {what}: {m}")

    def raw(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the server did not stop on SIGTERM")
        self._drain.join(timeout=5)
        return code


def read_all(sock):
    """Reads until the peer closes (bounded by the socket's timeout)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def status_of(raw_response):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw_response)
    return int(m.group(1)) if m else None


class ServerTest(unittest.TestCase):
    flags = ()

    def setUp(self):
        self.server = Server(*self.flags)

    def tearDown(self):
        code = self.server.stop()
        self.assertEqual(code, 0, "".join(self.server.stderr[-300:]))

    def assert_contract(self, body, route, thread="loop"):
        for field in ("route", "trace_id", "span_id", "parent_id", "user_id",
                      "thread"):
            self.assertIn(field, body)
        self.assertEqual(body["route"], route)
        self.assertEqual(body["thread"], thread)
        self.assertRegex(body["trace_id"], r"^[0-9a-f]{32}$")
        self.assertRegex(body["span_id"], r"^[0-9a-f]{16}$")

    def assert_good_request(self):
        r, body = self.server.get_json("/async?ms=0", {"x-user-id": "after"})
        self.assertEqual(r.status, 200)
        self.assertEqual(body["user_id"], "after")


class ContractTest(ServerTest):
    def test_async_carries_the_requests_trace_and_user(self):
        r, body = self.server.get_json(
            "/async?ms=5",
            {"traceparent": TRACEPARENT, "x-user-id": "alice"})
        self.assertEqual(r.status, 200)
        self.assert_contract(body, "/async")
        self.assertEqual(body["trace_id"], TRACE)
        self.assertEqual(body["parent_id"], PARENT)
        self.assertNotEqual(body["span_id"], PARENT)
        self.assertEqual(body["user_id"], "alice")
        self.assertEqual(r.getheader("traceresponse"),
                         f"00-{TRACE}-{body['span_id']}-01")

    def test_user_id_comes_from_baggage_else_anonymous(self):
        _, body = self.server.get_json("/async", {"baggage": "user.id=bob"})
        self.assertEqual(body["user_id"], "bob")
        r, body = self.server.get_json("/async")
        self.assertEqual(body["user_id"], "anonymous")
        self.assertEqual(body["parent_id"], "")
        self.assertIsNotNone(r.getheader("traceresponse"))

    def test_sync_reads_the_ids_on_a_worker_holding_a_db_session(self):
        r, body = self.server.get_json(
            "/sync?ms=20", {"traceparent": TRACEPARENT, "x-user-id": "carol"})
        self.assertEqual(r.status, 200)
        self.assert_contract(body, "/sync", thread="worker")
        self.assertEqual(body["trace_id"], TRACE)
        self.assertEqual(body["user_id"], "carol")
        self.assertIn("db_session", body)
        # The cleanup runs after the response: wait for it.
        m = self.server.wait_metrics(
            lambda m: m["ctxexec_request_scope_cleanups_run_total"] == 1,
            "the request's cleanup")
        self.assertEqual(m["ctxexec_request_scope_cleanups_registered_total"],
                         1)
        self.assertEqual(m["ctxexec_db_sessions_in_use"], 0)

    def test_chain_propagates_trace_and_user_through_every_hop(self):
        r, body = self.server.get_json(
            "/chain?hops=3", {"traceparent": TRACEPARENT, "x-user-id": "dave"})
        self.assertEqual(r.status, 200)
        hops = 0
        parent_span = None
        while True:
            self.assert_contract(body, "/chain")
            self.assertEqual(body["trace_id"], TRACE)
            self.assertEqual(body["user_id"], "dave")
            if parent_span is not None:
                # The upstream's parent is the caller's child span.
                self.assertNotEqual(body["parent_id"], parent_span)
                self.assertNotEqual(body["parent_id"], "")
            parent_span = body["span_id"]
            if "upstream" not in body:
                break
            body = body["upstream"]
            hops += 1
        self.assertEqual(hops, 3)

    def test_baggage_parse_returns_members_and_properties(self):
        r, body = self.server.get_json(
            "/baggage/parse",
            {"baggage": "userId=alice;ttl=60;secret, serverNode=DF%2028"})
        self.assertEqual(r.status, 200)
        self.assertEqual(body, [
            {"key": "userId", "value": "alice",
             "properties": [{"key": "ttl", "value": "60"}, {"key": "secret"}]},
            {"key": "serverNode", "value": "DF 28", "properties": []},
        ])
        r, _ = self.server.get("/baggage/parse", {"baggage": "no equals"})
        self.assertEqual(r.status, 400)
        self.assert_good_request()

    def test_test_service_posts_arguments_with_the_trace(self):
        received = []

        class Harness(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                received.append((self.path, dict(self.headers),
                                 self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        harness = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Harness)
        t = threading.Thread(target=harness.serve_forever, daemon=True)
        t.start()
        try:
            url = f"http://127.0.0.1:{harness.server_address[1]}"
            payload = json.dumps([
                {"url": url + "/a", "arguments": [{"url": "x", "arguments": []}]},
                {"url": url + "/b", "arguments": []},
            ])
            c = self.server.conn()
            c.request("POST", "/test", body=payload, headers={
                "traceparent": TRACEPARENT, "tracestate": "rojo=1,congo=2",
                "content-type": "application/json"})
            r = c.getresponse()
            body = json.loads(r.read())
            c.close()
        finally:
            harness.shutdown()
            harness.server_close()
        self.assertEqual(r.status, 200)
        self.assertEqual(body["statuses"], [200, 200])
        self.assertEqual([p for p, _, _ in received], ["/a", "/b"])
        for _, headers, _ in received:
            h = {k.lower(): v for k, v in headers.items()}
            version, trace, parent, flags = h["traceparent"].split("-")
            self.assertEqual(trace, TRACE)
            self.assertNotEqual(parent, PARENT)
            self.assertEqual(h["tracestate"], "rojo=1,congo=2")
        self.assertEqual(json.loads(received[0][2]),
                         [{"url": "x", "arguments": []}])

    def test_metrics_count_requests_and_errors_per_route(self):
        self.server.get("/async")
        self.server.get("/nowhere")
        m = self.server.metrics()
        self.assertEqual(m['ctxexec_requests_total{route="/async"}'], 1)
        self.assertEqual(m['ctxexec_requests_total{route="other"}'], 1)
        self.assertEqual(m['ctxexec_errors_total{route="other"}'], 1)
        for name in ("ctxexec_limiter_borrowed_tokens",
                     "ctxexec_limiter_total_tokens",
                     "ctxexec_limiter_tasks_waiting",
                     "ctxexec_db_sessions_in_use",
                     "ctxexec_db_session_waits_total",
                     "ctxexec_request_scopes_open"):
            self.assertIn(name, m)
        self.assertEqual(m["ctxexec_limiter_total_tokens"], 40)


class KeepAliveTest(ServerTest):
    def test_nothing_leaks_between_requests_of_one_connection(self):
        c = self.server.conn()
        _, first = self.server.get_json(
            "/async", {"traceparent": TRACEPARENT, "x-user-id": "alice",
                       "baggage": "tenant=acme"}, conn=c)
        _, second = self.server.get_json("/sync", conn=c)
        _, third = self.server.get_json("/async", conn=c)
        c.close()
        self.assertEqual(first["user_id"], "alice")
        self.assertEqual(first["trace_id"], TRACE)
        for later in (second, third):
            self.assertEqual(later["user_id"], "anonymous")
            self.assertNotEqual(later["trace_id"], TRACE)
            self.assertEqual(later["parent_id"], "")
        self.assertNotEqual(second["trace_id"], third["trace_id"])


class BadInputTest(ServerTest):
    flags = ("--header-timeout-ms=300",)

    def test_malformed_http_gets_400_and_a_close(self):
        s = self.server.raw()
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = read_all(s)
        s.close()
        self.assertEqual(status_of(data), 400)
        self.assertIn(b"traceresponse:", data.lower())
        self.assert_good_request()

    def test_a_header_over_8_kib_gets_431(self):
        s = self.server.raw()
        s.sendall(b"GET /async HTTP/1.1\r\nHost: x\r\nx-big: " +
                  b"a" * 9000 + b"\r\n\r\n")
        data = read_all(s)
        s.close()
        self.assertEqual(status_of(data), 431)
        self.assert_good_request()

    def test_a_body_over_1_mib_gets_413(self):
        s = self.server.raw()
        s.sendall(b"POST /test HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 2000000\r\n\r\n" + b"[" * 65536)
        data = read_all(s)
        s.close()
        self.assertEqual(status_of(data), 413)
        self.assert_good_request()

    def test_a_slowloris_client_is_closed_at_the_header_timeout(self):
        s = self.server.raw()
        s.sendall(b"GET /async HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        # Dribble a byte now and then; the server must not wait for us.
        closed = False
        while time.monotonic() - started < 5:
            try:
                s.sendall(b"x")
                s.settimeout(0.05)
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        s.close()
        self.assertTrue(closed, "the slow connection was not closed")
        self.assertLess(time.monotonic() - started, 3)
        self.assert_good_request()
        m = self.server.metrics()
        self.assertEqual(m["ctxexec_header_timeouts_total"], 1)

    def test_an_idle_connection_is_closed_at_the_header_timeout(self):
        s = self.server.raw(timeout=5)
        self.assertEqual(read_all(s), b"")
        s.close()
        self.assert_good_request()

    def test_malformed_trace_headers_get_a_new_trace_and_200(self):
        cases = [
            {"traceparent": "00-XYZ-00f067aa0ba902b7-01"},
            {"traceparent": f"00-{TRACE.upper()}-{PARENT}-01"},
            {"traceparent": f"00-{'0' * 32}-{PARENT}-01"},
            {"traceparent": "garbage", "tracestate": "a=1"},
            {"baggage": "=no key, ;;;"},
            {"baggage": "k=%ZZ"},
        ]
        for headers in cases:
            r, body = self.server.get_json("/async", {**headers,
                                                      "x-user-id": "eve"})
            self.assertEqual(r.status, 200, headers)
            if "traceparent" in headers:
                self.assertNotEqual(body["trace_id"], TRACE)
                self.assertEqual(body["parent_id"], "")
            self.assertEqual(body["user_id"], "eve")
        # An invalid tracestate is dropped; the trace goes on.
        r, body = self.server.get_json(
            "/async", {"traceparent": TRACEPARENT, "tracestate": "A=1"})
        self.assertEqual(r.status, 200)
        self.assertEqual(body["trace_id"], TRACE)
        self.assert_good_request()


class DisconnectTest(ServerTest):
    def test_every_cleanup_runs_when_the_client_disconnects_mid_request(self):
        for _ in range(5):
            s = self.server.raw()
            s.sendall(b"GET /sync?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.close()
        m = self.server.wait_metrics(
            lambda m: m['ctxexec_requests_total{route="/sync"}'] == 5 and
            m["ctxexec_request_scopes_open"] == 1,  # the /metrics request
            "the abandoned requests to end")
        self.assertEqual(m["ctxexec_request_scope_cleanups_registered_total"],
                         5)
        self.assertEqual(m["ctxexec_request_scope_cleanups_run_total"], 5)
        self.assertEqual(m["ctxexec_db_sessions_in_use"], 0)
        self.assert_good_request()


class SigtermTest(unittest.TestCase):
    def run_in_flight(self, flags, paths):
        server = Server(*flags)
        results = [None] * len(paths)

        def call(i, path):
            try:
                r, body = server.get_json(path, {"x-user-id": f"u{i}"})
                results[i] = (r.status, body["user_id"])
            except Exception as e:  # noqa: BLE001
                results[i] = ("error", repr(e))

        threads = [threading.Thread(target=call, args=(i, p))
                   for i, p in enumerate(paths)]
        for t in threads:
            t.start()
        server.wait_metrics(
            lambda m: m["ctxexec_requests_in_flight"] == len(paths) + 1,
            "every request to be in flight")
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=20)
        code = server.proc.wait(timeout=20)
        self.assertEqual(code, 0, "".join(server.stderr[-300:]))
        self.assertEqual(results,
                         [(200, f"u{i}") for i in range(len(paths))])
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2)

    def test_requests_in_flight_are_answered_then_it_exits_0(self):
        paths = ["/async?ms=400", "/sync?ms=400"] * 5
        self.run_in_flight((), paths)

    def test_plain_mode_too(self):
        self.run_in_flight(("--plain",), ["/async?ms=400", "/sync?ms=400"] * 3)


class MonitorTest(unittest.TestCase):
    """The loop monitor with --misbehave: GET /block sleeps on the loop
    thread itself, and the log names the blocked request while it blocks."""

    def log_lines(self, server, *needles):
        return [l for l in list(server.stderr) if all(n in l for n in needles)]

    def wait_log(self, server, deadline, *needles):
        while time.monotonic() < deadline:
            found = self.log_lines(server, *needles)
            if found:
                return found[0]
            time.sleep(0.002)  # polls the log, bounded by the deadline
        return None

    def test_a_blocked_request_is_logged_while_it_blocks(self):
        server = Server("--misbehave")
        try:
            headers = {"traceparent": TRACEPARENT, "x-user-id": "mallory"}
            done = threading.Event()
            answer = {}

            def call():
                answer["r"], answer["body"] = server.get_json(
                    "/block?ms=600", headers)
                done.set()

            sent = time.monotonic()
            client = threading.Thread(target=call)
            client.start()
            # Within 150 ms of the 100 ms threshold, while still blocked.
            line = self.wait_log(server, sent + 5, "blocked:", TRACE, "mallory")
            seen = time.monotonic()
            self.assertIsNotNone(line, "".join(server.stderr))
            self.assertFalse(done.is_set(), "reported only after it returned")
            self.assertLess(seen - sent, 0.1 + 0.15, line)
            client.join(timeout=10)
            self.assertEqual(answer["r"].status, 200)
            self.assertEqual(answer["body"]["user_id"], "mallory")
            returned = self.wait_log(server, time.monotonic() + 5, "returned",
                                     TRACE, "mallory")
            self.assertIsNotNone(returned, "".join(server.stderr))
            self.assertEqual(len(self.log_lines(server, "blocked:", TRACE)), 1)
            m = server.metrics()
            self.assertEqual(m["ctxexec_blocked_handlers_total"], 1)
            self.assertGreaterEqual(
                m['ctxexec_loop_lag_seconds{loop="0",quantile="1"}'] +
                m['ctxexec_loop_lag_seconds{loop="1",quantile="1"}'], 0.3)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_without_misbehave_there_is_no_block_route(self):
        server = Server()
        try:
            r, body = server.get_json("/block?ms=1")
            self.assertEqual(r.status, 404)
        finally:
            self.assertEqual(server.stop(), 0)


class UpstreamPoolTest(unittest.TestCase):
    """The /chain client's kept connections: when the upstream has closed
    every one of them (as a server does at its idle timeout), the next call
    still succeeds on a new connection, whatever the number of stale ones."""

    STALE = 3

    def test_a_call_after_the_upstream_closed_every_kept_connection(self):
        barrier = threading.Barrier(self.STALE, timeout=10)
        served = []
        open_sockets = []
        lock = threading.Lock()

        class Upstream(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with lock:
                    open_sockets.append(self.connection)

            def do_GET(self):
                with lock:
                    served.append(self.path)
                    first_calls = len(served) <= UpstreamPoolTest.STALE
                if first_calls:
                    # Keeps STALE calls in flight together: the gateway
                    # must open, then keep, STALE connections.
                    barrier.wait()
                body = json.dumps({"route": "/chain"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        t = threading.Thread(target=upstream.serve_forever, daemon=True)
        t.start()
        url = f"http://127.0.0.1:{upstream.server_address[1]}"
        gateway = Server("--threads=1", f"--upstream={url}")
        try:
            results = []

            def call():
                r, body = gateway.get_json("/chain?hops=1")
                results.append(r.status)

            callers = [threading.Thread(target=call) for _ in range(self.STALE)]
            for c in callers:
                c.start()
            for c in callers:
                c.join(timeout=20)
            self.assertEqual(results, [200] * self.STALE)
            # The upstream closes every connection the gateway keeps.
            with lock:
                self.assertEqual(len(open_sockets), self.STALE)
                for s in open_sockets:
                    s.shutdown(socket.SHUT_RDWR)
            r, body = gateway.get_json("/chain?hops=1")
            self.assertEqual(r.status, 200, body)
            self.assertEqual(body["upstream"], {"route": "/chain"})
        finally:
            code = gateway.stop()
            upstream.shutdown()
            upstream.server_close()
        self.assertEqual(code, 0)


class PlainModeTest(ContractTest):
    """--plain serves the same contract."""
    flags = ("--plain",)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    args, rest = parser.parse_known_args()
    BINARY = os.path.abspath(args.binary)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
