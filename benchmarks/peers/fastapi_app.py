#!/usr/bin/python3
# fastapi_app.py - the FastAPI peer of the ctxexec demo server
# (examples/server/, target ctxexec_demo), for scripts/demo.sh.
#
# The same HTTP contract as ctxexec_demo (issue 10), written the way a
# FastAPI user writes it, with the helper of shared/seed-fastapi-notes.txt:
#
#   GET  /async?ms=N      awaits asyncio.sleep on the event loop
#   GET  /sync?ms=N       time.sleep on an anyio worker through
#                         run_in_sync_with_context (the context copied into
#                         the worker), holding a fake DB session from a pool
#                         of --db-pool, taken through Depends with yield
#   GET  /chain?hops=K    GET {upstream}/chain?hops=K-1 with httpx.AsyncClient
#                         (traceparent of a child span, tracestate, baggage
#                         with user.id); the upstream's JSON under "upstream";
#                         hops=0 acts as /async?ms=0
#   POST /test            the W3C trace-context harness test service
#   GET  /baggage/parse   the parsed baggage header as JSON, 400 if invalid
#   GET  /metrics         Prometheus text (names as in ctxexec_demo)
#
# Every JSON response carries route, trace_id, span_id, parent_id, user_id
# and thread ("loop" or "worker"), all read from ContextVars inside the
# handler; every response carries a traceresponse header. The middleware is
# a plain ASGI middleware (the fastest correct form: @app.middleware("http")
# adds a task per request, and hides values set by the endpoint,
# encode/starlette#1081). It reads traceparent/tracestate (parsed, or a new
# trace), starts a child span, and takes the user id from x-user-id, else
# the baggage member user.id, else "anonymous".
#
# Runs on uvicorn with 1 worker, uvloop and httptools (Debian's packages:
# run it with /usr/bin/python3). Flags as ctxexec_demo: --port (0 picks a
# free loopback port), --tokens (the anyio default limiter, 40),
# --db-pool (40), --upstream (default: itself); --threads and
# --header-timeout-ms are accepted and ignored (one worker, one loop).
# Abseil's spellings (--db_pool, --header_timeout_ms) are accepted too.
# The first stdout line is exactly "listening on http://127.0.0.1:PORT".
# SIGTERM: stop accepting, finish in-flight requests, exit 0.

import argparse
import asyncio
import json
import random
import re
import socket
import sys
import threading
import time
from contextvars import ContextVar, copy_context
from urllib.parse import unquote

import anyio
import anyio.to_thread
import httpx
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

# --- W3C Trace Context, good enough for the comparison --------------------

_TRACEPARENT = re.compile(
    r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class Span:
    __slots__ = ("trace_id", "span_id", "parent_id", "flags", "tracestate")

    def __init__(self, trace_id, span_id, parent_id, flags, tracestate):
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.flags = flags
        self.tracestate = tracestate

    def traceparent(self):
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def new_id(bits):
    while True:
        value = random.getrandbits(bits)
        if value:
            return f"{value:0{bits // 4}x}"


def parse_traceparent(value):
    """Returns (trace_id, parent_id, flags), or None for "start a trace"."""
    m = _TRACEPARENT.match(value)
    if not m:
        return None
    version, trace_id, parent_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, flags


def server_span(traceparent, tracestate):
    """The request's own span: a child of the caller's, or a new trace."""
    parsed = parse_traceparent(traceparent) if traceparent else None
    if parsed is None:
        return Span(new_id(128), new_id(64), _ZERO_SPAN, "00", "")
    trace_id, parent_id, flags = parsed
    return Span(trace_id, new_id(64), parent_id, flags, tracestate)


# --- W3C Baggage, good enough for the comparison --------------------------

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$")


def parse_baggage(header):
    """[{key, value, properties: [{key, value?}]}], or None if invalid."""
    members = []
    for item in header.split(","):
        parts = item.split(";")
        key, eq, value = parts[0].partition("=")
        key, value = key.strip(" \t"), value.strip(" \t")
        if not eq or not _TOKEN.match(key) or not _VALUE.match(value):
            return None
        properties = []
        for prop in parts[1:]:
            pkey, peq, pvalue = prop.partition("=")
            pkey = pkey.strip(" \t")
            if not _TOKEN.match(pkey):
                return None
            entry = {"key": pkey}
            if peq:
                entry["value"] = unquote(pvalue.strip(" \t"), errors="replace")
            properties.append(entry)
        members.append({"key": key,
                        "value": unquote(value, errors="replace"),
                        "properties": properties})
    return members


# --- Context variables and metrics ----------------------------------------

span_var = ContextVar("span")
user_var = ContextVar("user_id", default="anonymous")
baggage_var = ContextVar("baggage", default="")

ROUTES = ("/async", "/sync", "/chain", "/test", "/baggage/parse", "/metrics")


class Metrics:
    def __init__(self):
        self.requests = dict.fromkeys(ROUTES + ("other",), 0)
        self.errors = dict.fromkeys(ROUTES + ("other",), 0)
        self.scopes_opened = 0
        self.scopes_closed = 0
        self.cleanups_registered = 0
        self.cleanups_run = 0
        self.db_in_use = 0
        self.db_waits = 0
        self.db_waiting = 0


METRICS = Metrics()


class FakeDbPool:
    """--db-pool fake sessions; a request that finds none waits (counted)."""

    def __init__(self, size):
        self.size = size
        self.free = None  # an asyncio.Queue, made on the loop

    async def acquire(self):
        if self.free is None:
            self.free = asyncio.Queue()
            for session in range(self.size):
                self.free.put_nowait(session)
        try:
            session = self.free.get_nowait()
        except asyncio.QueueEmpty:
            METRICS.db_waits += 1
            METRICS.db_waiting += 1
            try:
                session = await self.free.get()
            finally:
                METRICS.db_waiting -= 1
        METRICS.db_in_use += 1
        return session

    def release(self, session):
        METRICS.db_in_use -= 1
        self.free.put_nowait(session)


class ContextMiddleware:
    """Trace context, baggage and user id into ContextVars; traceresponse out.

    uvicorn runs each request in its own task, so each request has its own
    copy of the context: nothing leaks between requests on one connection.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        traceparents, tracestates, baggages, user = [], [], [], None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparents.append(value.decode("latin-1"))
            elif name == b"tracestate":
                tracestates.append(value.decode("latin-1"))
            elif name == b"baggage":
                baggages.append(value.decode("latin-1"))
            elif name == b"x-user-id":
                user = value.decode("latin-1")
        span = server_span(traceparents[0] if len(traceparents) == 1 else "",
                           ",".join(tracestates))
        baggage = ",".join(baggages)
        if user is None and "user.id" in baggage:
            for member in parse_baggage(baggage) or ():
                if member["key"] == "user.id":
                    user = member["value"]
        span_var.set(span)
        user_var.set(user or "anonymous")
        baggage_var.set(baggage)

        route = scope["path"] if scope["path"] in METRICS.requests else "other"
        METRICS.requests[route] += 1
        METRICS.scopes_opened += 1
        traceresponse = ("traceresponse",
                         f"00-{span.trace_id}-{span.span_id}-{span.flags}")
        status = 500

        async def send_with_traceresponse(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", ())) + [
                    (b"traceresponse", traceresponse[1].encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_traceresponse)
        finally:
            METRICS.scopes_closed += 1
            if status >= 500:
                METRICS.errors[route] += 1


# --- The seed's helper ----------------------------------------------------


def run_in_sync_with_context(func, *args, **kwargs):
    """Run a sync function on an anyio worker, in a copy of the context."""
    ctx = copy_context()
    return anyio.to_thread.run_sync(lambda: ctx.run(func, *args, **kwargs))


# --- The application ------------------------------------------------------


def make_app(options):
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    pool = FakeDbPool(options.db_pool)
    state = {"client": None, "upstream": options.upstream}
    loop_thread = []

    @app.on_event("startup")
    async def startup():
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            options.tokens)
        limits = httpx.Limits(max_connections=2000,
                              max_keepalive_connections=2000)
        state["client"] = httpx.AsyncClient(limits=limits, timeout=30.0)
        loop_thread.append(threading.get_ident())

    @app.on_event("shutdown")
    async def shutdown():
        await state["client"].aclose()

    def fields(route):
        span = span_var.get()
        return {"route": route, "trace_id": span.trace_id,
                "span_id": span.span_id, "parent_id": span.parent_id,
                "user_id": user_var.get(),
                "thread": ("loop" if threading.get_ident() == loop_thread[0]
                           else "worker")}

    async def get_db():
        """The request-scoped DB session (Depends with yield)."""
        session = await pool.acquire()
        METRICS.cleanups_registered += 1
        try:
            yield session
        finally:
            pool.release(session)
            METRICS.cleanups_run += 1

    def outgoing_headers(extra=None):
        span = span_var.get()
        child = Span(span.trace_id, new_id(64), span.span_id, span.flags, "")
        headers = {"traceparent": child.traceparent()}
        if span.tracestate:
            headers["tracestate"] = span.tracestate
        baggage = baggage_var.get()
        user = user_var.get()
        if "user.id=" not in baggage:
            member = f"user.id={user}"
            baggage = f"{baggage},{member}" if baggage else member
        headers["baggage"] = baggage
        if extra:
            headers.update(extra)
        return headers

    @app.get("/async")
    async def async_route(ms: int = 0):
        await asyncio.sleep(ms / 1000)
        return JSONResponse(fields("/async"))

    @app.get("/sync")
    async def sync_route(ms: int = 0, db=Depends(get_db)):
        def logic():
            if ms > 0:
                time.sleep(ms / 1000)
            return fields("/sync")

        return JSONResponse(await run_in_sync_with_context(logic))

    @app.get("/chain")
    async def chain_route(hops: int = 0):
        if hops <= 0:
            await asyncio.sleep(0)
            return JSONResponse(fields("/chain"))
        url = f"{state['upstream']}/chain?hops={hops - 1}"
        try:
            reply = await state["client"].get(url, headers=outgoing_headers())
            upstream = reply.json()
            if reply.status_code != 200 or not isinstance(upstream, dict):
                raise ValueError(f"answered {reply.status_code}")
        except (httpx.HTTPError, ValueError) as error:
            body = fields("/chain")
            body["error"] = f"upstream: {error!r}"
            return JSONResponse(body, status_code=502)
        body = fields("/chain")
        body["upstream"] = upstream
        return JSONResponse(body)

    @app.post("/test")
    async def test_route(request: Request):
        try:
            cases = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        for case in cases:
            await state["client"].post(
                case["url"], json=case.get("arguments", []),
                headers=outgoing_headers())
        return JSONResponse(fields("/test"))

    @app.get("/baggage/parse")
    async def baggage_route():
        header = baggage_var.get()
        parsed = parse_baggage(header) if header else []
        if parsed is None:
            return JSONResponse({"error": "invalid baggage"}, status_code=400)
        return JSONResponse(parsed)

    @app.get("/metrics")
    async def metrics_route():
        limiter = anyio.to_thread.current_default_thread_limiter()
        stats = limiter.statistics()
        lines = ["# TYPE demo_requests_total counter"]
        for route, count in METRICS.requests.items():
            lines.append(f'demo_requests_total{{route="{route}"}} {count}')
        lines.append("# TYPE demo_errors_total counter")
        for route, count in METRICS.errors.items():
            lines.append(f'demo_errors_total{{route="{route}"}} {count}')
        for name, kind, value in (
                ("limiter_total_tokens", "gauge", stats.total_tokens),
                ("limiter_borrowed_tokens", "gauge", stats.borrowed_tokens),
                ("limiter_waiting", "gauge", stats.tasks_waiting),
                ("db_pool_size", "gauge", pool.size),
                ("db_sessions_in_use", "gauge", METRICS.db_in_use),
                ("db_session_waiting", "gauge", METRICS.db_waiting),
                ("db_session_waits_total", "counter", METRICS.db_waits),
                ("request_scopes_open", "gauge",
                 METRICS.scopes_opened - METRICS.scopes_closed),
                ("request_scopes_opened_total", "counter",
                 METRICS.scopes_opened),
                ("request_scopes_closed_total", "counter",
                 METRICS.scopes_closed),
                ("scope_cleanups_registered_total", "counter",
                 METRICS.cleanups_registered),
                ("scope_cleanups_run_total", "counter", METRICS.cleanups_run)):
            lines.append(f"# TYPE demo_{name} {kind}")
            lines.append(f"demo_{name} {value}")
        return PlainTextResponse("\n".join(lines) + "\n")

    return ContextMiddleware(app)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--db-pool", "--db_pool", type=int, default=40)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--header-timeout-ms", "--header_timeout_ms",
                        type=int, default=0)
    options = parser.parse_args(argv)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", options.port))
    port = sock.getsockname()[1]
    if not options.upstream:
        options.upstream = f"http://127.0.0.1:{port}"
    options.upstream = options.upstream.rstrip("/")

    config = uvicorn.Config(make_app(options), workers=1, loop="uvloop",
                            http="httptools", lifespan="on",
                            access_log=False, log_level="warning",
                            backlog=4096)
    server = uvicorn.Server(config)
    # Connections wait in the backlog until the loop runs.
    sock.listen(4096)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    server.run(sockets=[sock])  # SIGTERM: graceful shutdown, then return
    return 0


if __name__ == "__main__":
    sys.exit(main())
