'use strict';

// A real jam-balancer process for the Node client's tests: started on a free
// loopback port (read from its start-up log line), killed by its PID.
//
// The binary is $JAM_BALANCER (ctest sets it), else the repository's
// build/server/jam-balancer.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');
const BINARY = process.env.JAM_BALANCER ||
    path.join(REPO, 'build', 'server', 'jam-balancer');

// How long a balancer may take to log its port, and a killed one to exit.
const START_TIMEOUT_MS = 10000;
const EXIT_TIMEOUT_MS = 10000;

// Flags of every test balancer: loopback, no metrics listener, no resync
// window (a test that restarts the balancer expects its jams open at once).
const BASE_FLAGS = ['--metrics_listen=', '--resync_grace=0s'];

// The start-up line, e.g. "... INFO jam-balancer started ... port=40123 ...".
const STARTED_LINE = /jam-balancer started.*\bport=(\d+)\b/;

// Every balancer still running, killed when this process exits whatever
// happens (a test runner that gives up on the file, or a signal, included).
const running = new Set();
process.on('exit', () => {
  for (const balancer of running) balancer.killNow();
});
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(signal, () => process.exit(128 + number));
}

class Balancer {
  // Use Balancer.start().
  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    this.port = 0;
    this.stderr = '';
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        running.delete(this);
        resolve({code, signal});
      });
    });
    this.exitedAlready = false;
    this.exited.then(() => {
      this.exitedAlready = true;
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      this.stderr += chunk;
    });
    // A balancer a failed test left running must not keep this process
    // alive (the exit hook kills it); waits on it hold timers of their own.
    child.unref();
    child.stderr.unref();
    running.add(this);
  }

  // Starts a balancer with `flags` on 127.0.0.1:`port` (0: a free port) and
  // resolves once it logged its port. Rejects (with its stderr) if it exits
  // first or does not log within START_TIMEOUT_MS.
  static async start({port = 0, flags = []} = {}) {
    if (!fs.existsSync(BINARY)) {
      throw new Error(`no jam-balancer binary at ${BINARY}; set JAM_BALANCER`);
    }
    const child = spawn(
        BINARY, [`--listen=127.0.0.1:${port}`, ...BASE_FLAGS, ...flags],
        {stdio: ['ignore', 'ignore', 'pipe']});
    const balancer = new Balancer(child);
    await balancer.#waitForPort();
    return balancer;
  }

  // Starts a balancer on `port` again, retrying while the port is briefly
  // unavailable after the previous process died.
  static async restart(port, {flags = []} = {}) {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        return await Balancer.start({port, flags});
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  get target() {
    return `127.0.0.1:${this.port}`;
  }

  #waitForPort() {
    return new Promise((resolve, reject) => {
      let timer = null;
      let settled = false;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.child.stderr.off('data', look);
        if (error) {
          this.killNow();
          reject(error);
        } else {
          resolve();
        }
      };
      const look = () => {
        const match = STARTED_LINE.exec(this.stderr);
        if (match) {
          this.port = Number(match[1]);
          finish(null);
        }
      };
      timer = setTimeout(() => finish(new Error(
          `jam-balancer logged no port within ${START_TIMEOUT_MS} ms; ` +
          `stderr:\n${this.stderr}`)), START_TIMEOUT_MS);
      this.child.stderr.on('data', look);
      this.exited.then(({code, signal}) => finish(new Error(
          `jam-balancer exited (${code ?? signal}) before logging its port; ` +
          `stderr:\n${this.stderr}`)));
      look();
    });
  }

  // SIGKILL at once (kill -9), without waiting.
  killNow() {
    if (this.exitedAlready) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  // kill -9, and resolves once the process is gone.
  async kill() {
    this.killNow();
    await this.#waitForExit();
  }

  // SIGTERM (a graceful shutdown), and resolves to {code, signal} once the
  // process is gone; kill -9 if it is still there after EXIT_TIMEOUT_MS.
  async terminate() {
    if (!this.exitedAlready) {
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    try {
      return await this.#waitForExit();
    } catch (error) {
      this.killNow();
      throw error;
    }
  }

  async #waitForExit() {
    let timer = null;
    try {
      return await Promise.race([
        this.exited,
        new Promise((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(
              `jam-balancer ${this.pid} did not exit`)), EXIT_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

// Resolves once `predicate()` (maybe async) is truthy; rejects with
// `what` after `timeoutMs`.
async function waitFor(what, predicate, timeoutMs = 15000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { Balancer, waitFor, sleep };
