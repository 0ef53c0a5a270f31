'use strict';

// FrontendSession against a real jam-balancer process: the lease kept alive,
// the front end's truth restored when the balancer restarts (kill -9, then a
// new process on the same port, which knows nothing), call()'s one retry,
// and the end of a session.

const assert = require('node:assert/strict');
const { test, after } = require('node:test');

const { BalancerClient, FrontendSession, status } = require('../../../client/node');
const { Balancer, sleep, waitFor } = require('./balancer_process');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'unhandled promise rejections'));

// Reconnect quickly once a restarted balancer listens again (gRPC's default
// backoff grows to minutes).
const CHANNEL_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
};

// A front end's truth: who is connected to which of its jams.
class Presence {
  constructor(jams) {
    this.jams = new Map(Object.entries(jams));
    this.asked = 0;
    this.failing = false;
  }

  join(jamId, userId) {
    this.jams.set(jamId, [...(this.jams.get(jamId) ?? []), userId]);
  }

  // What FrontendSession's truth option takes.
  truth = async () => {
    ++this.asked;
    if (this.failing) throw new Error('presence unavailable');
    return [...this.jams].map(([jamId, userIds]) => ({jamId, userIds}));
  };

  // The jams as ListJams answers them (users sorted, no reservations).
  listed() {
    return [...this.jams]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([jamId, userIds]) => ({jamId, userIds: [...userIds].sort(), reservedCount: 0}));
  }
}

// Runs `body(fixture)` against a fresh balancer; the fixture has
//   balancer            the running process (replaced by restart())
//   connect(options)    a client of it
//   session(client, options, presence)  a FrontendSession recording events
//   restart()           kill -9, then a new balancer on the same port
// Sessions are stopped, clients closed and the balancer killed afterwards,
// also when `body` fails.
async function withBalancer(body) {
  const fixture = {balancer: await Balancer.start()};
  const clients = [];
  const sessions = [];
  fixture.connect = (options = {}) => {
    const client = new BalancerClient({
      target: fixture.balancer.target, deadlineMs: 2000,
      channelOptions: CHANNEL_OPTIONS, ...options,
    });
    clients.push(client);
    return client;
  };
  fixture.session = (client, options, presence) => {
    const events = [];
    const session = new FrontendSession(client, {
      truth: presence.truth,
      onEvent: (event) => events.push(event),
      ...options,
    });
    session.events = events;
    sessions.push(session);
    return session;
  };
  fixture.restart = async () => {
    const port = fixture.balancer.port;
    await fixture.balancer.kill();
    fixture.balancer = await Balancer.restart(port);
  };
  try {
    return await body(fixture);
  } finally {
    for (const session of sessions) await session.stop().catch(() => {});
    for (const client of clients) client.close();
    await fixture.balancer.kill();
  }
}

function eventsOf(session, type, reason) {
  return session.events.filter(
      (e) => e.type === type && (reason === undefined || e.reason === reason));
}

test('start syncs the truth and reports it', async () => {
  await withBalancer(async ({connect, session}) => {
    const presence = new Presence({j1: ['ann', 'bob'], j2: ['cat']});
    const client = connect({frontendId: 'fe-1'});
    const fe = session(client, {leaseTtlMs: 10000}, presence);
    const response = await fe.start();
    assert.deepEqual({...response, leaseExpiresUnixMs: 0},
        {leaseExpiresUnixMs: 0, jamCount: 2, userCount: 3});
    assert.equal(fe.started, true);
    assert.equal(fe.syncCount, 1);
    assert.equal(fe.leaseExpiresUnixMs, response.leaseExpiresUnixMs);
    assert.deepEqual(fe.events, [{type: 'resync', reason: 'start', response}]);
    assert.deepEqual(await client.listAllJams(), presence.listed());
    const {sessions} = await client.listSessions();
    assert.deepEqual(sessions.map((s) => [s.frontendId, s.memberCount]), [['fe-1', 3]]);
  });
});

test('keepalives hold a short lease for several lease periods', async () => {
  await withBalancer(async ({connect, session}) => {
    const kept = session(connect({frontendId: 'fe-kept'}), {leaseTtlMs: 600},
        new Presence({j1: ['ann', 'bob']}));
    await kept.start();
    // The same lease without keepalives runs out.
    const idle = connect({frontendId: 'fe-idle'});
    await idle.sync([{jamId: 'j2', userIds: ['cat']}], {leaseTtlMs: 600});

    const observer = connect();
    await waitFor('fe-idle\'s lease to run out', async () =>
      (await observer.listSessions()).sessions.length === 1);
    // Five lease periods in all since the start.
    await sleep(3000);
    assert.deepEqual(await observer.listAllJams(),
        [{jamId: 'j1', userIds: ['ann', 'bob'], reservedCount: 0}]);
    const {sessions} = await observer.listSessions();
    assert.deepEqual(sessions.map((s) => s.frontendId), ['fe-kept']);
    // About every 200 ms; no resync was needed.
    assert.ok(kept.keepAliveCount >= 10, `${kept.keepAliveCount} keepalives`);
    assert.equal(kept.syncCount, 1);
    assert.deepEqual(kept.events.filter((e) => e.type !== 'resync'), []);
  });
});

test('after kill -9 and a restart, the next keepalive resyncs the truth', async () => {
  await withBalancer(async (fixture) => {
    const presence = new Presence({j1: ['ann', 'bob'], j2: ['cat']});
    const client = fixture.connect({frontendId: 'fe-1'});
    const fe = fixture.session(client, {leaseTtlMs: 900}, presence);
    await fe.start();
    // Anonymous members are lost with the process; only the truth comes back.
    await client.batch([{refresh: {jamId: 'j9', userIds: ['zed']}}]);

    const port = fixture.balancer.port;
    await fixture.balancer.kill();
    // Keepalives (every 300 ms) fail while no balancer listens.
    await waitFor('a keepalive error', () => eventsOf(fe, 'keepalive-error').length > 0);
    const [{error}] = eventsOf(fe, 'keepalive-error');
    assert.equal(error.code, status.UNAVAILABLE);
    fixture.balancer = await Balancer.restart(port);

    await waitFor('a resync by a keepalive', () => eventsOf(fe, 'resync', 'keepalive').length > 0);
    assert.deepEqual(await client.listAllJams(), presence.listed());
    const [{response}] = eventsOf(fe, 'resync', 'keepalive');
    assert.deepEqual({...response, leaseExpiresUnixMs: 0},
        {leaseExpiresUnixMs: 0, jamCount: 2, userCount: 3});
    assert.equal(fe.syncCount, 2);
    // And keepalives go on against the new balancer.
    const count = fe.keepAliveCount;
    await waitFor('a keepalive after the resync', () => fe.keepAliveCount > count);
  });
});

test('after a restart, a call resyncs the truth and is retried once', async () => {
  await withBalancer(async (fixture) => {
    const presence = new Presence({j1: ['ann', 'bob']});
    const client = fixture.connect({frontendId: 'fe-1'});
    // A long lease: no keepalive comes before the call.
    const fe = fixture.session(client, {leaseTtlMs: 60000}, presence);
    await fe.start();
    await fixture.restart();
    await waitFor('the restarted balancer', () =>
      client.getStats().then(() => true, () => false));

    // The front end counts a joining user as present before AddUser.
    presence.join('j1', 'dan');
    let calls = 0;
    const added = await fe.call((c) => {
      ++calls;
      return c.addUser('j1', 'dan');
    });
    assert.equal(calls, 2);
    assert.deepEqual(added, {added: true, userCount: 3, redirectJamId: ''});
    assert.equal(eventsOf(fe, 'resync', 'call').length, 1);
    assert.deepEqual(await client.listAllJams(), presence.listed());
    assert.deepEqual((await client.getJam('j1')).members.map((m) => m.frontendId),
        ['fe-1', 'fe-1', 'fe-1']);
  });
});

test('call surfaces a second failure, and the first when the resync fails', async () => {
  await withBalancer(async ({connect, session}) => {
    const presence = new Presence({j1: ['ann']});
    const client = connect({frontendId: 'fe-1'});
    const fe = session(client, {leaseTtlMs: 60000}, presence);
    await fe.start();

    // A call that keeps failing FAILED_PRECONDITION (another front end that
    // has no session) runs twice, with one resync in between.
    const other = connect({frontendId: 'fe-other'});
    let calls = 0;
    await assert.rejects(fe.call(() => {
      ++calls;
      return other.addUser('j1', `u${calls}`);
    }), (error) => {
      assert.equal(error.code, status.FAILED_PRECONDITION);
      assert.match(error.details, /fe-other/);
      return true;
    });
    assert.equal(calls, 2);
    assert.equal(fe.syncCount, 2);

    // Other errors are passed through without a retry.
    calls = 0;
    await assert.rejects(fe.call((c) => {
      ++calls;
      return c.addUser('', 'ann');
    }), {code: status.INVALID_ARGUMENT});
    assert.equal(calls, 1);
    assert.equal(fe.syncCount, 2);

    // The session is lost, and the resync fails: the first error.
    await client.endSession();
    presence.failing = true;
    calls = 0;
    await assert.rejects(fe.call((c) => {
      ++calls;
      return c.addUser('j1', 'bob');
    }), (error) => {
      assert.equal(error.code, status.FAILED_PRECONDITION);
      assert.match(error.details, /fe-1/);
      return true;
    });
    assert.equal(calls, 1);
    const [failed] = eventsOf(fe, 'resync-error', 'call');
    assert.equal(failed.error.message, 'presence unavailable');

    // Once the truth is back, the next call resyncs and succeeds.
    presence.failing = false;
    presence.join('j1', 'bob');
    const added = await fe.call((c) => c.addUser('j1', 'bob'));
    assert.equal(added.added, true);
    assert.deepEqual(await client.listAllJams(), presence.listed());
  });
});

test('concurrent resyncs share one Sync in flight', async () => {
  await withBalancer(async ({connect, session}) => {
    const presence = new Presence({j1: ['ann']});
    const client = connect({frontendId: 'fe-1'});
    const fe = session(client, {leaseTtlMs: 60000}, presence);
    await fe.start();

    // The first resync's Sync has taken the truth before the others ask, so
    // they wait for it and share the next one.
    const responses = await Promise.all(
        [fe.resync(), fe.resync(), fe.resync(), fe.resync()]);
    assert.equal(fe.syncCount, 3);
    assert.equal(presence.asked, 3);
    assert.notEqual(responses[1], responses[0]);
    assert.equal(responses[2], responses[1]);
    assert.equal(responses[3], responses[1]);

    // Calls that all find the session gone resync once between them.
    await client.endSession();
    for (let i = 0; i < 5; ++i) presence.join('j2', `u${i}`);
    const added = await Promise.all(Array.from({length: 5},
        (_, i) => fe.call((c) => c.addUser('j2', `u${i}`))));
    assert.ok(added.every((a) => a.added));
    assert.equal(fe.syncCount, 4);
    assert.equal(eventsOf(fe, 'resync', 'call').length, 1);
    assert.deepEqual(await client.listAllJams(), presence.listed());
  });
});

test('stop({endSession: true}) removes the users; a stopped session stays stopped', async () => {
  await withBalancer(async ({connect, session}) => {
    const presence = new Presence({j1: ['ann', 'bob'], j2: ['cat']});
    const client = connect({frontendId: 'fe-1'});
    const fe = session(client, {leaseTtlMs: 600}, presence);
    await fe.start();
    await waitFor('a keepalive', () => fe.keepAliveCount > 0);

    assert.deepEqual(await fe.stop({endSession: true}), {removedUserCount: 3});
    assert.equal(fe.started, false);
    assert.deepEqual(await client.listAllJams(), []);
    assert.deepEqual(await client.listSessions(), {sessions: []});

    // Neither keepalives nor call() bring the session back.
    const keepAlives = fe.keepAliveCount;
    let calls = 0;
    await assert.rejects(fe.call((c) => {
      ++calls;
      return c.addUser('j1', 'ann');
    }), {code: status.FAILED_PRECONDITION});
    assert.equal(calls, 1);
    await sleep(700);
    assert.equal(fe.keepAliveCount, keepAlives);
    assert.equal(fe.syncCount, 1);
    assert.deepEqual(await client.listSessions(), {sessions: []});

    // stop() without endSession leaves the session to its lease.
    await fe.start();
    assert.equal(await fe.stop(), undefined);
    assert.equal((await client.listSessions()).sessions.length, 1);
  });
});

test('start fails without a balancer and can be retried', async () => {
  await withBalancer(async (fixture) => {
    const port = fixture.balancer.port;
    await fixture.balancer.kill();
    const presence = new Presence({j1: ['ann']});
    const client = fixture.connect({frontendId: 'fe-1'});
    const fe = fixture.session(client, {leaseTtlMs: 10000}, presence);
    await assert.rejects(fe.start(), {code: status.UNAVAILABLE});
    assert.equal(fe.started, false);
    assert.equal(eventsOf(fe, 'resync-error', 'start').length, 1);

    fixture.balancer = await Balancer.restart(port);
    await waitFor('a started session', () => fe.start().then(() => true, () => false));
    assert.equal(fe.started, true);
    assert.deepEqual(await client.listAllJams(), presence.listed());
  });
});
