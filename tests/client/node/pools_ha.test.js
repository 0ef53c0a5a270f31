'use strict';

// Pools over replicas: a real three-member etcd cluster on loopback
// (etcd_cluster.js) and three real jam-balancer replicas with pools a, b and
// c besides the default one. Every pool has its own election, and the
// replicas' rebalancer (--rebalance_interval) spreads the leaderships over
// them, so a pool's calls are answered by its own leader only. The client,
// given every replica, routes each call by its pool, syncs a front end's
// truth to every leader, keeps its session alive on every leader; when one
// replica is killed (kill -9), its pools' calls resume at their new leaders,
// and a FrontendSession resyncs its truth there by itself. Times are
// measured and printed; only generous bounds are asserted. Every process is
// started here and killed by its PID, also when a test fails.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { isDeepStrictEqual } = require('node:util');

const { BalancerClient, FrontendSession, status } = require('../../../client/node');
const { Balancer, sleep, waitFor } = require('./balancer_process');
const { EtcdCluster } = require('./etcd_cluster');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));

const POOLS = ['a', 'b', 'c', 'default'];
// The replicas' etcd lease, and how long a takeover or a spread may take on
// a busy machine.
const ELECTION_TTL = '1s';
const SETTLE_BOUND_MS = 15000;

let etcd = null;
before(async () => {
  etcd = await EtcdCluster.start();
});
after(async () => {
  if (etcd !== null) await etcd.stop();
  assert.deepEqual(unhandled, [], 'unhandled promise rejections');
});

let elections = 0;

// pool -> leader address of a GetRouting answer ('' unknown).
function leadersOf({routes}) {
  return new Map(routes.map(({pool, leaderAddress}) => [pool, leaderAddress]));
}

// Runs `body(fixture)` against three fresh replicas (elections of their own
// in the shared etcd cluster); the fixture has
//   replicas            the Balancer processes
//   targets             their host:port
//   connect(options)    a BalancerClient of every replica
//   session(client, options)  a FrontendSession recording its events
//   spread(among)       waits until every pool has a leader, more than one
//                       replica leads, and the replicas `among` (default:
//                       all) agree on it twice 600 ms apart (the rebalancer
//                       is done); resolves to pool -> leader address
// Sessions are stopped, clients closed and the replicas killed afterwards,
// also when `body` fails.
async function withReplicas(body) {
  const flags = [
    `--etcd_endpoints=${etcd.endpoints}`, `--election_ttl=${ELECTION_TTL}`,
    `--election_name=jam-node-pools-${process.pid}-${++elections}`,
    '--pools=a:7,b:7,c:7', '--rebalance_interval=500ms',
  ];
  const replicas = [];
  const clients = [];
  const sessions = [];
  try {
    for (let i = 0; i < 3; ++i) replicas.push(await Balancer.start({flags}));
    const fixture = {replicas, targets: replicas.map((r) => r.target)};
    fixture.connect = (options = {}) => {
      const client = new BalancerClient({targets: fixture.targets, ...options});
      clients.push(client);
      return client;
    };
    const probes = new Map();
    const probe = (replica) => {
      if (!probes.has(replica)) {
        const client = new BalancerClient({target: replica.target, deadlineMs: 1000});
        clients.push(client);
        probes.set(replica, client);
      }
      return probes.get(replica);
    };
    fixture.spread = async (among = replicas) => {
      let last = null;
      let settled = null;
      await waitFor('the pools\' leaderships spread over the replicas', async () => {
        const views = await Promise.all(among.map((replica) =>
          probe(replica).getRouting().then(leadersOf, () => null)));
        const view = views[0];
        const agreed = view !== null &&
            views.every((other) => isDeepStrictEqual(other, view)) &&
            POOLS.every((pool) => among.some((r) => r.target === view.get(pool))) &&
            new Set(view.values()).size > 1;
        if (agreed && last !== null && isDeepStrictEqual(view, last)) {
          settled = view;
          return true;
        }
        last = agreed ? view : null;
        if (agreed) await sleep(600);
        return false;
      }, SETTLE_BOUND_MS, 100);
      return settled;
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

// A front end's truth over every pool: in each pool p, jam p1 with two users
// and jam p2 with one.
function truthOverPools() {
  return POOLS.flatMap((pool) => [
    {jamId: `${pool}1`, userIds: [`${pool}-ann`, `${pool}-bob`], pool},
    {jamId: `${pool}2`, userIds: [`${pool}-cat`], pool},
  ]);
}

// The part of `truth` in `pool`, as ListJams answers it.
function listedIn(truth, pool) {
  return truth.filter((jam) => jam.pool === pool)
      .map(({jamId, userIds}) => ({jamId, userIds: [...userIds].sort(), reservedCount: 0}))
      .sort((a, b) => (a.jamId < b.jamId ? -1 : a.jamId > b.jamId ? 1 : 0));
}

test('pools led by different replicas: calls routed by pool, sync and keepAlive on every leader',
    async () => {
      await withReplicas(async ({replicas, connect, spread}) => {
        const began = Date.now();
        const leaders = await spread();
        const distinct = new Set(leaders.values());
        console.log(`pools spread over ${distinct.size} replicas after ` +
            `${Date.now() - began} ms: ${JSON.stringify([...leaders])}`);

        // A replica that does not lead a pool refuses its calls, naming the
        // pool's leader.
        const notLeadingA = replicas.find((r) => r.target !== leaders.get('a'));
        const single = new BalancerClient({target: notLeadingA.target});
        try {
          await assert.rejects(single.getStats({pool: 'a'}), (error) => {
            assert.equal(error.code, status.UNAVAILABLE);
            assert.deepEqual(error.metadata.get('jam-balancer-leader'), [leaders.get('a')]);
            return true;
          });
        } finally {
          single.close();
        }

        // Each pool's calls reach its leader, whichever target comes first.
        const client = connect({targets: [notLeadingA.target, ...replicas
            .filter((r) => r !== notLeadingA).map((r) => r.target)]});
        for (const pool of POOLS) {
          assert.deepEqual(await client.refresh(`${pool}9`, ['zed'], {pool}), {userCount: 1});
          assert.equal(client.routeOf(pool), leaders.get(pool), pool);
          assert.ok(client.highestEpochOf(pool) > 0, pool);
          // The first call's refusal (pool a at its first target) refreshed
          // the whole table.
          assert.deepEqual(client.routes.map(({pool: p, address}) => [p, address]),
              [...leaders].sort(), pool);
        }
        // Unconfigured: NOT_FOUND, as is.
        await assert.rejects(client.getStats({pool: 'jazz'}), {code: status.NOT_FOUND});

        // A front end's truth over every pool: one Sync stream per leader.
        const fe = connect({frontendId: 'fe-1'});
        const truth = truthOverPools();
        const synced = await fe.sync(truth, {leaseTtlMs: 60000});
        assert.deepEqual([synced.jamCount, synced.userCount], [8, 12]);
        assert.equal(fe.lastSyncMessageCount, distinct.size);
        for (const pool of POOLS) {
          const jams = (await client.listAllJams({pool})).filter((j) => j.jamId !== `${pool}9`);
          assert.deepEqual(jams, listedIn(truth, pool), pool);
          const {sessions} = await client.listSessions({pool});
          assert.deepEqual(sessions.map((s) => [s.frontendId, s.memberCount]), [['fe-1', 3]], pool);
          // The session's calls in the pool.
          assert.equal((await fe.addUser(`${pool}2`, `${pool}-dan`, {pool})).userCount, 2, pool);
        }
        // keepAlive renews the lease on every leader.
        const renewed = await fe.keepAlive();
        assert.ok(renewed.leaseExpiresUnixMs > Date.now() + 50000);
        // A sync that leaves pools out empties them of the front end's users.
        const fewer = await fe.sync(truth.filter((jam) => jam.pool === 'b'), {leaseTtlMs: 60000});
        assert.deepEqual([fewer.jamCount, fewer.userCount], [2, 3]);
        assert.deepEqual((await client.listAllJams({pool: 'c'})).map((j) => j.jamId), ['c9']);
        // endSession on every leader: the counts summed.
        assert.deepEqual(await fe.endSession(), {removedUserCount: 3});
        await assert.rejects(fe.keepAlive(), {code: status.FAILED_PRECONDITION});
        await assert.rejects(fe.endSession(), {code: status.FAILED_PRECONDITION});
        // A jam that cannot be encoded: no stream half-closes, on no leader.
        await assert.rejects(fe.sync([...truth, {jamId: 'b3', userIds: 5, pool: 'b'}]), TypeError);
        await assert.rejects(fe.keepAlive(), {code: status.FAILED_PRECONDITION});
        for (const pool of POOLS) {
          assert.deepEqual((await client.listSessions({pool})).sessions, [], pool);
        }
      });
    });

test('kill -9 of a pool leader: its pools\' calls resume at the new leaders after a resync',
    async () => {
      await withReplicas(async ({replicas, connect, session, spread}) => {
        const leaders = await spread();
        const truth = truthOverPools();
        // Keepalives every second; each call's deadline below that.
        const client = connect({frontendId: 'fe-1', deadlineMs: 900});
        const fe = session(client, {leaseTtlMs: 3000, truth: async () => truth});
        await fe.start();
        const observer = connect({deadlineMs: 2000});
        for (const pool of POOLS) {
          assert.deepEqual(await observer.listAllJams({pool}), listedIn(truth, pool), pool);
        }

        const victim = replicas.find((r) => r.target === leaders.get('a'));
        const survivors = replicas.filter((r) => r !== victim);
        const lost = POOLS.filter((pool) => leaders.get(pool) === victim.target);
        const epochs = new Map(lost.map((pool) => [pool, observer.highestEpochOf(pool)]));
        await victim.kill();
        const began = Date.now();

        // A call of a lost pool made at once, with a deadline longer than a
        // takeover, succeeds at the new leader (which started empty).
        const waiting = connect({deadlineMs: 8000});
        await waiting.getStats({pool: 'a'});
        const firstCall = Date.now() - began;

        await waitFor('the truth in every pool at its new leader', async () => {
          try {
            for (const pool of POOLS) {
              const jams = await observer.listAllJams({pool});
              if (!isDeepStrictEqual(jams, listedIn(truth, pool))) return false;
            }
            return true;
          } catch {
            return false;
          }
        }, SETTLE_BOUND_MS, 50).catch((error) => {
          error.message += `; session events: ${JSON.stringify(fe.events.map(
              (e) => [e.type, e.reason, e.error?.code, e.error?.details]))}`;
          throw error;
        });
        const took = Date.now() - began;
        console.log(`kill -9 of the leader of ${lost.join(', ')}: a call of pool a ` +
            `succeeded after ${firstCall} ms; the front end's truth was back in ` +
            `every pool ${took} ms after (lease 3000 ms, keepalive every 1000 ms)`);
        assert.ok(firstCall < waiting.deadlineMs, `${firstCall} ms`);
        assert.ok(took < 10000, `${took} ms`);
        for (const pool of lost) {
          assert.notEqual(observer.routeOf(pool), victim.target, pool);
          assert.ok(observer.highestEpochOf(pool) > epochs.get(pool), pool);
        }
        assert.ok(fe.events.some((e) => e.type === 'resync' && e.reason === 'keepalive'),
            JSON.stringify(fe.events.map((e) => [e.type, e.reason])));

        // The session goes on over the survivors: keepalives on every leader,
        // calls in every pool.
        await spread(survivors);
        const count = fe.keepAliveCount;
        await waitFor('a keepalive after the resync', () => fe.keepAliveCount > count, 5000);
        for (const pool of POOLS) {
          const joined = await fe.call((c) => c.addUser(`${pool}1`, `${pool}-eve`, {pool}));
          assert.equal(joined.added, true, pool);
        }
      });
    });

test('SIGTERM of a pool leader: a sync with the old routes is made again at the new leaders',
    async () => {
      await withReplicas(async ({replicas, connect, spread}) => {
        const leaders = await spread();
        const truth = truthOverPools();
        const fe = connect({frontendId: 'fe-1', deadlineMs: 8000});
        await fe.sync(truth, {leaseTtlMs: 60000});
        const leaving = replicas.find((r) => r.target === leaders.get('b'));
        const moved = POOLS.filter((pool) => leaders.get(pool) === leaving.target);
        // The leader hands its pools over and exits; the client's table
        // still names it.
        assert.deepEqual(await leaving.terminate(), {code: 0, signal: null});
        assert.equal(fe.routeOf('b'), leaving.target);

        const began = Date.now();
        const synced = await fe.sync(truth, {leaseTtlMs: 60000});
        const took = Date.now() - began;
        console.log(`SIGTERM of the leader of ${moved.join(', ')}: the next sync ` +
            `succeeded after ${took} ms, on ${fe.lastSyncMessageCount} streams`);
        assert.deepEqual([synced.jamCount, synced.userCount], [8, 12]);
        for (const pool of moved) assert.notEqual(fe.routeOf(pool), leaving.target, pool);
        const observer = connect();
        for (const pool of POOLS) {
          assert.deepEqual(await observer.listAllJams({pool}), listedIn(truth, pool), pool);
        }
        assert.ok((await fe.keepAlive()).leaseExpiresUnixMs > Date.now() + 50000);
        assert.deepEqual(await fe.endSession(), {removedUserCount: 12});
      });
    });
