'use strict';

// BalancerClient and FrontendSession against replicated balancers: a real
// three-member etcd cluster on loopback (etcd_cluster.js) and two real
// jam-balancer replicas (--etcd_endpoints, --election_ttl=1s), of which one
// leads. The client, given both, finds the leader whichever it is; when the
// leader is killed (kill -9) or stopped (SIGTERM), the next call succeeds
// against the new leader within its deadline, and a front end's session
// resyncs its truth to the new leader by itself. Times are measured and
// printed; only generous bounds are asserted. Every process is started here
// and killed by its PID, also when a test fails.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { isDeepStrictEqual } = require('node:util');

const { BalancerClient, FrontendSession, status } = require('../../../client/node');
const { Balancer, sleep, waitFor } = require('./balancer_process');
const { EtcdCluster } = require('./etcd_cluster');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));

// The replicas' etcd lease, and how long a takeover may take on a busy
// machine (it takes about the lease).
const ELECTION_TTL = '1s';
const TAKEOVER_BOUND_MS = 10000;

let etcd = null;
before(async () => {
  etcd = await EtcdCluster.start();
});
after(async () => {
  if (etcd !== null) await etcd.stop();
  assert.deepEqual(unhandled, [], 'unhandled promise rejections');
});

let elections = 0;

// Runs `body(fixture)` against two fresh replicas of one balancer (an
// election of their own in the shared etcd cluster); the fixture has
//   replicas            the two Balancer processes
//   targets             their host:port
//   connect(options)    a BalancerClient of both replicas
//   probe(replica)      a single-target client of one replica
//   leader()            waits until exactly one replica answers; it
// Clients are closed and both replicas killed afterwards, also when `body`
// fails.
async function withReplicas(body) {
  const flags = [
    `--etcd_endpoints=${etcd.endpoints}`, `--election_ttl=${ELECTION_TTL}`,
    `--election_name=jam-node-ha-${process.pid}-${++elections}`,
  ];
  const replicas = [];
  const clients = [];
  const sessions = [];
  try {
    replicas.push(await Balancer.start({flags}));
    replicas.push(await Balancer.start({flags}));
    const fixture = {replicas, targets: replicas.map((r) => r.target)};
    fixture.connect = (options = {}) => {
      const client = new BalancerClient({targets: fixture.targets, ...options});
      clients.push(client);
      return client;
    };
    const probes = new Map();
    fixture.probe = (replica) => {
      if (!probes.has(replica)) {
        const client = new BalancerClient({target: replica.target, deadlineMs: 1000});
        clients.push(client);
        probes.set(replica, client);
      }
      return probes.get(replica);
    };
    fixture.leader = async (among = replicas) => {
      let leaders = [];
      await waitFor('exactly one replica to lead', async () => {
        const answered = await Promise.all(among.map((replica) =>
          fixture.probe(replica).getStats().then(() => true, () => false)));
        leaders = among.filter((_, i) => answered[i]);
        assert.ok(leaders.length <= 1, 'two replicas answered');
        return leaders.length === 1;
      }, TAKEOVER_BOUND_MS);
      return leaders[0];
    };
    fixture.session = (client, options) => {
      const events = [];
      const session = new FrontendSession(client, {
        onEvent: (event) => events.push(event), ...options,
      });
      session.events = events;
      sessions.push(session);
      return session;
    };
    return await body(fixture);
  } finally {
    for (const session of sessions) await session.stop().catch(() => {});
    for (const client of clients) client.close();
    for (const replica of replicas) await replica.kill().catch(() => {});
  }
}

// A front end's truth: who is connected to which of its jams.
function truthOf(jams) {
  return Object.entries(jams).map(([jamId, userIds]) => ({jamId, userIds}));
}

// The truth as ListJams answers it (jams and users sorted).
function listed(truth) {
  return truth.map(({jamId, userIds}) =>
    ({jamId, userIds: [...userIds].sort(), reservedCount: 0}))
      .sort((a, b) => (a.jamId < b.jamId ? -1 : a.jamId > b.jamId ? 1 : 0));
}

test('the client given both replicas finds the leader whichever it is', async () => {
  await withReplicas(async ({replicas, targets, connect, probe, leader}) => {
    const first = await leader();
    const standby = replicas.find((r) => r !== first);
    // The standby refuses, naming the leader.
    await assert.rejects(probe(standby).getStats(), (error) => {
      assert.equal(error.code, status.UNAVAILABLE);
      assert.deepEqual(error.metadata.get('jam-balancer-leader'), [first.target]);
      return true;
    });

    // Each order of the targets, as an array and as a comma-separated list:
    // one of them starts at the standby.
    const clients = [
      connect(),
      connect({targets: [...targets].reverse()}),
      new BalancerClient({target: ` ${targets[1]}, ${targets[0]} `}),
    ];
    try {
      assert.deepEqual(clients[0].targets, targets);
      assert.equal(clients[2].target, `${targets[1]},${targets[0]}`);
      assert.equal(clients[0].highestEpoch, 0);
      assert.equal(clients[0].currentTarget, targets[0]);
      assert.equal(clients[1].currentTarget, targets[1]);
      let epoch = 0;
      for (const [i, client] of clients.entries()) {
        assert.deepEqual(await client.refresh(`j${i}`, [`ann${i}`, `bob${i}`]), {userCount: 2});
        assert.equal(client.currentTarget, first.target, `client ${i}`);
        assert.ok(client.highestEpoch > 0, `client ${i}: epoch ${client.highestEpoch}`);
        if (epoch === 0) epoch = client.highestEpoch;
        assert.equal(client.highestEpoch, epoch);
      }
      // One balancer: what one client wrote, the others read.
      assert.deepEqual((await clients[1].listAllJams()).map((j) => j.jamId),
          ['j0', 'j1', 'j2']);
      assert.equal((await clients[2].getStats()).userCount, 6);
      // A front end's session and Sync over the replicas.
      const fe = connect({frontendId: 'fe-a', targets: [...targets].reverse()});
      const synced = await fe.sync(truthOf({j7: ['cat']}), {leaseTtlMs: 60000});
      assert.equal(synced.userCount, 1);
      assert.equal(fe.currentTarget, first.target);
      assert.equal((await clients[0].listSessions()).sessions[0].frontendId, 'fe-a');
      // Errors of the leader are answers, not tried elsewhere.
      await assert.rejects(clients[1].addUser('', 'ann'), {code: status.INVALID_ARGUMENT});
      assert.equal(clients[1].currentTarget, first.target);
    } finally {
      clients[2].close();
    }
  });
});

test('kill -9 of the leader: the next call succeeds against the new leader', async () => {
  await withReplicas(async ({replicas, connect, leader}) => {
    const first = await leader();
    const standby = replicas.find((r) => r !== first);
    const client = connect({deadlineMs: 8000});
    await client.refresh('j1', ['ann']);
    assert.equal(client.currentTarget, first.target);
    const epoch = client.highestEpoch;

    await first.kill();
    const began = Date.now();
    const stats = await client.getStats();
    const took = Date.now() - began;
    console.log(`kill -9 of the leader: the next call succeeded after ${took} ms ` +
        `(election lease ${ELECTION_TTL}; deadline ${client.deadlineMs} ms)`);
    assert.ok(took < client.deadlineMs, `${took} ms`);
    // The new leader started empty.
    assert.equal(stats.userCount, 0);
    assert.equal(client.currentTarget, standby.target);
    assert.ok(client.highestEpoch > epoch, `epoch ${epoch} -> ${client.highestEpoch}`);
    assert.equal(await leader([standby]), standby);
    // And the calls after go straight there.
    assert.deepEqual(await client.refresh('j2', ['bob']), {userCount: 1});
    assert.deepEqual((await client.listAllJams()).map((j) => j.jamId), ['j2']);
  });
});

test('kill -9 of the leader: a FrontendSession resyncs its truth to the new leader by itself',
    async () => {
      await withReplicas(async ({replicas, connect, leader, session}) => {
        const first = await leader();
        const standby = replicas.find((r) => r !== first);
        const truth = truthOf({j1: ['ann', 'bob'], j2: ['cat'], j3: ['dan', 'eve', 'fay']});
        // Keepalives every second; each call's deadline below that.
        const client = connect({frontendId: 'fe-1', deadlineMs: 900});
        const fe = session(client, {leaseTtlMs: 3000, truth: async () => truth});
        await fe.start();
        const observer = connect({deadlineMs: 2000});
        assert.deepEqual(await observer.listAllJams(), listed(truth));
        const epoch = client.highestEpoch;

        await first.kill();
        const began = Date.now();
        await waitFor('the truth on the new leader', async () => {
          try {
            const jams = await observer.listAllJams();
            return observer.currentTarget === standby.target &&
                isDeepStrictEqual(jams, listed(truth));
          } catch {
            return false;
          }
        }, 15000, 50).catch((error) => {
          error.message += `; session events: ${JSON.stringify(fe.events.map(
              (e) => [e.type, e.reason, e.error?.code, e.error?.details]))}`;
          throw error;
        });
        const took = Date.now() - began;
        console.log(`kill -9 of the leader: the front end's truth was back on the ` +
            `new leader ${took} ms after (lease 3000 ms, keepalive every 1000 ms)`);
        assert.ok(took < 10000, `${took} ms`);
        assert.equal(client.currentTarget, standby.target);
        assert.ok(client.highestEpoch > epoch);
        const resyncs = fe.events.filter((e) => e.type === 'resync' && e.reason === 'keepalive');
        assert.ok(resyncs.length >= 1, JSON.stringify(fe.events.map((e) => e.type)));
        const {sessions} = await observer.listSessions();
        assert.deepEqual(sessions.map((s) => [s.frontendId, s.memberCount]), [['fe-1', 6]]);
        // The session goes on against the new leader.
        const count = fe.keepAliveCount;
        await waitFor('a keepalive after the resync', () => fe.keepAliveCount > count, 5000);
        assert.equal((await fe.call((c) => c.addUser('j2', 'gus'))).added, true);
      });
    });

test('SIGTERM of the leader: the next calls succeed with no error surfaced', async () => {
  await withReplicas(async ({replicas, connect, leader}) => {
    const first = await leader();
    const standby = replicas.find((r) => r !== first);
    const client = connect({deadlineMs: 8000});
    await client.getStats();
    assert.equal(client.currentTarget, first.target);
    const epoch = client.highestEpoch;

    const exited = first.terminate();
    // Once the old leader is shutting down (it hands over first, then
    // drains), the next call: it goes there first.
    await waitFor('the old leader to shut down',
        () => /shutting down/.test(first.stderr), 5000, 5);
    const began = Date.now();
    await client.getStats();
    const took = Date.now() - began;
    console.log(`SIGTERM of the leader: the next call succeeded after ${took} ms ` +
        `(at ${client.currentTarget === standby.target ? 'the new' : 'the old'} leader)`);
    // Calls go on while the old leader hands over, drains and exits.
    const errors = [];
    let moved = null;
    while (Date.now() - began < TAKEOVER_BOUND_MS) {
      await client.getStats().catch((error) => errors.push(error));
      if (client.currentTarget === standby.target) {
        moved ??= Date.now() - began;
        if (first.exitedAlready) break;
      }
      await sleep(20);
    }
    console.log(`SIGTERM of the leader: calls reached the new leader after ${moved} ms`);
    assert.deepEqual(errors, []);
    assert.deepEqual(await exited, {code: 0, signal: null});
    assert.equal(client.currentTarget, standby.target);
    assert.ok(client.highestEpoch > epoch, `epoch ${epoch} -> ${client.highestEpoch}`);
    assert.deepEqual(await client.refresh('j1', ['ann']), {userCount: 1});
    assert.deepEqual((await client.listAllJams()).map((j) => j.jamId), ['j1']);
  });
});
