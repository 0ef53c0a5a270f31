'use strict';

// Helpers of the browser test: child processes started and stopped by PID,
// with their output kept in files, and bounded waits.

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

// The child processes one test started. Each one's stdout and stderr go to
// DIR/NAME.log (a restarted name appends), and are scanned for lines the
// test waits for.
class Processes {
  constructor(logDir) {
    this._logDir = logDir;
    // name -> {child, exited: Promise<{code, signal}>, lines: [], waiters}
    this._running = new Map();
  }

  // Starts `command args` as `name` and waits (at most `timeoutMs`) for a
  // line of its stdout or stderr that matches `ready`. Resolves to the
  // match. Rejects (the process left running, for stopAll) if the line does
  // not come, or the process exits first.
  async start(name, command, args, {ready, timeoutMs = 10000, env} = {}) {
    if (this._running.has(name)) throw new Error(`${name} is running already`);
    const log = fs.openSync(path.join(this._logDir, `${name}.log`), 'a');
    fs.writeSync(log, `# ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {...process.env, ...env},
    });
    const entry = {child, lines: [], waiters: new Set()};
    entry.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        fs.closeSync(log);
        for (const waiter of entry.waiters) waiter.exited(code, signal);
        resolve({code, signal});
      });
    });
    this._running.set(name, entry);
    child.once('error', (err) => fs.writeSync(log, `# spawn error: ${err.message}\n`));
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        fs.writeSync(log, chunk);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop();
        for (const line of lines) {
          entry.lines.push(line);
          for (const waiter of entry.waiters) waiter.line(line);
        }
      });
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        line: (line) => {
          const match = ready.exec(line);
          if (match) finish(null, match);
        },
        exited: (code, signal) => finish(new Error(
            `${name} exited (code ${code}, signal ${signal}) before printing ` +
            `${ready}; see ${name}.log`)),
      };
      const timer = setTimeout(() => finish(new Error(
          `${name} printed no ${ready} within ${timeoutMs} ms; see ${name}.log`)),
          timeoutMs);
      const finish = (error, match) => {
        clearTimeout(timer);
        entry.waiters.delete(waiter);
        if (error) reject(error); else resolve(match);
      };
      entry.waiters.add(waiter);
      for (const line of entry.lines) waiter.line(line);
    });
  }

  pid(name) {
    return this._running.get(name)?.child.pid;
  }

  // Sends `signal` to `name` by its PID and waits (at most `timeoutMs`) for
  // it to exit. Resolves to {code, signal}.
  async stop(name, signal = 'SIGTERM', timeoutMs = 10000) {
    const entry = this._running.get(name);
    if (!entry) throw new Error(`${name} is not running`);
    if (entry.child.exitCode === null && entry.child.signalCode === null) {
      process.kill(entry.child.pid, signal);
    }
    const exit = await withTimeout(
        entry.exited, timeoutMs, `${name} did not exit within ${timeoutMs} ms of ${signal}`);
    this._running.delete(name);
    return exit;
  }

  // Stops every process still running: SIGTERM, then SIGKILL after
  // `graceMs`. Never rejects.
  async stopAll(graceMs = 5000) {
    await Promise.all([...this._running.keys()].map(async (name) => {
      try {
        await this.stop(name, 'SIGTERM', graceMs);
      } catch {
        await this.stop(name, 'SIGKILL', graceMs).catch(() => {});
      }
    }));
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Rejects with `message` if `promise` has not settled within `ms`.
function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Calls `check()` every `intervalMs` until it returns {ok: true, ...};
// resolves to that result with `ms`, the time it took. Rejects after
// `timeoutMs` with `what` and the last result's `detail`.
async function waitFor(what, check, {timeoutMs = 10000, intervalMs = 50} = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      last = await check();
    } catch (err) {
      last = {ok: false, detail: `threw ${err.message}`};
    }
    if (last.ok) return {...last, ms: Date.now() - start};
    if (Date.now() - start >= timeoutMs) {
      throw new Error(`${what}: not within ${timeoutMs} ms; last: ${last.detail ?? ''}`);
    }
    await sleep(intervalMs);
  }
}

module.exports = { Processes, sleep, waitFor, withTimeout };
