#!/usr/bin/env python3
"""Oracle for the ctxexec differential test: random programs run on CPython.

Usage:
  contextvars_oracle.py --seed S --count N --out FILE   # FILE may be '-'
  contextvars_oracle.py --program FILE                  # run one program text

Program i of a batch is generated from random.Random(S + i), so
`--seed S+i --count 1` reproduces it alone.

Program language (one statement per line, blocks closed by `end`,
leading spaces ignored, lines numbered from 1 including the header):

  var <i> <name> <default|->   header: ContextVar i, with or without default
  set <v> <val> <t>            tok[t] = var[v].set(val)           -> ok
  reset <v> <t>                var[v].reset(tok[t])               -> ok | err
  get <v>                      var[v].get()                       -> val | err
  getd <v> <val>               var[v].get(val)  (C++ value_or)    -> val
  tryget <v>                   C++ try_get: ctx value, default    -> val | none
  copy <c>                     ctx[c] = copy_context()            -> ok
  new <c>                      ctx[c] = Context()                 -> ok
  alias <c> <d>                ctx[c] = ctx[d] (same object)      -> ok
  run <c> ... end              ctx[c].run(block)   -> run, ..., end run
                               | err entered | ..., raised (on `raise`)
  thread ... end               run block in a new thread, join it
                               -> thread, ..., end thread
  scoped <v> <val> ... end     t = set(val); block; finally reset(t)
                               -> scoped, ..., end scoped (normal exit only)
  raise                        throw out of the innermost `run`   -> raise
  tokinfo <t>                  token var name and old value -> name val|MISSING
  ctxlen <c>                   len(ctx[c])                        -> n
  ctxget <c> <v>               ctx[c].get(var[v])  (C++ find)     -> val | none
  ctxhas <c> <v>               var[v] in ctx[c]  (C++ contains)   -> true|false
  ctxitems <c>                 sorted name=value pairs            -> {a=1,b=2}
  same <c> <d>                 ctx[c] is ctx[d]  (C++ ==)         -> true|false

Trace: one line `<line> <result>` per event. Errors are `err <kind>` with
kind in lookup, used, var, ctx, entered.

Batch file format:
  #program <index> <seed>
  <program lines>
  #trace
  <trace lines>
  #end
  ... (one block per program) ...
  #count <N>
"""

import argparse
import contextvars
import random
import sys
import threading

MAX_DEPTH = 3
CTX_SLOTS = 4
TOK_SLOTS = 6
MAX_VALUE = 100

# Operand kinds per op: v = var, c = ctx slot, t = token slot, n = value.
_OPERANDS = {
    "set": "vnt", "reset": "vt", "get": "v", "getd": "vn", "tryget": "v",
    "copy": "c", "new": "c", "alias": "cc", "run": "c", "thread": "",
    "scoped": "vn", "raise": "", "tokinfo": "t", "ctxlen": "c",
    "ctxget": "cv", "ctxhas": "cv", "ctxitems": "c", "same": "cc",
}
_BLOCK_OPS = ("run", "thread", "scoped")


class OracleError(Exception):
    """A bug in the oracle or a malformed program (never a trace event)."""


class _Raised(Exception):
    """Thrown by the `raise` statement."""


# ----------------------------------------------------------------- parsing


class Stmt:
    __slots__ = ("line", "op", "args", "body", "end_line")

    def __init__(self, line, op, args):
        self.line = line
        self.op = op
        self.args = args
        self.body = []
        self.end_line = 0


class Program:
    def __init__(self):
        self.vars = []  # (name, default or None)
        self.body = []


def parse(text):
    prog = Program()
    stack = [prog.body]
    open_blocks = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words:
            raise OracleError(f"line {line_no}: empty line")
        op = words[0]
        if op == "var":
            if len(words) != 4 or stack[-1] is not prog.body or prog.body:
                raise OracleError(f"line {line_no}: bad var line")
            if int(words[1]) != len(prog.vars):
                raise OracleError(f"line {line_no}: var out of order")
            default = None if words[3] == "-" else int(words[3])
            prog.vars.append((words[2], default))
            continue
        if op == "end":
            if len(words) != 1 or not open_blocks:
                raise OracleError(f"line {line_no}: unmatched end")
            open_blocks.pop().end_line = line_no
            stack.pop()
            continue
        if op not in _OPERANDS or len(words) != 1 + len(_OPERANDS[op]):
            raise OracleError(f"line {line_no}: bad statement {raw!r}")
        st = Stmt(line_no, op, [int(w) for w in words[1:]])
        _check_operands(st, len(prog.vars))
        stack[-1].append(st)
        if op in _BLOCK_OPS:
            open_blocks.append(st)
            stack.append(st.body)
    if open_blocks:
        raise OracleError("unterminated block")
    return prog


def _check_operands(st, nvars):
    limits = {"v": nvars, "c": CTX_SLOTS, "t": TOK_SLOTS, "n": MAX_VALUE}
    for kind, value in zip(_OPERANDS[st.op], st.args):
        if not 0 <= value < limits[kind]:
            raise OracleError(f"line {st.line}: operand out of range")


# -------------------------------------------------------------- execution


def _run_in_new_thread(fn):
    """Runs fn() in a new thread (which starts with an empty context)."""
    errors = []

    def main():
        try:
            if len(contextvars.copy_context()) != 0:
                raise OracleError("new thread did not start empty")
            fn()
        except _Raised:
            errors.append(OracleError("raise escaped a thread"))
        except BaseException as e:  # pylint: disable=broad-except
            errors.append(e)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _api(fn):
    """Calls a contextvars API; returns (error kind or None, result)."""
    try:
        return None, fn()
    except LookupError:
        return "err lookup", None
    except RuntimeError as e:
        if "has already been used once" in str(e):
            return "err used", None
        raise
    except ValueError as e:
        if "different ContextVar" in str(e):
            return "err var", None
        if "different Context" in str(e):
            return "err ctx", None
        raise


class _Interpreter:
    def __init__(self, prog):
        self.vars = [
            contextvars.ContextVar(name) if default is None
            else contextvars.ContextVar(name, default=default)
            for name, default in prog.vars
        ]
        self.ctxs = [None] * CTX_SLOTS
        self.toks = [None] * TOK_SLOTS
        self.trace = []

    def emit(self, line, result):
        self.trace.append(f"{line} {result}")

    def ctx(self, slot, st):
        if self.ctxs[slot] is None:
            raise OracleError(f"line {st.line}: ctx slot {slot} unassigned")
        return self.ctxs[slot]

    def tok(self, slot, st):
        if self.toks[slot] is None:
            raise OracleError(f"line {st.line}: token slot {slot} unassigned")
        return self.toks[slot]

    def exec_block(self, body):
        for st in body:
            self.exec_stmt(st)

    def exec_stmt(self, st):
        op, a = st.op, st.args
        if op == "run":
            self.exec_run(st)
        elif op == "thread":
            self.emit(st.line, "thread")
            _run_in_new_thread(lambda: self.exec_block(st.body))
            self.emit(st.end_line, "end thread")
        elif op == "scoped":
            var = self.vars[a[0]]
            self.emit(st.line, "scoped")
            token = var.set(a[1])
            try:
                self.exec_block(st.body)
            finally:
                var.reset(token)
            self.emit(st.end_line, "end scoped")
        elif op == "raise":
            self.emit(st.line, "raise")
            raise _Raised()
        else:
            self.emit(st.line, self.exec_leaf(st))

    def exec_run(self, st):
        ctx = self.ctx(st.args[0], st)
        entered = False

        def body():
            nonlocal entered
            entered = True
            self.emit(st.line, "run")
            self.exec_block(st.body)

        try:
            ctx.run(body)
        except _Raised:
            self.emit(st.line, "raised")
            return
        except RuntimeError as e:
            if entered or "is already entered" not in str(e):
                raise
            self.emit(st.line, "err entered")
            return
        self.emit(st.end_line, "end run")

    def exec_leaf(self, st):
        op, a = st.op, st.args
        if op == "set":
            var = self.vars[a[0]]
            err, token = _api(lambda: var.set(a[1]))
            if err is None:
                self.toks[a[2]] = token
            return err or "ok"
        if op == "reset":
            var, token = self.vars[a[0]], self.tok(a[1], st)
            err, _ = _api(lambda: var.reset(token))
            return err or "ok"
        if op == "get":
            var = self.vars[a[0]]
            err, value = _api(var.get)
            return err or str(value)
        if op == "getd":
            var = self.vars[a[0]]
            err, value = _api(lambda: var.get(a[1]))
            return err or str(value)
        if op == "tryget":
            var = self.vars[a[0]]
            err, value = _api(var.get)
            if err == "err lookup":
                return "none"
            return err or str(value)
        if op == "copy":
            self.ctxs[a[0]] = contextvars.copy_context()
            return "ok"
        if op == "new":
            self.ctxs[a[0]] = contextvars.Context()
            return "ok"
        if op == "alias":
            self.ctxs[a[0]] = self.ctx(a[1], st)
            return "ok"
        if op == "tokinfo":
            token = self.tok(a[0], st)
            old = token.old_value
            shown = "MISSING" if old is contextvars.Token.MISSING else str(old)
            return f"{token.var.name} {shown}"
        if op == "ctxlen":
            return str(len(self.ctx(a[0], st)))
        if op == "ctxget":
            ctx, var = self.ctx(a[0], st), self.vars[a[1]]
            value = ctx.get(var)
            return "none" if value is None else str(value)
        if op == "ctxhas":
            ctx, var = self.ctx(a[0], st), self.vars[a[1]]
            return "true" if var in ctx else "false"
        if op == "ctxitems":
            ctx = self.ctx(a[0], st)
            items = sorted(f"{var.name}={value}" for var, value in ctx.items())
            return "{" + ",".join(items) + "}"
        if op == "same":
            same = self.ctx(a[0], st) is self.ctx(a[1], st)
            return "true" if same else "false"
        raise OracleError(f"line {st.line}: unknown op {op}")


def run_program(text):
    """Returns the trace of a program text, run in a fresh thread."""
    prog = parse(text)
    interp = _Interpreter(prog)
    _run_in_new_thread(lambda: interp.exec_block(prog.body))
    return interp.trace


# -------------------------------------------------------------- generator


class _Token:
    __slots__ = ("var", "ctx", "used", "missing")

    def __init__(self, var, ctx, missing):
        self.var = var
        self.ctx = ctx
        self.used = False
        self.missing = missing


class _Generator:
    """Emits a program while modelling context identities and var presence.

    The model knows which contexts are entered, which token resets will
    succeed and which vars are present, so it can aim at valid and invalid
    cases on purpose and never reference a slot that is not assigned.
    """

    def __init__(self, rng):
        self.rng = rng
        self.lines = []
        # Mostly 3-5 vars; some wide programs to grow the context maps.
        wide = rng.random() < 0.1
        self.nvars = rng.randint(6, 24) if wide else rng.randint(3, 5)
        self.present = {}  # ctx id -> set of vars holding a value
        self.ctx_slots = {}  # ctx slot -> ctx id
        self.tok_slots = {}  # token slot -> _Token
        self.entered = []  # ctx ids entered by enclosing runs (any thread)
        self.stack = []  # current thread: implicit ctx id, then run ctx ids
        self.budget = rng.randint(40, 90) if wide else rng.randint(20, 60)

    def new_ctx(self, present):
        ctx_id = len(self.present)
        self.present[ctx_id] = set(present)
        return ctx_id

    def out(self, depth, text):
        self.lines.append("  " * depth + text)

    def program(self):
        for i in range(self.nvars):
            has_default = self.rng.random() < 0.5
            default = self.rng.randrange(MAX_VALUE) if has_default else "-"
            self.out(0, f"var {i} v{i} {default}")
        self.stack = [self.new_ctx(())]
        while self.budget > 0:
            self.statement(0, raise_ok=False)
        return "\n".join(self.lines) + "\n"

    def block(self, depth, raise_ok):
        """Emits a block body; returns True if it ends by raising."""
        for _ in range(self.rng.randint(1, 6)):
            if self.budget <= 0:
                break
            if self.statement(depth, raise_ok):
                return True
        if raise_ok and self.rng.random() < 0.25:
            self.out(depth, "raise")
            return True
        return False

    def statement(self, depth, raise_ok):
        """Emits one statement; returns True if a `raise` escapes it."""
        self.budget -= 1
        rng = self.rng
        cur = self.stack[-1]
        choices = [
            ("set", 8), ("get", 3), ("getd", 2), ("tryget", 2),
            ("copy", 3), ("new", 1),
        ]
        if self.tok_slots:
            choices += [("reset", 8), ("tokinfo", 2)]
        if self.ctx_slots:
            choices += [("ctxlen", 1.5), ("ctxget", 2), ("ctxhas", 2),
                        ("ctxitems", 1.5), ("same", 1), ("alias", 1)]
        if depth < MAX_DEPTH:
            choices += [("thread", 1.5), ("scoped", 1.5)]
            if self.ctx_slots:
                choices += [("run", 5)]
        op = rng.choices([c[0] for c in choices], [c[1] for c in choices])[0]
        v = rng.randrange(self.nvars)
        val = rng.randrange(MAX_VALUE)
        c = rng.choice(sorted(self.ctx_slots)) if self.ctx_slots else 0

        if op == "set":
            t = rng.randrange(TOK_SLOTS)
            token = _Token(v, cur, v not in self.present[cur])
            self.tok_slots[t] = token
            self.present[cur].add(v)
            self.out(depth, f"set {v} {val} {t}")
        elif op == "reset":
            self.reset(depth, cur)
        elif op in ("get", "tryget"):
            self.out(depth, f"{op} {v}")
        elif op == "getd":
            self.out(depth, f"getd {v} {val}")
        elif op == "copy":
            slot = rng.randrange(CTX_SLOTS)
            self.ctx_slots[slot] = self.new_ctx(self.present[cur])
            self.out(depth, f"copy {slot}")
        elif op == "new":
            slot = rng.randrange(CTX_SLOTS)
            self.ctx_slots[slot] = self.new_ctx(())
            self.out(depth, f"new {slot}")
        elif op == "tokinfo":
            self.out(depth, f"tokinfo {rng.choice(sorted(self.tok_slots))}")
        elif op in ("ctxlen", "ctxitems"):
            self.out(depth, f"{op} {c}")
        elif op in ("ctxget", "ctxhas"):
            self.out(depth, f"{op} {c} {v}")
        elif op == "same":
            d = rng.choice(sorted(self.ctx_slots))
            self.out(depth, f"same {c} {d}")
        elif op == "alias":
            slot = rng.randrange(CTX_SLOTS)
            self.ctx_slots[slot] = self.ctx_slots[c]
            self.out(depth, f"alias {slot} {c}")
        elif op == "run":
            self.run(depth, raise_ok)
        elif op == "thread":
            self.out(depth, "thread")
            saved = self.stack
            self.stack = [self.new_ctx(())]
            self.block(depth + 1, raise_ok=False)
            self.stack = saved
            self.out(depth, "end")
        elif op == "scoped":
            was_present = v in self.present[cur]
            self.out(depth, f"scoped {v} {val}")
            self.present[cur].add(v)
            raised = self.block(depth + 1, raise_ok)
            if not was_present:
                self.present[cur].discard(v)
            self.out(depth, "end")
            return raised
        return False

    def reset(self, depth, cur):
        rng = self.rng
        slots = sorted(self.tok_slots)
        toks = self.tok_slots
        valid = [t for t in slots if not toks[t].used and toks[t].ctx == cur]
        used = [t for t in slots if toks[t].used]
        other_ctx = [t for t in slots
                     if not toks[t].used and toks[t].ctx != cur]
        r = rng.random()
        if r < 0.5 and valid:
            t = rng.choice(valid)
        elif r < 0.65 and used:
            t = rng.choice(used)
        elif r < 0.85 and other_ctx:
            t = rng.choice(other_ctx)
        else:
            t = rng.choice(slots)
        token = toks[t]
        # Mostly the token's own var; sometimes another one.
        v = token.var if rng.random() < 0.85 else rng.randrange(self.nvars)
        if not token.used and v == token.var and token.ctx == cur:
            token.used = True
            if token.missing:
                self.present[cur].discard(v)
            else:
                self.present[cur].add(v)
        self.out(depth, f"reset {v} {t}")

    def run(self, depth, raise_ok):
        rng = self.rng
        slots = sorted(self.ctx_slots)
        busy = [s for s in slots if self.ctx_slots[s] in self.entered]
        # Aim at entered contexts often, more so from other threads.
        aim = 0.35 if len(self.stack) == 1 and self.entered else 0.15
        if busy and rng.random() < aim:
            slot = rng.choice(busy)
        else:
            slot = rng.choice(slots)
        ctx_id = self.ctx_slots[slot]
        self.out(depth, f"run {slot}")
        if ctx_id in self.entered:
            # The body never runs: keep it to side-effect-free reads.
            self.budget -= 1
            self.out(depth + 1, f"get {rng.randrange(self.nvars)}")
        else:
            self.entered.append(ctx_id)
            self.stack.append(ctx_id)
            self.block(depth + 1, raise_ok=True)
            self.stack.pop()
            self.entered.pop()
        self.out(depth, "end")
        return False


def generate(rng):
    return _Generator(rng).program()


# -------------------------------------------------------------------- main


def _write_batch(seed, count, out):
    for i in range(count):
        program_seed = seed + i
        text = generate(random.Random(program_seed))
        trace = run_program(text)
        out.write(f"#program {i} {program_seed}\n{text}#trace\n")
        for line in trace:
            out.write(line + "\n")
        out.write("#end\n")
    out.write(f"#count {count}\n")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--out", help="output file, '-' for stdout")
    parser.add_argument("--program", help="run one program text file")
    args = parser.parse_args(argv)
    if args.program:
        with open(args.program, encoding="utf-8") as f:
            for line in run_program(f.read()):
                print(line)
        return 0
    if args.seed is None or args.out is None or args.count < 0:
        parser.error("--seed and --out are required (or --program)")
    if args.out == "-":
        _write_batch(args.seed, args.count, sys.stdout)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            _write_batch(args.seed, args.count, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
