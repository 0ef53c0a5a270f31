'use strict';

// BalancerClient's tls option against a real jam-balancer with mutual TLS
// (--tls_cert, --tls_key, --tls_client_ca), certificates made by openssl at
// test time (tests/system/certs.py): with the right certificate it is
// answered (files or Buffers), without one, with another CA's, or in
// plaintext it is refused; bad options throw naming the field.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test, before, after } = require('node:test');

const { BalancerClient, status } = require('../../../client/node');
const { Balancer } = require('./balancer_process');

const CERTS_SCRIPT = path.resolve(__dirname, '..', '..', 'system', 'certs.py');
// A refused client gives up after this (its calls fail UNAVAILABLE).
const REFUSED_DEADLINE_MS = 2000;

let dir;
let balancer;
const file = (name) => path.join(dir, name);
const clients = [];
const connect = (options) => {
  const client = new BalancerClient({target: balancer.target, ...options});
  clients.push(client);
  return client;
};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jam-node-tls-'));
  execFileSync('/usr/bin/python3', [CERTS_SCRIPT, dir], {timeout: 30000, stdio: 'pipe'});
  balancer = await Balancer.start({
    flags: [
      `--tls_cert=${file('server.crt')}`,
      `--tls_key=${file('server.key')}`,
      `--tls_client_ca=${file('ca.crt')}`,
    ],
  });
});

after(async () => {
  for (const client of clients) client.close();
  if (balancer) await balancer.kill();
  if (dir) fs.rmSync(dir, {recursive: true, force: true});
});

test('mutual TLS with certificate files: answered', async () => {
  const client = connect({tls: {ca: file('ca.crt'), cert: file('client.crt'), key: file('client.key')}});
  assert.equal((await client.getStats()).maxUsers, 7);
  assert.equal((await client.currentJam('ann')).newJam, true);
});

test('mutual TLS with Buffers, by host name: answered', async () => {
  const client = new BalancerClient({
    target: `localhost:${balancer.port}`,
    tls: {
      ca: fs.readFileSync(file('ca.crt')),
      cert: fs.readFileSync(file('client.crt')),
      key: fs.readFileSync(file('client.key')),
    },
  });
  clients.push(client);
  assert.equal((await client.getStats()).maxUsers, 7);
});

test('without a client certificate, with another CA\'s, or in plaintext: refused', async () => {
  const cases = {
    'no certificate': {tls: {ca: file('ca.crt')}},
    'another CA': {tls: {ca: file('ca.crt'), cert: file('other-client.crt'), key: file('other-client.key')}},
    'plaintext': {},
    'server not trusted': {tls: {ca: file('other-ca.crt'), cert: file('client.crt'), key: file('client.key')}},
  };
  for (const [name, options] of Object.entries(cases)) {
    const client = connect({...options, deadlineMs: REFUSED_DEADLINE_MS});
    await assert.rejects(client.getStats(), (error) => {
      assert.equal(error.code, status.UNAVAILABLE, `${name}: ${error}`);
      return true;
    }, name);
  }
});

test('bad tls options throw, naming the field', () => {
  const target = balancer.target;
  assert.throws(() => new BalancerClient({target, tls: {ca: file('missing.crt')}}),
      /tls\.ca: cannot read .*missing\.crt/);
  assert.throws(() => new BalancerClient({target, tls: {ca: file('ca.srl')}}),
      /tls\.ca: .*ca\.srl is not PEM/);
  assert.throws(() => new BalancerClient({target, tls: {ca: file('ca.crt'), cert: file('client.crt')}}),
      /tls\.cert and tls\.key go together/);
  assert.throws(() => new BalancerClient({target, tls: {cacert: file('ca.crt')}}),
      /unknown tls field cacert/);
  assert.throws(() => new BalancerClient({target, tls: {ca: 42}}),
      /tls\.ca must be a file path or a Buffer/);
});
