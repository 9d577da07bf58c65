#!/usr/bin/env node
// als_peer.js - the Node.js peer of benchmarks/context_benchmark.cpp.
//
// Times Node's AsyncLocalStorage (node:async_hooks) on the nearest
// equivalents of the operations the ctxexec core benchmarks measure, so that
// scripts/bench.sh can print them side by side (benchmarks/peers/table.py).
// Prints one JSON object:
//
//   {"runtime": "Node v20.x", "ops": {"get_8": <ns/op>, ...}, "notes": {...}}
//
// Method: each operation runs in --processes fresh node processes (the
// script re-runs itself with --only OP), so that JIT feedback of shared
// internals (runInAsyncScope, getStore), heap state and enabled instances
// cannot leak between operations; in one shared process some results were
// bimodal (9 vs 100 ns). In a process the operation has its own loop
// function whose results feed a returned sink, so nothing is dead code; the
// loop count is calibrated to about --target-ms per run (which also warms up
// the JIT), then recalibrated on the optimized code after a warm-up run at
// that size, then --repeats timed runs with process.hrtime.bigint(). The reported ns/op is the MEDIAN of the process
// medians (each process's value is kept under "per_process"). Nothing is
// subtracted (an optimized JS counting loop costs well under 1 ns a turn).
//
// Mapping (a ContextVar is taken to be one AsyncLocalStorage instance, "N
// vars set" = N instances entered with enterWith() in the current async
// resource; every scenario runs inside its own new AsyncResource so that
// stores do not leak between scenarios, and disables its instances after):
//   get_N                als.getStore() with N instances entered; als is
//                        instance N >> 1 (the C++ file measures var N / 2)
//   get_rotating_1000    getStore() on each of the 1000 instances in turn
//   get_missing_default  als.getStore() ?? 7 on an enabled instance that was
//                        never entered here (ALS has no defaults); 8 entered
//   value_or             als.getStore() ?? 0 on an entered instance
//   set_reset_N          old = als.getStore(); als.enterWith(42);
//                        als.enterWith(old) (ALS has no token/reset; this is
//                        the set-then-restore pair), N instances entered
//   copy_context         new AsyncResource() with 8 instances entered: a new
//                        resource captures every store (ALS propagates them
//                        in its init hook), like copy_context(); dropped at
//                        once. This is the capture that the official
//                        AsyncLocalStorage.snapshot() does, without the
//                        wrapper function snapshot() builds around it (which
//                        costs microseconds in Node 20, see
//                        copy_context_snapshot_api)
//   run_noop             captured.runInAsyncScope(noop), captured being such
//                        an AsyncResource: runs noop in the captured context,
//                        i.e. ctx.run(noop)
//   copy_context_snapshot_api, run_noop_snapshot_api
//                        the same through the public snapshot API:
//                        AsyncLocalStorage.snapshot() and snap(noop)
//                        (information only)
//   scoped_set           als.run(42, noop): the value is set for the call and
//                        restored after it, i.e. a scoped_set guard around a
//                        call
//   als_run_noop         same operation as scoped_set, under the name the
//                        API uses (information only)
//   call_noop            noop() alone (information only)
'use strict';

const {AsyncLocalStorage, AsyncResource} = require('node:async_hooks');
const {execFileSync} = require('node:child_process');

function parseArgs(argv) {
  const opts =
      {repeats: 5, processes: 5, targetMs: 40, output: null, only: null};
  for (let i = 2; i < argv.length; ++i) {
    const [key, inlineValue] = argv[i].split('=', 2);
    const value = () => (inlineValue !== undefined ? inlineValue : argv[++i]);
    if (key === '--repeats') {
      opts.repeats = Number(value());
    } else if (key === '--target-ms') {
      opts.targetMs = Number(value());
    } else if (key === '--output') {
      opts.output = value();
    } else if (key === '--processes') {
      opts.processes = Number(value());
    } else if (key === '--only') {
      opts.only = value();
    } else {
      process.stderr.write(
          'usage: als_peer.js [--repeats N] [--processes N] ' +
          '[--target-ms MS] [--output F] [--only OP]\n');
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv);

let globalSink = 0;

// loop(n) runs the operation n times and returns a number (the sink).
function timeLoop(loop) {
  const targetNs = opts.targetMs * 1e6;
  let n = 1;
  let elapsed = 0;
  for (;;) {
    const start = process.hrtime.bigint();
    globalSink += loop(n);
    elapsed = Number(process.hrtime.bigint() - start);
    if (elapsed >= targetNs / 8 || n >= 2 ** 30) break;
    n *= 2;
  }
  n = Math.max(1, Math.floor(n * targetNs / Math.max(elapsed, 1)));
  // The doubling ran mostly before the JIT had optimized the loop, so warm
  // up at that size, then calibrate again on the optimized code.
  globalSink += loop(n);
  {
    const start = process.hrtime.bigint();
    globalSink += loop(n);
    elapsed = Number(process.hrtime.bigint() - start);
  }
  n = Math.max(1, Math.floor(n * targetNs / Math.max(elapsed, 1)));
  const samples = [];
  for (let r = 0; r < opts.repeats; ++r) {
    const start = process.hrtime.bigint();
    globalSink += loop(n);
    samples.push(Number(process.hrtime.bigint() - start) / n);
  }
  return median(samples);
}

function noop() {}

// Runs fn(storages) in a new async resource after entering `count` new ALS
// instances (instance i holds the store i), then disables them.
function inFreshScope(count, fn) {
  const storages = [];
  for (let i = 0; i < count; ++i) storages.push(new AsyncLocalStorage());
  const resource = new AsyncResource('ctxexec-bench');
  try {
    return resource.runInAsyncScope(() => {
      for (let i = 0; i < count; ++i) storages[i].enterWith(i);
      return fn(storages);
    });
  } finally {
    for (const storage of storages) storage.disable();
  }
}

// Each scenario returns the median ns/op. They are registered by name and,
// unless --only is given, each runs in its own fresh node process, so that
// JIT feedback (inline caches of shared internals such as runInAsyncScope),
// heap state and enabled ALS instances cannot leak from one to the next;
// running them all in one process made some results bimodal (9 vs 100 ns).
const scenarios = new Map();

for (const count of [1, 8, 1000]) {
  scenarios.set(`get_${count}`, () => inFreshScope(count, (storages) => {
    const als = storages[count >> 1];
    return timeLoop((n) => {
      let sink = 0;
      for (let i = 0; i < n; ++i) sink += als.getStore();
      return sink;
    });
  }));
  scenarios.set(`set_reset_${count}`, () => inFreshScope(count, (storages) => {
    const als = storages[count >> 1];
    return timeLoop((n) => {
      for (let i = 0; i < n; ++i) {
        const old = als.getStore();
        als.enterWith(42);
        als.enterWith(old);
      }
      return als.getStore();
    });
  }));
}

// get() on each of the 1000 instances in turn (the index wraps, as in
// BM_GetRotating).
scenarios.set('get_rotating_1000', () => inFreshScope(1000, (storages) => {
  return timeLoop((n) => {
    let sink = 0;
    let j = 0;
    for (let i = 0; i < n; ++i) {
      sink += storages[j].getStore();
      if (++j === 1000) j = 0;
    }
    return sink;
  });
}));

scenarios.set('get_missing_default', () => inFreshScope(8, () => {
  const missing = new AsyncLocalStorage();
  missing.run(1, noop);  // enables the instance without entering it here
  const value = timeLoop((n) => {
    let sink = 0;
    for (let i = 0; i < n; ++i) sink += missing.getStore() ?? 7;
    return sink;
  });
  missing.disable();
  return value;
}));

scenarios.set('value_or', () => inFreshScope(8, (storages) => {
  const als = storages[4];
  return timeLoop((n) => {
    let sink = 0;
    for (let i = 0; i < n; ++i) sink += als.getStore() ?? 0;
    return sink;
  });
}));

scenarios.set('copy_context', () => inFreshScope(8, () => timeLoop((n) => {
  let sink = 0;
  for (let i = 0; i < n; ++i) {
    const captured = new AsyncResource('ctxexec-bench-copy');
    sink += captured.asyncId() > 0 ? 1 : 0;
  }
  return sink;
})));

scenarios.set('copy_context_snapshot_api', () => inFreshScope(8, () => {
  return timeLoop((n) => {
    let sink = 0;
    for (let i = 0; i < n; ++i) {
      const snap = AsyncLocalStorage.snapshot();
      if (typeof snap === 'function') ++sink;
    }
    return sink;
  });
}));

scenarios.set('run_noop', () => inFreshScope(8, () => {
  const captured = new AsyncResource('ctxexec-bench-run');
  return timeLoop((n) => {
    let sink = 0;
    for (let i = 0; i < n; ++i) {
      captured.runInAsyncScope(noop);
      ++sink;
    }
    return sink;
  });
}));

scenarios.set('run_noop_snapshot_api', () => inFreshScope(8, () => {
  const snap = AsyncLocalStorage.snapshot();
  return timeLoop((n) => {
    let sink = 0;
    for (let i = 0; i < n; ++i) {
      snap(noop);
      ++sink;
    }
    return sink;
  });
}));

scenarios.set('scoped_set', () => inFreshScope(8, (storages) => {
  const als = storages[4];
  return timeLoop((n) => {
    let sink = 0;
    for (let i = 0; i < n; ++i) {
      als.run(42, noop);
      ++sink;
    }
    return sink;
  });
}));

scenarios.set('call_noop', () => timeLoop((n) => {
  let sink = 0;
  for (let i = 0; i < n; ++i) {
    noop();
    ++sink;
  }
  return sink;
}));

if (opts.only !== null) {
  const scenario = scenarios.get(opts.only);
  if (scenario === undefined) {
    process.stderr.write(`als_peer.js: unknown operation ${opts.only}\n`);
    process.exit(2);
  }
  const ns = scenario();
  process.stdout.write(JSON.stringify({ns, sink: globalSink}) + '\n');
  process.exit(0);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const raw = {};
const perProcess = {};
for (const name of scenarios.keys()) {
  perProcess[name] = [];
  for (let p = 0; p < opts.processes; ++p) {
    const out = execFileSync(process.execPath, [
      __filename, '--only', name, '--repeats', String(opts.repeats),
      '--target-ms', String(opts.targetMs)
    ], {encoding: 'utf8'});
    perProcess[name].push(Math.round(JSON.parse(out).ns * 100) / 100);
  }
  raw[name] = median(perProcess[name]);
}
raw.als_run_noop = raw.scoped_set;

const ops = {};
for (const [key, value] of Object.entries(raw)) {
  ops[key] = Math.round(value * 100) / 100;
}

const result = {
  runtime: `Node ${process.version}`,
  ops,
  per_process: perProcess,
  method: `${opts.processes} fresh node processes per operation, each the ` +
      `median of ${opts.repeats} runs of ~${opts.targetMs} ms; the median ` +
      'of the process medians is reported (per-process values under ' +
      '"per_process"); ' +
      'process.hrtime.bigint(), JIT warmed up and the loop recalibrated ' +
      'before timing, results fed to a sink; nothing subtracted',
  notes: {
    mapping: 'one ContextVar = one AsyncLocalStorage instance; N vars set = ' +
        'N instances entered (enterWith) in a fresh AsyncResource',
    get_N: 'als.getStore(), N instances entered, als = instance N>>1',
    get_rotating_1000: 'getStore() on each of 1000 entered instances in turn',
    get_missing_default: 'als.getStore() ?? 7, als enabled but not entered ' +
        '(ALS has no defaults), 8 others entered',
    value_or: 'als.getStore() ?? 0 on an entered instance, 8 entered',
    set_reset_N: 'old = als.getStore(); als.enterWith(42); ' +
        'als.enterWith(old) (ALS has no token/reset)',
    copy_context: 'new AsyncResource() with 8 instances entered (its init ' +
        'hook captures all stores; what AsyncLocalStorage.snapshot() does ' +
        'without its wrapper); dropped at once',
    copy_context_snapshot_api: 'AsyncLocalStorage.snapshot() itself ' +
        '(information only; the wrapper costs microseconds in Node 20)',
    run_noop: 'captured.runInAsyncScope(noop) on such a resource: runs in ' +
        'the captured context like ctx.run(noop)',
    run_noop_snapshot_api: 'snap(noop), snap = AsyncLocalStorage.snapshot() ' +
        '(information only)',
    scoped_set: 'als.run(42, noop): set for the call, restored after it',
    als_run_noop: 'als.run(store, noop), the same measurement as scoped_set',
    call_noop: 'noop() alone (information only)',
  },
};

const text = JSON.stringify(result, null, 2);
if (opts.output) require('node:fs').writeFileSync(opts.output, text + '\n');
process.stdout.write(text + '\n');
