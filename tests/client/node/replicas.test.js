'use strict';

// BalancerClient's failover rules, against in-process gRPC servers (grpc-js)
// that answer the balancer's service as a test scripts them, with the
// trailing metadata of a replicated balancer (jam-balancer-epoch,
// jam-balancer-leader): a named leader is called at once, other refusals
// move on with backoff within the deadline, an answer of a lower epoch is
// never resolved, other errors are answers, and one target makes one call.
// ha.test.js runs the real thing (etcd and jam-balancer replicas).

const assert = require('node:assert/strict');
const { test, after } = require('node:test');

const grpc = require('../../../client/node/node_modules/@grpc/grpc-js');
const { BalancerClient, status } = require('../../../client/node');
const { loadService } = require('../../../client/node/lib/service');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'unhandled promise rejections'));

// The trailing metadata of a replica's answer.
function trailers({epoch, leader} = {}) {
  const metadata = new grpc.Metadata();
  if (epoch !== undefined) metadata.set('jam-balancer-epoch', String(epoch));
  if (leader !== undefined) metadata.set('jam-balancer-leader', leader);
  return metadata;
}

// A scripted replica on a free loopback port. `script(method, request)`
// returns what to answer: {error: {code, details}, epoch, leader} or
// {response, epoch}. Calls are recorded in `calls` ([method, request]).
class FakeReplica {
  constructor(script) {
    this.script = script;
    this.calls = [];
    this.server = new grpc.Server();
    const unary = (method) => (call, callback) => {
      this.calls.push([method, call.request]);
      this.#answer(method, call.request, callback);
    };
    this.server.addService(loadService().service, {
      GetStats: unary('GetStats'),
      AddUser: unary('AddUser'),
      ListJams: unary('ListJams'),
      Sync: (call, callback) => {
        const messages = [];
        call.on('data', (message) => messages.push(message));
        call.on('end', () => {
          this.calls.push(['Sync', messages]);
          this.#answer('Sync', messages, callback);
        });
      },
    });
  }

  #answer(method, request, callback) {
    const {error, response = {}, epoch, leader} = this.script(method, request);
    const metadata = trailers({epoch, leader});
    if (error) {
      callback({...error, metadata});
    } else {
      callback(null, response, metadata);
    }
  }

  async start() {
    this.port = await new Promise((resolve, reject) => this.server.bindAsync(
        '127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
        (error, port) => (error ? reject(error) : resolve(port))));
    return this;
  }

  get target() {
    return `127.0.0.1:${this.port}`;
  }

  count(method) {
    return this.calls.filter(([m]) => m === method).length;
  }

  stop() {
    this.server.forceShutdown();
  }
}

const REFUSED = {code: status.UNAVAILABLE, details: 'this replica is not the leader'};

// Runs `body(replicas, connect)` with replicas scripted by `scripts`; they
// are stopped and the clients closed afterwards.
async function withReplicas(scripts, body) {
  const replicas = [];
  const clients = [];
  try {
    for (const script of scripts) replicas.push(await new FakeReplica(script).start());
    const connect = (options) => {
      const client = new BalancerClient(options);
      clients.push(client);
      return client;
    };
    return await body(replicas, connect);
  } finally {
    for (const client of clients) client.close();
    for (const replica of replicas) replica.stop();
  }
}

test('a refusal naming the leader sends the call there at once', async () => {
  let leaderTarget = '';
  await withReplicas([
    () => ({error: REFUSED, epoch: 4, leader: leaderTarget}),
    () => ({error: REFUSED, epoch: 4}),
    () => ({response: {jamCount: 42}, epoch: 4}),
  ], async ([standby, other, leader], connect) => {
    leaderTarget = leader.target;
    // The leader is not among the targets: learned from the metadata.
    const client = connect({targets: [standby.target, other.target]});
    assert.equal(client.currentTarget, standby.target);
    assert.equal((await client.getStats()).jamCount, 42);
    assert.equal(client.currentTarget, leader.target);
    assert.equal(client.highestEpoch, 4);
    assert.equal(other.calls.length, 0);
    // Later calls go straight to the leader.
    await client.getStats();
    assert.deepEqual([standby.calls.length, leader.calls.length], [1, 2]);
  });
});

test('refusals without a leader: the next replica, with backoff, within the deadline',
    async () => {
      await withReplicas([
        () => ({error: REFUSED, epoch: 1}),
        () => ({error: REFUSED, epoch: 1}),
      ], async ([a, b], connect) => {
        const client = connect({targets: [a.target, b.target], deadlineMs: 1000});
        const began = Date.now();
        await assert.rejects(client.getStats(), (error) => {
          assert.equal(error.code, status.UNAVAILABLE);
          assert.equal(error.details, REFUSED.details);
          return true;
        });
        const took = Date.now() - began;
        assert.ok(took <= 1100, `${took} ms`);
        // Backoff 50, 100, 200, 400 ms (then 500 ms would pass the deadline):
        // five tries, alternating.
        const tries = a.calls.length + b.calls.length;
        assert.ok(tries >= 4 && tries <= 6, `${tries} tries`);
        assert.ok(Math.abs(a.calls.length - b.calls.length) <= 1);
      });
    });

test('an answer at an epoch below the highest seen is never resolved', async () => {
  let aRefusals = 0;
  await withReplicas([
    // The leader: answers at epoch 5, then refuses twice (no leader known),
    // then answers at epoch 6.
    (method) => {
      if (method === 'AddUser') return {response: {added: true}, epoch: 5};
      if (++aRefusals <= 2) return {error: REFUSED, epoch: 5};
      return {response: {jamCount: 6}, epoch: 6};
    },
    // A replica that led at epoch 3 and does not know it lost: its answers
    // and its errors both.
    (method) => (method === 'ListJams' ?
      {error: {code: status.FAILED_PRECONDITION, details: 'no session'}, epoch: 3} :
      {response: {jamCount: 3}, epoch: 3}),
  ], async ([a, stale], connect) => {
    const client = connect({targets: [a.target, stale.target], deadlineMs: 3000});
    assert.equal((await client.addUser('j1', 'ann')).added, true);
    assert.equal(client.highestEpoch, 5);
    // a refuses, the stale replica answers (not resolved), a refuses, the
    // stale replica again, then a answers.
    assert.equal((await client.getStats()).jamCount, 6);
    assert.equal(client.highestEpoch, 6);
    assert.equal(client.currentTarget, a.target);
    assert.equal(stale.count('GetStats'), 2);

    // The leader refuses from now on, knowing epoch 6: the stale replica's
    // answers and errors are never surfaced; the call rejects UNAVAILABLE
    // when its deadline is spent.
    a.script = () => ({error: REFUSED, epoch: 6});
    const other = connect({targets: [a.target, stale.target], deadlineMs: 500});
    for (const call of [() => other.getStats(), () => other.listJams()]) {
      const before = stale.calls.length;
      await assert.rejects(call(), (error) => {
        assert.equal(error.code, status.UNAVAILABLE);
        assert.match(error.details, /not the leader|epoch 3, below epoch 6/);
        return true;
      });
      assert.ok(stale.calls.length > before);
    }
    assert.equal(other.highestEpoch, 6);
  });
});

test('listAllJams starts over when the leadership changed between pages', async () => {
  let listed = 0;
  const jam = (jamId) => ({jamId, userIds: [], reservedCount: 0});
  await withReplicas([
    (method, request) => {
      if (++listed === 1) {
        return {response: {jams: [jam('old-a')], nextPageToken: 't'}, epoch: 1};
      }
      // A new leader from here on: its first page, and what it makes of the
      // old leader's token.
      return request.pageToken === '' ?
        {response: {jams: [jam('new-a'), jam('new-b')]}, epoch: 2} :
        {response: {jams: [jam('old-b')]}, epoch: 2};
    },
    () => ({error: REFUSED, epoch: 2}),
  ], async ([a, b], connect) => {
    const client = connect({targets: [a.target, b.target]});
    assert.deepEqual((await client.listAllJams()).map((j) => j.jamId), ['new-a', 'new-b']);
    assert.deepEqual(a.calls.map(([, request]) => request.pageToken), ['', 't', '']);
  });
});

test('errors other than UNAVAILABLE are answers: not tried elsewhere', async () => {
  await withReplicas([
    () => ({error: {code: status.INVALID_ARGUMENT, details: 'jam_id: empty'}, epoch: 2}),
    () => ({response: {}, epoch: 2}),
  ], async ([a, b], connect) => {
    const client = connect({targets: [a.target, b.target]});
    await assert.rejects(client.addUser('', 'ann'),
        {code: status.INVALID_ARGUMENT, details: 'jam_id: empty'});
    assert.deepEqual([a.calls.length, b.calls.length], [1, 0]);
    assert.equal(client.currentTarget, a.target);
    assert.equal(client.highestEpoch, 2);
  });
});

test('sync follows the leader too, with a whole stream each try', async () => {
  let leaderTarget = '';
  await withReplicas([
    () => ({error: REFUSED, epoch: 9, leader: leaderTarget}),
    () => ({response: {jamCount: 2, userCount: 3}, epoch: 9}),
  ], async ([standby, leader], connect) => {
    leaderTarget = leader.target;
    const client = connect({targets: [standby.target, leader.target], frontendId: 'fe-a'});
    const response = await client.sync(
        [{jamId: 'j1', userIds: ['ann', 'bob']}, {jamId: 'j2', userIds: ['cat']}]);
    assert.deepEqual({...response, leaseExpiresUnixMs: 0},
        {leaseExpiresUnixMs: 0, jamCount: 2, userCount: 3});
    assert.equal(client.currentTarget, leader.target);
    assert.equal(client.lastSyncMessageCount, 1);
    const [[, messages]] = leader.calls;
    assert.equal(messages.length, 1);
    assert.equal(messages[0].frontendId, 'fe-a');
    assert.deepEqual(messages[0].jams.map((j) => j.jamId), ['j1', 'j2']);
  });
});

test('one target: one call, whatever the answer', async () => {
  await withReplicas([
    () => ({error: REFUSED, epoch: 1, leader: '127.0.0.1:1'}),
  ], async ([a], connect) => {
    const client = connect({target: a.target});
    assert.deepEqual(client.targets, [a.target]);
    await assert.rejects(client.getStats(), {code: status.UNAVAILABLE});
    assert.equal(a.calls.length, 1);
    assert.equal(client.currentTarget, a.target);
    assert.equal(client.highestEpoch, 1);
    // A one-element list is one target too.
    const listed = connect({targets: [a.target]});
    await assert.rejects(listed.getStats(), {code: status.UNAVAILABLE});
    assert.equal(a.calls.length, 2);
  });
});

test('targets are required; blanks and repeats are dropped', () => {
  assert.throws(() => new BalancerClient({}), TypeError);
  assert.throws(() => new BalancerClient({target: ' , '}), TypeError);
  assert.throws(() => new BalancerClient({targets: []}), TypeError);
  assert.throws(() => new BalancerClient({targets: 'a:1'}), TypeError);
  const client = new BalancerClient({target: 'a:1, b:2,,a:1'});
  assert.deepEqual(client.targets, ['a:1', 'b:2']);
  assert.equal(client.target, 'a:1,b:2');
  assert.equal(client.currentTarget, 'a:1');
  client.close();
});
