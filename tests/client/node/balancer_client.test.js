'use strict';

// BalancerClient against a real jam-balancer process: every RPC's round
// trip, front-end fencing, errors, and a large Sync split into messages.

const assert = require('node:assert/strict');
const { test, after } = require('node:test');

const { BalancerClient, status } = require('../../../client/node');
const { syncMessages } = require('../../../client/node/lib/sync_messages');
const { Balancer } = require('./balancer_process');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'unhandled promise rejections'));

// Runs `body({balancer, connect})` against a fresh balancer started with
// `flags`; `connect(options)` makes a client of it. The clients are closed
// and the balancer killed afterwards, also when `body` fails.
async function withBalancer(flags, body) {
  const balancer = await Balancer.start({flags});
  const clients = [];
  const connect = (options = {}) => {
    const client = new BalancerClient({target: balancer.target, ...options});
    clients.push(client);
    return client;
  };
  try {
    return await body({balancer, connect});
  } finally {
    for (const client of clients) client.close();
    await balancer.kill();
  }
}

// Asserts that `promise` rejects with gRPC status `code` and details that
// match `details` (a RegExp).
async function assertStatus(promise, code, details) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.code, code, `code of ${error}`);
    assert.match(error.details, details);
    return true;
  });
}

test('anonymous calls: every RPC round trip', async () => {
  await withBalancer([], async ({connect}) => {
    const client = connect();
    assert.equal(client.frontendId, '');

    const fresh = await client.currentJam();
    assert.equal(typeof fresh.jamId, 'string');
    assert.ok(fresh.jamId.length > 0);
    assert.deepEqual(fresh, {
      jamId: fresh.jamId, userCount: 0, newJam: true,
      reservationExpiresUnixMs: 0,
    });

    const before = Date.now();
    const reserved = await client.currentJam('ann', {reservationTtlMs: 60000});
    assert.equal(reserved.newJam, true);
    assert.equal(typeof reserved.reservationExpiresUnixMs, 'number');
    assert.ok(reserved.reservationExpiresUnixMs >= before + 59000);
    const jam = reserved.jamId;
    assert.deepEqual(await client.hasCapacity(jam, 'ann'),
        {hasCapacity: true, userCount: 0, maxUsers: 7});
    assert.deepEqual(await client.addUser(jam, 'ann'),
        {added: true, userCount: 1, redirectJamId: ''});
    // Asking again renews the user's one reservation.
    const bob = await client.currentJam('bob');
    assert.equal((await client.currentJam('bob')).jamId, bob.jamId);

    assert.deepEqual(await client.refresh('j1', ['cat', 'dan', 'cat']),
        {userCount: 2});
    assert.deepEqual(await client.removeUser('j1', 'dan'),
        {removed: true, userCount: 1});
    assert.deepEqual(await client.removeUser('j1', 'nobody'),
        {removed: false, userCount: 1});
    assert.deepEqual(await client.hasCapacity('j1'),
        {hasCapacity: true, userCount: 1, maxUsers: 7});

    // A held seat: the leaving user's page reload lands in the same jam.
    assert.deepEqual(await client.removeUser('j1', 'cat', {holdSeatMs: 60000}),
        {removed: true, userCount: 0});
    const reload = await client.currentJam('cat');
    assert.equal(reload.jamId, 'j1');
    assert.equal(reload.newJam, false);

    const stats = await client.getStats();
    assert.deepEqual(stats, {
      jamCount: 2, userCount: 1, maxUsers: 7, fullJamCount: 0,
      reservationCount: 2, sessionCount: 0,  // bob's and cat's.
    });

    const first = await client.listJams({pageSize: 1});
    assert.equal(first.jams.length, 1);
    assert.notEqual(first.nextPageToken, '');
    const second = await client.listJams({pageSize: 1, pageToken: first.nextPageToken});
    assert.equal(second.nextPageToken, '');
    const all = await client.listAllJams();
    assert.deepEqual(all, [...first.jams, ...second.jams]);
    assert.deepEqual(all.find((j) => j.jamId === 'j1'),
        {jamId: 'j1', userIds: [], reservedCount: 1});
    assert.deepEqual(all.find((j) => j.jamId === jam),
        {jamId: jam, userIds: ['ann'], reservedCount: 1});

    assert.deepEqual(await client.getJam(jam), {
      jamId: jam, members: [{userId: 'ann', frontendId: ''}],
      reservedCount: 1, maxUsers: 7,
    });
    assert.deepEqual(await client.getJam('unknown'),
        {jamId: 'unknown', members: [], reservedCount: 0, maxUsers: 7});

    const batch = await client.batch([
      {refresh: {jamId: 'j2', userIds: ['eve']}},
      {addUser: {jamId: 'j2', userId: 'fay'}},
      {hasCapacity: {jamId: 'j2'}},
      {removeUser: {jamId: 'j2', userId: 'eve'}},
      {currentJam: {}},
      {getStats: {}},
    ]);
    assert.deepEqual(batch.results.map((r) => r.result), [
      'refresh', 'addUser', 'hasCapacity', 'removeUser', 'currentJam',
      'getStats',
    ]);
    assert.deepEqual(batch.results[0].refresh, {userCount: 1});
    assert.deepEqual(batch.results[1].addUser,
        {added: true, userCount: 2, redirectJamId: ''});
    assert.equal(batch.results[2].hasCapacity.userCount, 2);
    assert.deepEqual(batch.results[3].removeUser, {removed: true, userCount: 1});
    assert.equal(batch.results[5].getStats.jamCount, 3);

    assert.deepEqual(await client.listSessions(), {sessions: []});
  });
});

test('a front end\'s calls: session, ownership, keepalive, end', async () => {
  await withBalancer([], async ({connect}) => {
    const fe = connect({frontendId: 'fe-a'});
    const anonymous = connect();
    assert.deepEqual(await anonymous.refresh('j1', ['zed']), {userCount: 1});

    const before = Date.now();
    const synced = await fe.sync(
        [{jamId: 'j1', userIds: ['ann', 'bob']}, {jamId: 'j2', userIds: ['cat']}],
        {leaseTtlMs: 60000});
    assert.equal(typeof synced.leaseExpiresUnixMs, 'number');
    assert.ok(synced.leaseExpiresUnixMs >= before + 59000);
    assert.deepEqual({...synced, leaseExpiresUnixMs: 0},
        {leaseExpiresUnixMs: 0, jamCount: 2, userCount: 3});
    assert.equal(fe.lastSyncMessageCount, 1);

    const renewed = await fe.keepAlive();
    assert.ok(renewed.leaseExpiresUnixMs >= synced.leaseExpiresUnixMs);

    // Refresh with a front end replaces only its own members of the jam.
    assert.deepEqual(await fe.refresh('j1', ['bob']), {userCount: 2});
    assert.deepEqual(await fe.getJam('j1'), {
      jamId: 'j1',
      members: [{userId: 'bob', frontendId: 'fe-a'}, {userId: 'zed', frontendId: ''}],
      reservedCount: 0, maxUsers: 7,
    });
    const placed = await fe.currentJam('dan', {reservationTtlMs: 60000});
    assert.deepEqual(await fe.addUser(placed.jamId, 'dan'),
        {added: true, userCount: placed.userCount + 1, redirectJamId: ''});
    // A front end removes only users it owns.
    assert.equal((await fe.removeUser('j1', 'zed')).removed, false);
    assert.ok((await fe.getJam('j1')).members.some((m) => m.userId === 'zed'));
    assert.deepEqual(await fe.removeUser('j2', 'cat', {holdSeatMs: 60000}),
        {removed: true, userCount: 0});

    // Batch operations name their front end themselves.
    const batch = await fe.batch([{addUser: {jamId: 'j2', userId: 'cat', frontendId: 'fe-a'}}]);
    assert.deepEqual(batch.results[0].addUser, {added: true, userCount: 1, redirectJamId: ''});

    const {sessions} = await fe.listSessions();
    assert.equal(sessions.length, 1);
    assert.deepEqual({...sessions[0], leaseExpiresUnixMs: 0}, {
      frontendId: 'fe-a', leaseExpiresUnixMs: 0, memberCount: 3,
      reservationCount: 0,
    });

    assert.deepEqual(await fe.endSession(), {removedUserCount: 3});
    assert.deepEqual(await fe.listAllJams(),
        [{jamId: 'j1', userIds: ['zed'], reservedCount: 0}]);
    await assertStatus(fe.keepAlive(), status.FAILED_PRECONDITION, /fe-a/);
  });
});

test('a front end without a session is fenced: FAILED_PRECONDITION naming it', async () => {
  await withBalancer([], async ({connect}) => {
    const fenced = connect({frontendId: 'fe-fenced'});
    const anonymous = connect();
    await anonymous.refresh('j1', ['ann']);
    const calls = {
      currentJam: () => fenced.currentJam('bob'),
      addUser: () => fenced.addUser('j1', 'bob'),
      refresh: () => fenced.refresh('j1', ['bob']),
      removeUser: () => fenced.removeUser('j1', 'ann'),
      keepAlive: () => fenced.keepAlive(),
      endSession: () => fenced.endSession(),
      batch: () => fenced.batch([
        {addUser: {jamId: 'j1', userId: 'cat'}},
        {addUser: {jamId: 'j1', userId: 'bob', frontendId: 'fe-fenced'}},
      ]),
    };
    for (const [name, call] of Object.entries(calls)) {
      await assert.rejects(call(), (error) => {
        assert.equal(error.code, status.FAILED_PRECONDITION, name);
        assert.match(error.details, /fe-fenced/, name);
        return true;
      });
    }
    // Nothing changed, not even the batch's anonymous operation.
    assert.deepEqual(await anonymous.listAllJams(),
        [{jamId: 'j1', userIds: ['ann'], reservedCount: 0}]);
    // Calls without a front end, and hasCapacity, are never fenced.
    assert.equal((await fenced.hasCapacity('j1')).userCount, 1);
    assert.equal((await fenced.getJam('j1')).members.length, 1);
  });
});

test('errors reject with the ServiceError; nothing throws synchronously', async () => {
  await withBalancer([], async ({balancer, connect}) => {
    const client = connect();
    await assertStatus(client.addUser('', 'ann'), status.INVALID_ARGUMENT, /jam_id/);
    await assertStatus(client.refresh('j1', ['ok', 'bad\n']),
        status.INVALID_ARGUMENT, /user_ids/);
    await assertStatus(
        client.batch([{getStats: {}}, {addUser: {jamId: 'j1', userId: ''}}]),
        status.INVALID_ARGUMENT, /operations\[1\]\.add_user\.user_id/);
    await assertStatus(client.listJams({pageToken: 'not-a-token'}),
        status.INVALID_ARGUMENT, /page_token/);
    // Sync, KeepAlive and EndSession need a front end.
    await assertStatus(client.sync([]), status.INVALID_ARGUMENT, /frontend_id/);
    await assertStatus(client.keepAlive(), status.INVALID_ARGUMENT, /frontend_id/);
    await assert.rejects(client.sync('not an array'), TypeError);
    // A bad jam in a Sync fails the whole stream, and changes nothing.
    const fe = connect({frontendId: 'fe-a'});
    await assertStatus(fe.sync([{jamId: 'j1', userIds: ['ann']}, {jamId: '', userIds: ['bob']}]),
        status.INVALID_ARGUMENT, /jam_id/);
    assert.deepEqual(await client.listSessions(), {sessions: []});
    assert.deepEqual(await client.listAllJams(), []);

    const closed = connect();
    closed.close();
    await assert.rejects(closed.getStats());

    // No balancer on the port (this one is killed): UNAVAILABLE.
    const orphan = connect({deadlineMs: 2000});
    await balancer.kill();
    await assertStatus(orphan.getStats(), status.UNAVAILABLE, /./);
  });
});

test('sync of 250,000 users in 36,000 jams: one stream of many messages', async () => {
  await withBalancer([], async ({connect}) => {
    const fe = connect({frontendId: 'fe-big', deadlineMs: 30000});
    const jamCount = 36000;
    const userCount = 250000;
    const jams = Array.from({length: jamCount},
        (_, j) => ({jamId: `jam-${String(j).padStart(5, '0')}`, userIds: []}));
    for (let u = 0; u < userCount; ++u) jams[u % jamCount].userIds.push(`user-${u}`);

    const synced = await fe.sync(jams, {leaseTtlMs: 60000});
    assert.equal(synced.jamCount, jamCount);
    assert.equal(synced.userCount, userCount);
    // At most 1000 jams a message.
    assert.equal(fe.lastSyncMessageCount, 36);

    const stats = await fe.getStats();
    assert.equal(stats.jamCount, jamCount);
    assert.equal(stats.userCount, userCount);
    const listed = await fe.listAllJams();
    assert.equal(listed.length, jamCount);
    assert.equal(listed.reduce((sum, jam) => sum + jam.userIds.length, 0), userCount);
    assert.deepEqual(listed[7], {
      jamId: 'jam-00007',
      userIds: jams[7].userIds.slice().sort(),
      reservedCount: 0,
    });

    // A second Sync replaces the whole truth.
    const smaller = await fe.sync(jams.slice(0, 10));
    assert.equal(smaller.jamCount, 10);
    assert.equal(fe.lastSyncMessageCount, 1);
    assert.equal((await fe.getStats()).jamCount, 10);
  });
});

test('sync splits by bytes too: each message at most 1 MiB', async () => {
  await withBalancer([], async ({connect}) => {
    const fe = connect({frontendId: 'fe-wide', deadlineMs: 30000});
    // 40 jams of 1000 users with 100-byte ids: about 4 MB in all, above
    // gRPC's default 4 MB message limit if sent at once.
    const jams = Array.from({length: 40}, (_, j) => ({
      jamId: `wide-${j}`,
      userIds: Array.from({length: 1000}, (_, u) => `user-${j}-${u}-`.padEnd(100, 'x')),
    }));
    const expected = [...syncMessages('fe-wide', 0, jams)].length;
    assert.ok(expected >= 4, `${expected} messages`);

    const synced = await fe.sync(jams);
    assert.equal(synced.jamCount, 40);
    assert.equal(synced.userCount, 40000);
    assert.equal(fe.lastSyncMessageCount, expected);
  });
});
