'use strict';

// Pools against a real jam-balancer process that runs alone with --pools:
// each pool's jams apart from the others' (and its own max_users), NOT_FOUND
// for a pool the server does not have, a batch in a pool, a front end's sync
// over several pools, keepAlive and endSession acting on every pool,
// listPools and getRouting, and a FrontendSession whose truth spans pools.
// pools_ha.test.js runs pools over replicas (etcd).

const assert = require('node:assert/strict');
const { test, after } = require('node:test');

const { BalancerClient, FrontendSession, status } = require('../../../client/node');
const { Balancer } = require('./balancer_process');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'unhandled promise rejections'));

// Besides the default pool (7 users a jam): rock (7) and duo (2, seats
// reserved for 30 s unless asked otherwise).
const POOLS = '--pools=rock:7,duo:2:30s';

// Runs `body({balancer, connect})` against a fresh balancer with POOLS;
// clients are closed and the balancer killed afterwards, also on failure.
async function withBalancer(body) {
  const balancer = await Balancer.start({flags: [POOLS]});
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

async function assertStatus(promise, code, details) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.code, code, `code of ${error}`);
    assert.match(error.details, details);
    return true;
  });
}

function ids(jams) {
  return jams.map((jam) => jam.jamId);
}

test('pools are apart: the same jam id in two pools, each with its own max_users', async () => {
  await withBalancer(async ({connect}) => {
    const client = connect();
    const duo = {pool: 'duo'};
    assert.deepEqual(await client.addUser('j1', 'ann', duo),
        {added: true, userCount: 1, redirectJamId: ''});
    assert.deepEqual(await client.addUser('j1', 'bob', duo),
        {added: true, userCount: 2, redirectJamId: ''});
    // duo's jams hold two.
    const third = await client.addUser('j1', 'cat', duo);
    assert.equal(third.added, false);
    assert.notEqual(third.redirectJamId, '');
    assert.deepEqual(await client.hasCapacity('j1', '', duo),
        {hasCapacity: false, userCount: 2, maxUsers: 2});
    // j1 of the default pool is another jam; a user is in one jam per pool.
    assert.deepEqual(await client.hasCapacity('j1'),
        {hasCapacity: true, userCount: 0, maxUsers: 7});
    assert.deepEqual(await client.addUser('j1', 'ann'), {added: true, userCount: 1, redirectJamId: ''});
    assert.deepEqual(await client.refresh('j9', ['dan', 'eve'], {pool: 'rock'}), {userCount: 2});
    assert.deepEqual(await client.getJam('j1', duo), {
      jamId: 'j1', reservedCount: 0, maxUsers: 2,
      members: [{userId: 'ann', frontendId: ''}, {userId: 'bob', frontendId: ''}],
    });
    // Named '' or 'default', the default pool.
    assert.deepEqual((await client.getJam('j1', {pool: 'default'})).members,
        [{userId: 'ann', frontendId: ''}]);

    assert.deepEqual(ids(await client.listAllJams()), ['j1']);
    assert.deepEqual(ids(await client.listAllJams(duo)), ['j1']);
    assert.deepEqual(ids((await client.listJams({pool: 'rock'})).jams), ['j9']);
    assert.deepEqual(await client.listAllJams({pool: 'rock'}),
        [{jamId: 'j9', userIds: ['dan', 'eve'], reservedCount: 0}]);
    assert.equal((await client.getStats(duo)).userCount, 2);
    assert.equal((await client.getStats(duo)).maxUsers, 2);
    assert.equal((await client.getStats()).userCount, 1);
    assert.equal((await client.getStats({pool: 'rock'})).userCount, 2);

    // A seat in duo, with duo's reservation time.
    const before = Date.now();
    const seat = await client.currentJam('fay', {pool: 'duo'});
    assert.ok(seat.reservationExpiresUnixMs >= before + 29000 &&
        seat.reservationExpiresUnixMs <= before + 31000, `${seat.reservationExpiresUnixMs - before} ms`);
    assert.notEqual(seat.jamId, 'j1');
    assert.deepEqual(await client.removeUser('j1', 'bob', duo), {removed: true, userCount: 1});
    assert.deepEqual(await client.removeUser('j1', 'bob'), {removed: false, userCount: 1});
    // Nothing of it reached the default pool.
    assert.deepEqual(await client.getStats(),
        {jamCount: 1, userCount: 1, maxUsers: 7, fullJamCount: 0, reservationCount: 0,
          sessionCount: 0});
  });
});

test('a pool the server does not have: NOT_FOUND, nothing changes', async () => {
  await withBalancer(async ({connect}) => {
    const client = connect();
    const jazz = {pool: 'jazz'};
    for (const call of [
      () => client.addUser('j1', 'ann', jazz),
      () => client.currentJam('ann', jazz),
      () => client.refresh('j1', ['ann'], jazz),
      () => client.removeUser('j1', 'ann', jazz),
      () => client.hasCapacity('j1', '', jazz),
      () => client.getStats(jazz),
      () => client.listJams(jazz),
      () => client.listAllJams(jazz),
      () => client.getJam('j1', jazz),
      () => client.listSessions(jazz),
      () => client.batch([{getStats: {}}], jazz),
    ]) {
      await assertStatus(call(), status.NOT_FOUND, /jazz/);
    }
    const fe = connect({frontendId: 'fe-a'});
    await assertStatus(fe.sync([{jamId: 'j1', userIds: ['ann'], pool: 'jazz'}]),
        status.NOT_FOUND, /jazz/);
    // The Sync was refused whole: no session, no members anywhere.
    await assertStatus(fe.keepAlive(), status.FAILED_PRECONDITION, /fe-a/);
    for (const pool of ['', 'rock', 'duo']) {
      assert.equal((await client.getStats({pool})).userCount, 0, pool);
    }
    // A bad pool name is INVALID_ARGUMENT.
    await assertStatus(client.getStats({pool: 'a b'}), status.INVALID_ARGUMENT, /pool/);
  });
});

test('a batch runs in one pool; an operation of another pool is refused', async () => {
  await withBalancer(async ({connect}) => {
    const client = connect();
    const batch = await client.batch([
      {addUser: {jamId: 'j1', userId: 'ann'}},
      {addUser: {jamId: 'j1', userId: 'bob', pool: 'duo'}},
      {addUser: {jamId: 'j1', userId: 'cat'}},
      {getStats: {}},
    ], {pool: 'duo'});
    assert.deepEqual(batch.results.map((r) => r.result),
        ['addUser', 'addUser', 'addUser', 'getStats']);
    assert.equal(batch.results[1].addUser.userCount, 2);
    assert.equal(batch.results[2].addUser.added, false);
    assert.equal(batch.results[3].getStats.maxUsers, 2);
    assert.equal((await client.getStats()).userCount, 0);
    // Without a pool: the default pool.
    const plain = await client.batch([{addUser: {jamId: 'j1', userId: 'cat'}}]);
    assert.equal(plain.results[0].addUser.userCount, 1);
    // A batch never spans pools.
    await assertStatus(client.batch([{addUser: {jamId: 'j2', userId: 'dan', pool: 'rock'}}],
        {pool: 'duo'}), status.INVALID_ARGUMENT, /pool/);
    assert.equal((await client.getStats({pool: 'rock'})).userCount, 0);
  });
});

test('a front end syncs over pools; keepAlive and endSession act on every pool', async () => {
  await withBalancer(async ({connect}) => {
    const client = connect();
    const fe = connect({frontendId: 'fe-a'});
    const synced = await fe.sync([
      {jamId: 'j1', userIds: ['ann', 'bob']},
      {jamId: 'j1', userIds: ['cat'], pool: 'rock'},
      {jamId: 'j2', userIds: ['dan'], pool: 'rock'},
      {jamId: 'j1', userIds: ['eve', 'fay'], pool: 'duo'},
    ], {leaseTtlMs: 60000});
    assert.deepEqual({...synced, leaseExpiresUnixMs: 0},
        {leaseExpiresUnixMs: 0, jamCount: 4, userCount: 6});
    assert.equal(fe.lastSyncMessageCount, 1);
    assert.deepEqual(ids(await client.listAllJams({pool: 'rock'})), ['j1', 'j2']);
    assert.deepEqual((await client.listAllJams({pool: 'duo'}))[0].userIds, ['eve', 'fay']);
    for (const pool of ['', 'rock', 'duo']) {
      const {sessions} = await client.listSessions({pool});
      assert.deepEqual(sessions.map((s) => s.frontendId), ['fe-a'], pool);
    }
    // The session's calls in every pool.
    assert.equal((await fe.addUser('j2', 'gus', {pool: 'rock'})).userCount, 2);

    // A pool no jam names is emptied of the front end's users.
    const again = await fe.sync([
      {jamId: 'j1', userIds: ['ann']},
      {jamId: 'j3', userIds: ['cat'], pool: 'rock'},
    ], {leaseTtlMs: 60000});
    assert.deepEqual([again.jamCount, again.userCount], [2, 2]);
    assert.deepEqual(await client.listAllJams({pool: 'duo'}), []);
    assert.deepEqual(ids(await client.listAllJams({pool: 'rock'})), ['j3']);
    assert.deepEqual((await client.listSessions({pool: 'duo'})).sessions
        .map((s) => [s.frontendId, s.memberCount]), [['fe-a', 0]]);

    const before = Date.now();
    const renewed = await fe.keepAlive();
    assert.ok(renewed.leaseExpiresUnixMs >= before + 59000, `${renewed.leaseExpiresUnixMs - before}`);
    // Members of every pool, summed.
    assert.deepEqual(await fe.endSession(), {removedUserCount: 2});
    for (const pool of ['', 'rock', 'duo']) {
      assert.deepEqual((await client.listSessions({pool})).sessions, [], pool);
      assert.equal((await client.getStats({pool})).userCount, 0, pool);
    }
    await assertStatus(fe.keepAlive(), status.FAILED_PRECONDITION, /fe-a/);
    await assertStatus(fe.endSession(), status.FAILED_PRECONDITION, /fe-a/);
  });
});

test('listPools and getRouting of a server that runs alone', async () => {
  await withBalancer(async ({connect}) => {
    const client = connect();
    await client.refresh('j1', ['ann', 'bob'], {pool: 'duo'});
    await client.currentJam('cat', {pool: 'rock'});
    const {pools} = await client.listPools();
    assert.deepEqual(pools.map((p) => [p.name, p.maxUsers, p.userCount, p.reservationCount]),
        [['default', 7, 0, 0], ['duo', 2, 2, 0], ['rock', 7, 0, 1]]);
    const duo = pools[1];
    assert.deepEqual({...duo, maxReservationTtlMs: 0}, {
      name: 'duo', maxUsers: 2, jamCount: 1, userCount: 2, reservationCount: 0,
      sessionCount: 0, reservationTtlMs: 30000, maxReservationTtlMs: 0,
      serving: true, leaderAddress: '', epoch: 0,
    });
    assert.ok(pools.every((p) => p.serving && p.leaderAddress === '' && p.epoch === 0));
    // Alone: no leaders, call the one target.
    assert.deepEqual(await client.getRouting(), {routes: [
      {pool: 'default', leaderAddress: '', epoch: 0},
      {pool: 'duo', leaderAddress: '', epoch: 0},
      {pool: 'rock', leaderAddress: '', epoch: 0},
    ]});
    assert.deepEqual(client.routes, []);
    assert.equal(client.routeOf('duo'), client.target);
    assert.equal(client.highestEpochOf('duo'), 0);
  });
});

test('a FrontendSession whose truth spans pools', async () => {
  await withBalancer(async ({balancer, connect}) => {
    const truth = [
      {jamId: 'j1', userIds: ['ann']},
      {jamId: 'j1', userIds: ['bob'], pool: 'duo'},
      {jamId: 'j2', userIds: ['cat'], pool: 'rock'},
    ];
    const client = connect({frontendId: 'fe-a'});
    const events = [];
    const session = new FrontendSession(client, {
      leaseTtlMs: 60000, truth: async () => truth, onEvent: (e) => events.push(e),
    });
    try {
      assert.equal((await session.start()).userCount, 3);
      // Lost everywhere (another client ended the session): the next call
      // in a pool resyncs every pool, then runs again.
      const observer = connect();
      const other = new BalancerClient({target: balancer.target, frontendId: 'fe-a'});
      try {
        assert.deepEqual(await other.endSession(), {removedUserCount: 3});
      } finally {
        other.close();
      }
      truth[1].userIds.push('dan');
      const joined = await session.call((c) => c.addUser('j1', 'dan', {pool: 'duo'}));
      assert.deepEqual(joined, {added: true, userCount: 2, redirectJamId: ''});
      assert.deepEqual(events.map((e) => [e.type, e.reason]),
          [['resync', 'start'], ['resync', 'call']]);
      assert.deepEqual(ids(await observer.listAllJams({pool: 'rock'})), ['j2']);
      assert.equal((await observer.getStats()).userCount, 1);
      assert.deepEqual(await session.stop({endSession: true}), {removedUserCount: 4});
    } finally {
      await session.stop().catch(() => {});
    }
  });
});
