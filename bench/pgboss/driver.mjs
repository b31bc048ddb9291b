// pg-boss driver for the queues benchmark.
//
// Usage: node driver.mjs '<json spec>'
// The spec names one phase (see PHASES below), the DSN, the job count and the concurrency.
// The result is printed as one line "BENCH_RESULT {json}" on stdout; anything else is a log line.
// Every phase checks its own work before it reports a figure.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const spec = JSON.parse(process.argv[2]);
const require = createRequire(join(spec.node_dir, 'noop.js'));
const { PgBoss } = await import(pathToFileURL(require.resolve('pg-boss')).href);
const pg = require('pg');
const QUEUE = 'bench';
const POOL_SIZE = 10;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function emit(result) {
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
}

// Wall and CPU seconds of a timed part, as the Python drivers report them.
function clock() {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  return (n) => {
    const seconds = (performance.now() - wall0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { seconds, rate: n / seconds, cpu_s: (cpu.user + cpu.system) / 1e6 };
  };
}

function percentile(sorted, q) {
  if (!sorted.length) return NaN;
  const k = (sorted.length - 1) * q;
  const lo = Math.floor(k);
  const hi = Math.ceil(k);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

async function runLimited(n, concurrency, fn) {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
}

async function newBoss(extra = {}) {
  const boss = new PgBoss({
    connectionString: spec.dsn,
    max: POOL_SIZE,
    useListenNotify: true,
    monitorIntervalSeconds: 1,
    queueCacheIntervalSeconds: 1,
    ...extra,
  });
  boss.on('error', (err) => console.error('pg-boss error:', err.message ?? err));
  await boss.start();
  const existing = await boss.getQueue(QUEUE);
  if (!existing) {
    await boss.createQueue(QUEUE, { notify: true, deleteAfterSeconds: 1 });
  }
  return boss;
}

async function sql(text, values = []) {
  const client = new pg.Client({ connectionString: spec.dsn });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function countJobs(state) {
  const filter = state ? ' AND state = $2' : '';
  const values = state ? [QUEUE, state] : [QUEUE];
  const rows = await sql(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1${filter}`, values);
  return rows[0].n;
}

function checkIds(ids, n) {
  const valid = ids.filter((id) => typeof id === 'string' && id.length > 0);
  if (valid.length !== n) throw new Error(`expected ${n} ids, got ${valid.length}`);
  if (new Set(valid).size !== n) throw new Error('duplicate job ids');
}

async function checkQueued(n) {
  const queued = await countJobs('created');
  if (queued !== n) throw new Error(`expected ${n} queued jobs, found ${queued}`);
}

async function sendSerial() {
  const boss = await newBoss({ supervise: false });
  const ids = [];
  const done = clock();
  for (let i = 0; i < spec.n; i++) ids.push(await boss.send(QUEUE, { i }));
  const result = done(spec.n);
  await boss.stop({ graceful: false });
  checkIds(ids, spec.n);
  await checkQueued(spec.n);
  return result;
}

async function sendConcurrent() {
  const boss = await newBoss({ supervise: false });
  const ids = new Array(spec.n);
  const done = clock();
  await runLimited(spec.n, spec.concurrency, async (i) => {
    ids[i] = await boss.send(QUEUE, { i });
  });
  const result = done(spec.n);
  await boss.stop({ graceful: false });
  checkIds(ids, spec.n);
  await checkQueued(spec.n);
  return result;
}

async function insertAll(boss) {
  const jobs = Array.from({ length: spec.n }, (_, i) => ({ data: { i } }));
  return boss.insert(QUEUE, jobs);
}

async function sendBatch() {
  const boss = await newBoss({ supervise: false });
  const done = clock();
  await insertAll(boss);
  const result = done(spec.n);
  await boss.stop({ graceful: false });
  await checkQueued(spec.n);
  return result;
}

async function seed() {
  const boss = await newBoss({ supervise: false });
  await insertAll(boss);
  await boss.stop({ graceful: false });
  await checkQueued(spec.n);
  return {};
}

async function waitCompleted(n, deadline) {
  const client = new pg.Client({ connectionString: spec.dsn });
  await client.connect();
  // Every handler has run; a completion that makes no progress for STALL_MS is lost (e.g. the
  // server restarted under it), so fail then rather than at the deadline.
  const STALL_MS = 30000;
  let last = -1;
  let lastChange = performance.now();
  try {
    for (;;) {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'",
        [QUEUE],
      );
      const now = performance.now();
      if (rows[0].n >= n) return;
      if (rows[0].n !== last) {
        last = rows[0].n;
        lastChange = now;
      }
      if (now > deadline || now - lastChange > STALL_MS) {
        throw new Error(`only ${rows[0].n}/${n} jobs completed`);
      }
      await sleep(2);
    }
  } finally {
    await client.end();
  }
}

// pg-boss workers with batchSize 1 fetch back to back only in burst mode, which reads the queue's
// ready count from a stats cache that lags about ten seconds; without it each worker fetches once
// per polling interval (0.5 s at least). This waits, untimed, until the cache sees the backlog,
// so pg-boss is measured at its best.
async function waitReadyCount(boss, n) {
  const deadline = performance.now() + 30000;
  while (performance.now() < deadline) {
    await boss.supervise(QUEUE);
    const queue = await boss.getQueue(QUEUE);
    if ((queue?.readyCount ?? 0) >= n) break;
    await sleep(500);
  }
  await sleep(1100); // one queue cache refresh
}

// (d): spec.batch_size 1 is one handler call per job; larger sizes are pg-boss batch handlers
// (one call per batch), reported apart.
async function work() {
  const n = spec.n;
  const batchSize = spec.batch_size ?? 1;
  const counts = new Uint32Array(n);
  let handled = 0;
  let calls = 0;
  let allHandled;
  const handledAll = new Promise((resolve) => {
    allHandled = resolve;
  });
  const boss = await newBoss();
  await waitReadyCount(boss, n);
  const options = {
    batchSize,
    localConcurrency: spec.concurrency,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
    ...(batchSize > 1 ? { burstWhenBatchFull: true } : { burstWhenReadyExceeds: 1 }),
  };
  const deadline = performance.now() + spec.timeout_s * 1000;
  const done = clock();
  await boss.work(QUEUE, options, async (jobs) => {
    calls += 1;
    for (const job of jobs) {
      counts[job.data.i] += 1;
      handled += 1;
    }
    if (handled >= n) allHandled();
  });
  await waitHandled(() => handled, n, handledAll, spec.timeout_s * 1000, 60000);
  await waitCompleted(n, deadline);
  const result = done(n);
  await boss.offWork(QUEUE);
  await boss.stop({ graceful: true, timeout: 5000 });
  const twice = counts.filter((c) => c > 1).length;
  const missing = counts.filter((c) => c === 0).length;
  if (twice || missing) throw new Error(`${missing} jobs never handled, ${twice} handled twice`);
  const completed = await countJobs('completed');
  if (completed !== n) throw new Error(`expected ${n} completed jobs, found ${completed}`);
  return { ...result, handler_calls: calls, batch_size: batchSize };
}

// Until every job was handled; gives up at the deadline or once nothing was handled for stallMs
// (a worker that lost its connection never finishes). The checks that follow then fail.
async function waitHandled(getHandled, n, handledAll, timeoutMs, stallMs) {
  const start = performance.now();
  let last = -1;
  let lastChange = start;
  let finished = false;
  handledAll.then(() => {
    finished = true;
  });
  while (!finished) {
    const now = performance.now();
    if (getHandled() !== last) {
      last = getHandled();
      lastChange = now;
    }
    if (now - start > timeoutMs || now - lastChange > stallMs) return;
    await Promise.race([handledAll, sleep(1000)]);
  }
}

async function latency() {
  const n = spec.n;
  const sent = new Float64Array(n);
  const started = new Float64Array(n);
  const counts = new Uint32Array(n);
  let handled = 0;
  let allHandled;
  const handledAll = new Promise((resolve) => {
    allHandled = resolve;
  });
  const boss = await newBoss();
  // NOTIFY wakes the workers; the 0.5 s polls (pg-boss's minimum) are the backstop for a
  // notification that arrives while a worker is busy.
  const options = {
    batchSize: 1,
    localConcurrency: spec.concurrency,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
  };
  await boss.work(QUEUE, options, async (jobs) => {
    const now = performance.now();
    for (const job of jobs) {
      started[job.data.i] = now;
      counts[job.data.i] += 1;
      handled += 1;
    }
    if (handled >= n) allHandled();
  });
  await sleep(1000); // let the worker go idle
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const target = t0 + i * spec.interval_ms;
    const wait = target - performance.now();
    if (wait > 0) await sleep(wait);
    sent[i] = performance.now();
    await boss.send(QUEUE, { i });
  }
  const timer = setTimeout(allHandled, spec.timeout_s * 1000);
  await handledAll;
  clearTimeout(timer);
  await boss.offWork(QUEUE);
  await boss.stop({ graceful: true, timeout: 5000 });
  if (counts.some((c) => c !== 1)) throw new Error('a job was not handled exactly once');
  const lat = Array.from(sent, (s, i) => started[i] - s).sort((a, b) => a - b);
  return {
    p50_ms: percentile(lat, 0.5),
    p95_ms: percentile(lat, 0.95),
    max_ms: lat[lat.length - 1],
    samples: n,
  };
}

// Retention: jobs are created with deleteAfterSeconds 1; one supervise pass deletes them.
async function cleanup() {
  const boss = await newBoss({ supervise: false, maintenanceIntervalSeconds: 1 });
  const deadline = performance.now() + 30000;
  let left = await countJobs('completed');
  while (left > 0 && performance.now() < deadline) {
    await sleep(1100);
    await boss.supervise(QUEUE);
    left = await countJobs('completed');
  }
  await boss.stop({ graceful: false });
  return { finished_rows_left: left };
}

async function version() {
  const pkg = require('pg-boss/package.json');
  return { version: pkg.version, node: process.version };
}

const PHASES = {
  send_serial: sendSerial,
  send_concurrent: sendConcurrent,
  send_batch: sendBatch,
  seed,
  work,
  latency,
  cleanup,
  version,
};

try {
  const phase = PHASES[spec.phase];
  if (!phase) throw new Error(`unknown phase ${spec.phase}`);
  emit({ ok: true, ...(await phase()) });
  process.exit(0);
} catch (err) {
  emit({ ok: false, error: String(err?.stack ?? err) });
  process.exit(1);
}
