'use strict';

// Three real etcd members on loopback for the Node client's tests of
// replicated balancers, like tests/system/etcd_cluster.py: ports asked of the
// OS, data in a temporary folder, etcd's fast timings (--heartbeat-interval
// 50 --election-timeout 500) so that a 1 s election lease works. Every member
// is killed by the PID started here: by stop(), and when this process exits
// whatever happens.

const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

// How long the members may take to form a healthy cluster, and a killed one
// to exit.
const HEALTHY_TIMEOUT_MS = 20000;
const EXIT_TIMEOUT_MS = 10000;

// Every member still running, killed when this process exits, and the data
// folders of clusters not stopped, removed then.
const running = new Set();
const folders = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of folders) fs.rmSync(dir, {recursive: true, force: true});
});

function binary(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter).concat('/usr/bin')) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  throw new Error(`${name} not found: install the Debian packages ` +
      'etcd-server and etcd-client (tools/install-deps.sh does)');
}

// `count` distinct loopback ports that were free a moment ago.
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; ++i) {
      const server = net.createServer();
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      servers.push(server);
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map(
        (server) => new Promise((resolve) => server.close(resolve))));
  }
}

class EtcdCluster {
  // Use EtcdCluster.start().
  constructor() {
    this.etcd = binary('etcd');
    this.etcdctl = binary('etcdctl');
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jam-node-etcd-'));
    folders.add(this.dir);
    this.children = [];
  }

  // Starts `members` members and resolves once they form a healthy cluster.
  // On failure everything started is stopped and the error names the logs.
  static async start(members = 3) {
    const cluster = new EtcdCluster();
    try {
      const ports = await freePorts(2 * members);
      cluster.clientPorts = ports.slice(0, members);
      cluster.peerPorts = ports.slice(members);
      const names = cluster.clientPorts.map((_, i) => `m${i}`);
      const initialCluster = names
          .map((name, i) => `${name}=http://127.0.0.1:${cluster.peerPorts[i]}`)
          .join(',');
      for (let i = 0; i < members; ++i) {
        const client = `http://127.0.0.1:${cluster.clientPorts[i]}`;
        const peer = `http://127.0.0.1:${cluster.peerPorts[i]}`;
        const log = fs.openSync(path.join(cluster.dir, `${names[i]}.log`), 'a');
        const child = spawn(cluster.etcd, [
          '--name', names[i], '--data-dir', path.join(cluster.dir, names[i]),
          '--listen-client-urls', client, '--advertise-client-urls', client,
          '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
          '--initial-cluster', initialCluster,
          '--initial-cluster-state', 'new',
          '--initial-cluster-token', path.basename(cluster.dir),
          '--heartbeat-interval', '50', '--election-timeout', '500',
        ], {stdio: ['ignore', log, log]});
        fs.closeSync(log);
        child.exited = new Promise((resolve) => child.once('exit', () => {
          running.delete(child);
          resolve();
        }));
        // A member a failed test left running must not keep this process
        // alive (the exit hook kills it).
        child.unref();
        running.add(child);
        cluster.children.push(child);
      }
      await cluster.#waitHealthy();
      return cluster;
    } catch (error) {
      await cluster.stop({keepDir: true});
      folders.delete(cluster.dir);  // Kept: its logs say why.
      error.message += ` (etcd logs in ${cluster.dir})`;
      throw error;
    }
  }

  // "127.0.0.1:P,..." for --etcd_endpoints.
  get endpoints() {
    return this.clientPorts.map((port) => `127.0.0.1:${port}`).join(',');
  }

  async #waitHealthy() {
    const deadline = Date.now() + HEALTHY_TIMEOUT_MS;
    let last = '';
    for (;;) {
      for (const child of this.children) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`etcd member ${child.pid} exited at start`);
        }
      }
      last = await new Promise((resolve) => execFile(this.etcdctl, [
        `--endpoints=${this.endpoints}`, '--dial-timeout=2s',
        '--command-timeout=3s', 'endpoint', 'health',
      ], {env: {...process.env, ETCDCTL_API: '3'}, timeout: 10000},
      (error, stdout, stderr) => resolve(error ? `${stderr}`.trim() || String(error) : null)));
      if (last === null) return;
      if (Date.now() > deadline) {
        throw new Error(`etcd not healthy after ${HEALTHY_TIMEOUT_MS} ms: ${last}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  // kill -9 of every member (by its PID), waited for; then the data is
  // removed (unless keepDir).
  async stop({keepDir = false} = {}) {
    await Promise.all(this.children.map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      let timer = null;
      await Promise.race([
        child.exited,
        new Promise((resolve) => {
          timer = setTimeout(resolve, EXIT_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    }));
    if (!keepDir) {
      fs.rmSync(this.dir, {recursive: true, force: true});
      folders.delete(this.dir);
    }
  }
}

module.exports = { EtcdCluster };
