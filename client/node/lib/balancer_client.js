'use strict';

// BalancerClient: one front end's (or an anonymous) client of the jam
// balancer, every RPC as a Promise. Mirrors the C++ client library
// (client/balancer_client.h). Given several replicas of a replicated
// balancer (--etcd_endpoints), it routes each call to the replica that leads
// the call's pool and follows the leaderships when they move.

const fs = require('node:fs');

const grpc = require('@grpc/grpc-js');

const { loadService } = require('./service');
const {
  MAX_SYNC_MESSAGE_BYTES,
  MAX_SYNC_MESSAGE_JAMS,
  syncMessages,
} = require('./sync_messages');

const DEFAULT_DEADLINE_MS = 5000;
// ListJams' largest page (larger page sizes are treated as this).
const MAX_PAGE_SIZE = 1000;
// The largest value of the proto's uint32 millisecond fields.
const MAX_UINT32 = 0xffffffff;

// Trailing metadata of a replicated balancer's answers
// (server/rpc/serving_gate.h): the epoch of the pool's leadership the answer
// belongs to (decimal; grows with each new leadership of the pool; calls on
// every pool carry the default pool's, when the replica leads it), and on a
// refusal (UNAVAILABLE) the address of the pool's leader, when the replica
// knows it.
const EPOCH_KEY = 'jam-balancer-epoch';
const LEADER_KEY = 'jam-balancer-leader';

// Between two tries of a call on replicas that refused it without naming a
// leader (or could not be reached): 50 ms, doubling up to 500 ms.
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 500;
// listAllJams starts over when the leadership changed between its pages (a
// page token of one leader means nothing to the next), at most this often.
const MAX_LIST_RESTARTS = 3;

// Channel options of every replica's channel unless `channelOptions` sets
// them: reconnect within a second to a replica that comes back (gRPC's
// default backoff grows to two minutes), since it may be the next leader.
const REPLICA_CHANNEL_OPTIONS = Object.freeze({
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
});

// The default pool's name: requests name it with an empty pool field.
const DEFAULT_POOL = 'default';
// Scopes of calls that name no pool (#withFailover): a call on every pool
// the replica leads, made to one replica (with one target), and a call that
// any replica answers (ListPools, GetRouting).
const SERVER = Symbol('server');
const ANY_REPLICA = Symbol('any replica');
// Each GetRouting try of a route refresh at most this long, so that a
// replica that does not answer holds up the call no longer.
const ROUTING_TRY_MS = 1000;

// A duration in milliseconds as the proto's uint32 fields take it: zero or
// less (or not a number) is 0, which the fields read as "none" or "the
// server's default"; anything else whole milliseconds, at least 1 and at most
// what the field holds (the server caps it lower).
function wholeMillis(ms) {
  const value = Number(ms);
  if (!(value > 0)) return 0;
  return Math.min(Math.max(Math.trunc(value), 1), MAX_UINT32);
}

// The replicas named by the options: `targets` (an array of host:port), else
// `target` split at commas; blanks dropped, duplicates once.
function parseTargets(target, targets) {
  let list;
  if (targets !== undefined) {
    if (!Array.isArray(targets)) {
      throw new TypeError('BalancerClient: option targets must be an array of host:port');
    }
    list = targets;
  } else if (typeof target === 'string') {
    list = target.split(',');
  } else {
    list = [];
  }
  const parsed = [];
  for (const item of list) {
    if (typeof item !== 'string') {
      throw new TypeError('BalancerClient: every target must be a string (host:port)');
    }
    const trimmed = item.trim();
    if (trimmed !== '' && !parsed.includes(trimmed)) parsed.push(trimmed);
  }
  return parsed;
}

// The jam-balancer-epoch of `metadata` as a Number, or null without one.
function epochOf(metadata) {
  if (metadata == null || typeof metadata.get !== 'function') return null;
  const [value] = metadata.get(EPOCH_KEY);
  if (value === undefined) return null;
  const epoch = Number(String(value).trim());
  return Number.isSafeInteger(epoch) && epoch >= 0 ? epoch : null;
}

// The jam-balancer-leader of `metadata`, or ''.
function leaderOf(metadata) {
  if (metadata == null || typeof metadata.get !== 'function') return '';
  const [value] = metadata.get(LEADER_KEY);
  return value === undefined ? '' : String(value).trim();
}

// An UNAVAILABLE error shaped like grpc-js's ServiceError.
function unavailableError(details, metadata = new grpc.Metadata()) {
  const error = new Error(`${grpc.status.UNAVAILABLE} UNAVAILABLE: ${details}`);
  error.code = grpc.status.UNAVAILABLE;
  error.details = details;
  error.metadata = metadata;
  return error;
}

// What a call rejects with when a replica answered at an epoch below the
// highest this client has seen (it led once and does not know yet that it
// lost): UNAVAILABLE, like a refusal.
function staleError(address, epoch, highest, metadata) {
  return unavailableError(`replica ${address} answered at epoch ${epoch}, ` +
      `below epoch ${highest} already seen: it no longer leads`, metadata);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The pool field of a request: '' (the default pool) or the name given.
function poolField(pool) {
  return pool == null ? '' : String(pool);
}

// A pool's name as the route table keys it: the default pool is "default"
// whether a call names it '' or "default".
function poolKey(pool) {
  const name = poolField(pool);
  return name === '' ? DEFAULT_POOL : name;
}

// Whether `error` says the front end has no live session (resync needed).
function needsSession(error) {
  return error != null && error.code === grpc.status.FAILED_PRECONDITION;
}

// The earliest of leases in Unix ms (0 for none).
function earliest(leases) {
  return leases.length === 0 ? 0 : Math.min(...leases);
}

// One try of unary `method` with `request`, as #withFailover takes it: a
// function of (stub, deadline) resolving (never rejecting) to {error,
// response, trailers}.
function unaryAttempt(method, request) {
  return (stub, deadline) => new Promise((resolve) => {
    // The callback comes first, then the status with the trailing metadata
    // (grpc-js), but take them in either order.
    let outcome = null;
    let trailers = null;
    const finish = () => {
      if (outcome !== null && trailers !== null) {
        resolve({...outcome, trailers});
      }
    };
    const call = stub[method](request, {deadline}, (error, response) => {
      outcome = {error, response};
      if (error && error.metadata) trailers ??= error.metadata;
      finish();
    });
    call.on('status', (status) => {
      trailers ??= status.metadata ?? new grpc.Metadata();
      finish();
    });
  });
}

// The streams of one sync with replicas half-close together: each, once it
// has written all its messages, waits until every other one has too (or has
// ended), so that a malformed jam, which fails its stream before the
// half-close, leaves every replica unchanged. `released` resolves to true
// when all arrived, false as soon as one failed.
class HalfCloseBarrier {
  #waiting;
  #release;

  constructor(count) {
    this.#waiting = count;
    this.released = new Promise((resolve) => {
      this.#release = resolve;
    });
    if (count <= 0) this.#release(true);
  }

  // One stream wrote all its messages, or ended.
  arrive() {
    if (--this.#waiting === 0) this.#release(true);
  }

  // One stream could not write its messages.
  fail() {
    this.#release(false);
  }
}

// One field of the tls option as PEM bytes: a Buffer as it is, a string as
// the path of a file to read; undefined or null: none.
function readPem(tls, field) {
  const value = tls[field];
  if (value == null) return null;
  if (Buffer.isBuffer(value)) return value;
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`BalancerClient: tls.${field} must be a file path or a Buffer`);
  }
  let pem;
  try {
    pem = fs.readFileSync(value);
  } catch (error) {
    throw new Error(`BalancerClient: tls.${field}: cannot read ${value}: ${error.message}`);
  }
  if (!pem.includes('-----BEGIN ')) {
    throw new Error(`BalancerClient: tls.${field}: ${value} is not PEM (no -----BEGIN line)`);
  }
  return pem;
}

// grpc-js credentials of the tls option ({ca, cert, key}).
function tlsCredentials(tls) {
  if (typeof tls !== 'object') {
    throw new TypeError('BalancerClient: tls must be an object {ca, cert, key}');
  }
  for (const field of Object.keys(tls)) {
    if (!['ca', 'cert', 'key'].includes(field)) {
      throw new TypeError(`BalancerClient: unknown tls field ${field} (ca, cert, key)`);
    }
  }
  if ((tls.cert == null) !== (tls.key == null)) {
    throw new TypeError('BalancerClient: tls.cert and tls.key go together');
  }
  return grpc.credentials.createSsl(
      readPem(tls, 'ca'), readPem(tls, 'key'), readPem(tls, 'cert'));
}


// Client of the jam balancer for front-end servers.
//
// Every method makes one call with the client's deadline (`deadlineMs`,
// counted from its start; for sync, the whole stream's) and returns a
// Promise of the response message: camelCase fields, 64-bit counts as
// Numbers, unset fields as their defaults. A failed call rejects with
// @grpc/grpc-js's ServiceError: `err.code` is the gRPC status code (compare
// with `status` from this package), `err.details` the server's message.
// No method throws synchronously.
//
// A client speaks for one front end (`frontendId`) or for none (''). The
// calls the proto gives a frontend_id (currentJam, addUser, refresh,
// removeUser, keepAlive, endSession, sync) send it; a front end's calls need
// its live session: the server answers them FAILED_PRECONDITION (naming the
// front end) until sync starts one, and after its lease ran out or the
// balancer restarted. FrontendSession keeps a session alive and resyncs it.
//
// Pools. The jam calls (currentJam, addUser, refresh, removeUser,
// hasCapacity, getStats, listJams, listAllJams, getJam, batch, listSessions)
// act on one pool, named by their options' `pool` ('' or left out: the
// default pool, "default"); sync's jams name theirs. A pool the server is
// not configured for is NOT_FOUND, an answer like any other. keepAlive,
// endSession and sync act on every pool.
//
// Replicas. Given several targets (the replicas of a balancer run with
// --etcd_endpoints), the client routes each call by its pool: every pool has
// its own election, so its own leader, and only that leader answers the
// pool's calls. A route table (pool -> leader address, epoch) says where
// each pool's calls go; a pool without a route goes where the default
// pool's does (`currentTarget`; at first the first target). A replica that
// does not lead the pool answers UNAVAILABLE, naming the pool's leader in
// trailing metadata when it knows it: the call goes there at once, and the
// whole table is refreshed with GetRouting (which every replica answers).
// Refused without a leader's name, or not reachable, the call tries the
// next target after a backoff (50 ms, doubling up to 500 ms). All tries stay
// within the call's deadline; when it is spent the call rejects with the
// last error. Every answer of a pool's call names the epoch of the pool's
// leadership: the client keeps the highest it has seen per pool and never
// resolves an answer of a lower one (a replica that led the pool once and
// does not know yet that it lost): such an answer counts as UNAVAILABLE,
// and the call tries elsewhere. Only UNAVAILABLE (and such stale answers)
// are tried again: a replica that refuses a call has not run it.
//
// Since a replica's keepAlive, endSession and sync act on the pools it
// leads, these go to every distinct leader of the route table (refreshed
// with GetRouting first), in parallel, and their answers are merged.
//
// Each replica, and each leader address learned from metadata or routes,
// gets its own channel, made at its first call.
//
// With a single target the client makes exactly one call per method, as
// without replicas: no routing, no retries, whatever the error (only an
// answer of an epoch below the highest seen for its pool is turned into
// UNAVAILABLE).
//
// One client (and its channels) may serve any number of concurrent calls.
// The rounds of one call over the replicas: after a refusal naming a leader
// the call goes there at once, but a second such hop waits too, so that
// replicas that name each other (one of them stale) are not called in a
// busy loop; otherwise the next round waits a backoff (FIRST_BACKOFF_MS
// doubling to MAX_BACKOFF_MS), within the call's deadline.
class Rounds {
  constructor(deadline) {
    this.deadline = deadline;
    this.backoffMs = FIRST_BACKOFF_MS;
    this.hopped = false;
  }

  // After a failed round (`named`: its refusal named a leader): resolves
  // when the next round may start; rejects with `failure` when the
  // deadline leaves no room for the backoff.
  async next(failure, named) {
    if (named && !this.hopped) {
      this.hopped = true;
      return;
    }
    if (this.deadline - Date.now() <= this.backoffMs) throw failure;
    await sleep(this.backoffMs);
    this.backoffMs = Math.min(2 * this.backoffMs, MAX_BACKOFF_MS);
    this.hopped = false;
  }
}

class BalancerClient {
  #Service;
  #credentials;
  #channelOptions;
  // Address -> stub (a grpc.Client), one channel each.
  #stubs = new Map();
  #targets;
  #replicated;
  // Pool name -> {address, epoch}: where the pool's calls go (its leader as
  // last learned; epoch 0 when not known).
  #routes = new Map();
  // Pool name -> the highest epoch an answer (or a route) of it carried.
  #highest = new Map();
  // The pools the last GetRouting answer named (null: none answered yet).
  #pools = null;
  // The route refresh in flight (shared by whoever asks meanwhile), if any.
  #refreshing = null;
  // A replica answered GetRouting UNIMPLEMENTED (a balancer without pools):
  // routes are then learned from calls only.
  #routingUnsupported = false;
  // The replica that answered last: asked first for routes.
  #lastAnswered = '';
  // Rotates through #targets for calls refused by an address not among them.
  #rotation = 0;
  #closed = false;

  // Options:
  //   target          host:port (or any gRPC target URI) of the balancer, or
  //                   several replicas' host:port separated by commas.
  //   targets         the replicas as an array of host:port (instead of
  //                   target). One of the two is required.
  //   frontendId      the front end this client speaks for ('' anonymous).
  //   deadlineMs      deadline of every call (default 5000), failover
  //                   included.
  //   protoPath       jam_balancer.proto to load (default: the repository's
  //                   proto/jambalancer/v1/jam_balancer.proto).
  //   tls             TLS to the balancer: {ca, cert, key}, each a PEM file's
  //                   path or a Buffer of PEM. ca: the CA of the server's
  //                   certificate (left out: Node's root CAs); cert and key:
  //                   this client's, for a server with --tls_client_ca
  //                   (both or neither). The server's certificate must be
  //                   valid for each target's host. Files are read now.
  //   credentials     grpc.ChannelCredentials (default: plaintext, or those
  //                   of tls); not together with tls.
  //   channelOptions  options of the gRPC channel(s), e.g.
  //                   {'grpc.max_reconnect_backoff_ms': 1000}. With several
  //                   targets, reconnect backoff defaults to 100 ms up to
  //                   1 s (REPLICA_CHANNEL_OPTIONS).
  // Throws a TypeError without a target or for tls given wrong (naming the
  // field), an Error naming the field and the path for a TLS file that
  // cannot be read, or the loader's error if the proto cannot be loaded.
  constructor({
    target,
    targets,
    frontendId = '',
    deadlineMs = DEFAULT_DEADLINE_MS,
    protoPath,
    tls,
    credentials,
    channelOptions = {},
  } = {}) {
    const parsed = parseTargets(target, targets);
    if (parsed.length === 0) {
      throw new TypeError('BalancerClient: option target (host:port) is required');
    }
    if (tls != null && credentials != null) {
      throw new TypeError('BalancerClient: give tls or credentials, not both');
    }
    this.#Service = loadService(protoPath);
    this.#credentials = credentials ??
        (tls != null ? tlsCredentials(tls) : grpc.credentials.createInsecure());
    this.#targets = Object.freeze(parsed);
    this.#replicated = parsed.length > 1;
    this.#channelOptions = this.#replicated ?
        {...REPLICA_CHANNEL_OPTIONS, ...channelOptions} : channelOptions;
    // The single target's channel at once, as always.
    if (!this.#replicated) this.#stub(parsed[0]);
    // Read-only: a client speaks for one front end all its life.
    Object.defineProperty(this, 'frontendId', {
      value: String(frontendId),
      enumerable: true,
    });
    // The targets as given: the one target, or the replicas joined by
    // commas; `targets` has them as an array.
    this.target = parsed.join(',');
    this.targets = this.#targets;
    this.deadlineMs = deadlineMs;
    // The number of messages the last finished sync wrote on its stream (0
    // before the first).
    this.lastSyncMessageCount = 0;
  }


  // The address the default pool's calls go to first (and those of a pool
  // without a route): the replica believed to lead it (the one that
  // answered, or the leader a replica named); at first the first target.
  // With one target, always it.
  get currentTarget() {
    return this.#routeOf(DEFAULT_POOL);
  }

  // The highest jam-balancer-epoch an answer of the default pool carried (0:
  // none yet, e.g. from a balancer that runs alone). highestEpochOf(pool)
  // tells it for any pool.
  get highestEpoch() {
    return this.highestEpochOf(DEFAULT_POOL);
  }

  // The highest epoch of `pool` ('' or 'default': the default pool) that an
  // answer or a route carried; 0 before any.
  highestEpochOf(pool = '') {
    return this.#highest.get(poolKey(pool)) ?? 0;
  }

  // The address a call of `pool` goes to first ('' or 'default': the
  // default pool): its route, else currentTarget.
  routeOf(pool = '') {
    return this.#routeOf(poolKey(pool));
  }

  // The route table as known now, in pool order: [{pool, address, epoch}]
  // (epoch 0: not known). Empty with one target.
  get routes() {
    return [...this.#routes]
        .map(([pool, {address, epoch}]) => ({pool, address, epoch}))
        .sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
  }

  // The jam a new user should join. With `userId`, a seat is reserved there
  // for that user for `reservationTtlMs` (0: the server's default; the server
  // caps long ones); join it with addUser before it expires.
  // -> {jamId, userCount, newJam, reservationExpiresUnixMs}
  currentJam(userId = '', { reservationTtlMs = 0, pool = '' } = {}) {
    return this.#unary('CurrentJam', {
      userId,
      reservationTtlMs: wholeMillis(reservationTtlMs),
      frontendId: this.frontendId,
      pool: poolField(pool),
    });
  }

  // Adds a user to a jam if it has room, atomically. A holder of a live
  // reservation there is always added. -> {added, userCount, redirectJamId}
  addUser(jamId, userId, { pool = '' } = {}) {
    return this.#unary('AddUser', {
      jamId, userId, frontendId: this.frontendId, pool: poolField(pool),
    });
  }

  // Replaces the jam's members (this front end's only, when it has an id)
  // with `userIds`. -> {userCount}
  refresh(jamId, userIds, { pool = '' } = {}) {
    return this.#unary('Refresh', {
      jamId, userIds, frontendId: this.frontendId, pool: poolField(pool),
    });
  }

  // Removes a member from a jam (or releases the user's seat there). With
  // `holdSeatMs` above 0 the leaving member's seat stays reserved for the
  // user that long, so that a page reload lands in the same jam.
  // -> {removed, userCount}
  removeUser(jamId, userId, { holdSeatMs = 0, pool = '' } = {}) {
    return this.#unary('RemoveUser', {
      jamId,
      userId,
      frontendId: this.frontendId,
      holdSeatMs: wholeMillis(holdSeatMs),
      pool: poolField(pool),
    });
  }

  // Whether one more user may enter the jam; with `userId`, a member or seat
  // holder always may. -> {hasCapacity, userCount, maxUsers}
  hasCapacity(jamId, userId = '', { pool = '' } = {}) {
    return this.#unary('HasCapacity', {jamId, userId, pool: poolField(pool)});
  }

  // Totals of one pool.
  // -> {jamCount, userCount, maxUsers, fullJamCount, reservationCount,
  //     sessionCount}
  getStats({ pool = '' } = {}) {
    return this.#unary('GetStats', {pool: poolField(pool)});
  }

  // One page of a pool's jams in id order. pageSize 0: the server's default
  // (100); pass the answer's nextPageToken back for the next page.
  // -> {jams: [{jamId, userIds, reservedCount}], nextPageToken}
  listJams({ pageSize = 0, pageToken = '', pool = '' } = {}) {
    return this.#unary('ListJams', {pageSize, pageToken, pool: poolField(pool)});
  }

  // Every jam of a pool, across as many ListJams pages as it takes (not a
  // snapshot: jams may change between pages). If the pool's leadership
  // changes between pages (the epoch of an answer differs), it starts over
  // from the first page of the new leader.
  // -> [{jamId, userIds, reservedCount}]
  async listAllJams({ pool = '' } = {}) {
    for (let restarts = 0; ; ++restarts) {
      const jams = [];
      let pageToken = '';
      let epoch;
      let moved = false;
      do {
        const page = await this.#call('ListJams',
            {pageSize: MAX_PAGE_SIZE, pageToken, pool: poolField(pool)});
        if (epoch === undefined) epoch = page.epoch;
        if (page.epoch !== epoch) {
          moved = true;
          break;
        }
        jams.push(...page.response.jams);
        pageToken = page.response.nextPageToken;
      } while (pageToken !== '');
      if (!moved) return jams;
      if (restarts >= MAX_LIST_RESTARTS) {
        throw unavailableError(
            'the leadership kept changing while listing the jams');
      }
    }
  }

  // One jam's members with the front end owning each (none for a jam the
  // pool does not hold).
  // -> {jamId, members: [{userId, frontendId}], reservedCount, maxUsers}
  getJam(jamId, { pool = '' } = {}) {
    return this.#unary('GetJam', {jamId, pool: poolField(pool)});
  }

  // Runs `operations` (BatchOperation objects, e.g. {addUser: {jamId,
  // userId, frontendId}}; at most 1000) in order in one atomic step, all in
  // `pool` (an operation's own pool must be empty or name it). The
  // operations are sent as given: a front end's operation names its
  // frontendId itself. -> {results: [{result: 'addUser', addUser: {...}}]}
  batch(operations, { pool = '' } = {}) {
    return this.#unary('Batch', {operations, pool: poolField(pool)});
  }

  // Renews this front end's lease in every pool. With replicas, on every
  // replica that leads a pool; the answer is the earliest lease, and any
  // FAILED_PRECONDITION (a leader without the session: resync) rejects.
  // -> {leaseExpiresUnixMs}
  async keepAlive() {
    const request = {frontendId: this.frontendId};
    if (!this.#replicated) return this.#unary('KeepAlive', request, SERVER);
    const answers = await this.#onEveryLeader(Date.now() + this.deadlineMs,
        unaryAttempt('KeepAlive', request));
    const failed = answers.find(({error}) => needsSession(error)) ??
        answers.find(({error}) => error);
    if (failed) throw failed.error;
    return {leaseExpiresUnixMs: earliest(
        answers.map(({response}) => response.leaseExpiresUnixMs))};
  }

  // Ends this front end's session in every pool; the server removes its
  // members and reservations first. With replicas, on every replica that
  // leads a pool: the counts are summed, and it rejects FAILED_PRECONDITION
  // only if none of them had the session. -> {removedUserCount}
  async endSession() {
    const request = {frontendId: this.frontendId};
    if (!this.#replicated) return this.#unary('EndSession', request, SERVER);
    const answers = await this.#onEveryLeader(Date.now() + this.deadlineMs,
        unaryAttempt('EndSession', request));
    const failed = answers.find(({error}) => error && !needsSession(error));
    if (failed) throw failed.error;
    const ended = answers.filter(({error}) => !error);
    if (ended.length === 0) throw answers[0].error;
    return {removedUserCount: ended.reduce(
        (sum, {response}) => sum + response.removedUserCount, 0)};
  }

  // The sessions of one pool.
  // -> {sessions: [{frontendId, leaseExpiresUnixMs, memberCount,
  //     reservationCount}]}
  listSessions({ pool = '' } = {}) {
    return this.#unary('ListSessions', {pool: poolField(pool)});
  }

  // Every pool the balancer is configured for, in name order.
  // -> {pools: [{name, maxUsers, jamCount, userCount, reservationCount,
  //     sessionCount, reservationTtlMs, maxReservationTtlMs, serving,
  //     leaderAddress, epoch}]}
  listPools() {
    return this.#unary('ListPools', {}, ANY_REPLICA);
  }

  // Where each pool is served, as the replica asked knows it (any replica
  // answers); with replicas, its routes also update the route table.
  // -> {routes: [{pool, leaderAddress, epoch}]} (leaderAddress '' and epoch
  // 0: not known, or a server that runs alone)
  async getRouting() {
    const {response} = await this.#call('GetRouting', {}, ANY_REPLICA);
    if (this.#replicated) this.#applyRoutes(response.routes);
    return response;
  }

  // Starts or renews this front end's session with a lease of `leaseTtlMs`
  // (0: the server's default; the server refuses less than 500 and caps long
  // ones), and makes `jams` ([{jamId, userIds, pool}]; pool '' or left out:
  // the default pool) everything it hosts: its members not listed are
  // removed, in every pool. The jams go on one client stream in as many
  // messages as needed (at most MAX_SYNC_MESSAGE_BYTES encoded bytes or
  // MAX_SYNC_MESSAGE_JAMS jams each), applied together when the stream ends;
  // a stream that fails changes nothing. `deadlineMs` (default: the
  // client's) bounds the whole call. When it has finished,
  // lastSyncMessageCount holds the number of messages it wrote.
  //
  // With replicas, the jams are grouped by their pool's leader and each
  // leader gets a stream of its own (a leader none of them goes to an empty
  // one, so that its pools get the session); the streams half-close only
  // once every one has written all its messages, so a malformed jam (one
  // that cannot be encoded) changes nothing anywhere; a jam the server
  // refuses (e.g. INVALID_ARGUMENT) fails its leader's stream only, the
  // others may be applied, and the call rejects with that error. Refused by
  // one (it no longer leads a pool of its jams), the route table is
  // refreshed and the whole sync is made again. The answer is the earliest
  // lease, and the jams and users summed.
  // -> {leaseExpiresUnixMs, jamCount, userCount}
  sync(jams, { leaseTtlMs = 0, deadlineMs = this.deadlineMs } = {}) {
    if (!Array.isArray(jams)) {
      return Promise.reject(new TypeError(
          'sync: jams must be an array of {jamId, userIds, pool}'));
    }
    const lease = wholeMillis(leaseTtlMs);
    const deadline = Date.now() + deadlineMs;
    if (this.#replicated) return this.#syncEveryLeader(jams, lease, deadline);
    return this.#withFailover(deadline, (stub, callDeadline) =>
      this.#syncOnce(stub, jams, lease, callDeadline).then((outcome) => {
        this.lastSyncMessageCount = outcome.written;
        return outcome;
      }), SERVER).then(({response}) => response);
  }

  // Closes the channels; calls made afterwards reject.
  close() {
    this.#closed = true;
    for (const stub of this.#stubs.values()) stub.close();
  }

  // One unary call with this client's deadline (failover included), routed
  // by `scope`: a pool's name (default: the request's pool), SERVER or
  // ANY_REPLICA.
  #unary(method, request, scope = poolKey(request.pool)) {
    return this.#call(method, request, scope).then(({response}) => response);
  }

  // One unary call; resolves to {response, epoch} (epoch: of the answer,
  // null without one).
  #call(method, request, scope = poolKey(request.pool)) {
    return this.#withFailover(Date.now() + this.deadlineMs,
        unaryAttempt(method, request), scope);
  }

  // One Sync stream of `jams` to `stub`; resolves to {error, response,
  // trailers, written} (written: the messages written), or rejects if a jam
  // is malformed (then nothing is applied: the stream is cancelled before
  // its half-close). With `barrier` (a HalfCloseBarrier), the stream
  // half-closes only once every stream of the barrier has written all its
  // messages, and is cancelled if one of them failed to.
  #syncOnce(stub, jams, leaseTtlMs, deadline, barrier = null) {
    return new Promise((resolve, reject) => {
      let finished = false;
      let written = 0;
      let outcome = null;
      let trailers = null;
      let arrived = false;
      const arrive = () => {
        if (arrived || barrier === null) return;
        arrived = true;
        barrier.arrive();
      };
      const finish = () => {
        if (outcome !== null && trailers !== null) {
          resolve({...outcome, trailers, written});
        }
      };
      const call = stub.Sync({deadline}, (error, response) => {
        finished = true;
        arrive();
        outcome = {error, response};
        if (error && error.metadata) trailers ??= error.metadata;
        finish();
      });
      call.on('status', (status) => {
        trailers ??= status.metadata ?? new grpc.Metadata();
        finish();
      });
      // A write after the call ended (the server refused a message, the
      // deadline passed) may error the stream; the callback reports why.
      call.on('error', () => {});
      const messages = syncMessages(this.frontendId, leaseTtlMs, jams);
      const halfClose = () => {
        if (barrier === null) {
          call.end();
          return;
        }
        arrive();
        barrier.released.then((go) => {
          if (finished) return;
          if (go) {
            call.end();
          } else {
            finished = true;
            call.cancel();
          }
        });
      };
      // Writes until the stream's buffer is full, then again on 'drain', so
      // that a large truth is never all encoded at once.
      const pump = () => {
        try {
          while (!finished) {
            const next = messages.next();
            if (next.done) {
              halfClose();
              return;
            }
            ++written;
            if (!call.write(next.value)) {
              call.once('drain', pump);
              return;
            }
          }
        } catch (error) {
          // A malformed jam: nothing may be applied, so the half-close
          // never comes (on any stream of the barrier).
          finished = true;
          if (barrier !== null) barrier.fail();
          call.cancel();
          reject(error);
        }
      };
      pump();
    });
  }

  // The stub (channel) of `address`, made at its first use.
  #stub(address) {
    let stub = this.#stubs.get(address);
    if (stub === undefined) {
      if (this.#closed) throw new Error('the BalancerClient is closed');
      stub = new this.#Service(address, this.#credentials, this.#channelOptions);
      this.#stubs.set(address, stub);
    }
    return stub;
  }

  // The target to try after `address` failed without naming a leader.
  #nextTarget(address) {
    const index = this.#targets.indexOf(address);
    if (index >= 0) return this.#targets[(index + 1) % this.#targets.length];
    return this.#targets[this.#rotation++ % this.#targets.length];
  }

  // Where calls of `pool` (a pool's name) go: its route, else the default
  // pool's, else the first target.
  #routeOf(pool) {
    return this.#routes.get(pool)?.address ??
        this.#routes.get(DEFAULT_POOL)?.address ?? this.#targets[0];
  }

  // Sends `pool`'s calls to `to` instead of `from` (at `epoch`, 0: not
  // known), unless another call moved them meanwhile.
  #moveRoute(pool, from, to, epoch = 0) {
    if (this.#routeOf(pool) === from) this.#routes.set(pool, {address: to, epoch});
  }

  // `address` answered a call of `pool` at `epoch` (null: none): it leads
  // the pool.
  #answered(pool, address, epoch) {
    this.#lastAnswered = address;
    if (!this.#replicated) return;
    const route = this.#routes.get(pool);
    if (route !== undefined && epoch !== null && epoch < route.epoch) return;
    if (route === undefined || route.address !== address || epoch !== null) {
      this.#routes.set(pool, {address, epoch: epoch ?? route?.epoch ?? 0});
    }
  }

  // Takes the routes of a GetRouting answer: a leader at an epoch not below
  // what is known of its pool becomes the pool's route (and its epoch the
  // pool's highest). Routes without a leader change nothing.
  #applyRoutes(routes) {
    this.#pools = routes.map(({pool}) => poolKey(pool));
    for (const {pool, leaderAddress, epoch} of routes) {
      if (leaderAddress === '') continue;
      const name = poolKey(pool);
      const at = Number(epoch) || 0;
      if (at < (this.#highest.get(name) ?? 0)) continue;
      const route = this.#routes.get(name);
      if (route !== undefined && at < route.epoch) continue;
      this.#routes.set(name, {address: leaderAddress, epoch: at});
      if (at > 0) this.#highest.set(name, at);
    }
  }

  // The pools to reach for a call on every pool: those the last GetRouting
  // named, else the default pool alone.
  #knownPools() {
    return this.#pools ?? [DEFAULT_POOL];
  }

  // Refreshes the route table with GetRouting: asks `prefer` first, then
  // the replica that answered last, then the targets, `avoid` last, until one
  // answers (each try at most ROUTING_TRY_MS, all before `deadline`).
  // Resolves to whether one answered; never rejects. A refresh asked for
  // while one is in flight shares it.
  #refreshRoutes(deadline, { prefer = [], avoid = [] } = {}) {
    if (this.#routingUnsupported) return Promise.resolve(false);
    if (this.#refreshing !== null) return this.#refreshing;
    const order = [...new Set([...prefer, this.#lastAnswered, this.currentTarget,
      ...this.#targets])].filter((a) => a !== '' && !avoid.includes(a));
    order.push(...avoid);
    const refreshing = (async () => {
      for (const address of order) {
        const now = Date.now();
        if (now >= deadline || this.#closed) return false;
        const {error, response} = await unaryAttempt('GetRouting', {})(
            this.#stub(address), Math.min(deadline, now + ROUTING_TRY_MS));
        if (!error) {
          this.#applyRoutes(response.routes);
          return true;
        }
        if (error.code === grpc.status.UNIMPLEMENTED) {
          this.#routingUnsupported = true;
          return false;
        }
      }
      return false;
    })().finally(() => {
      this.#refreshing = null;
    });
    this.#refreshing = refreshing;
    return refreshing;
  }

  // What the outcome of one try at `address` ({error, response, trailers})
  // says: {response, epoch} for an answer, else {failure, refused, leader,
  // epoch} (refused: another replica may take the call; leader: the one
  // named, or ''). `epochPool` is the pool whose epoch the trailers carry;
  // with `refusalsOfAnyPool` (calls on every pool), a refusal's epoch may be
  // another pool's, and is not looked at.
  #judge(address, {error, response, trailers}, epochPool, refusalsOfAnyPool,
      deadline) {
    let epoch = epochOf(trailers);
    if (refusalsOfAnyPool && error && error.code === grpc.status.UNAVAILABLE) {
      epoch = null;
    }
    const highest = this.#highest.get(epochPool) ?? 0;
    if (epoch !== null && epoch < highest) {
      return {
        failure: staleError(address, epoch, highest, trailers),
        refused: true, leader: '', epoch,
      };
    }
    if (epoch !== null) this.#highest.set(epochPool, epoch);
    if (!error) return {response, epoch};
    // CANCELLED that this client did not ask for comes from a replica
    // shutting down (a call that raced its GOAWAY): like UNAVAILABLE, the
    // call may go to another replica.
    const refused = error.code === grpc.status.UNAVAILABLE ||
        (error.code === grpc.status.CANCELLED && this.#replicated &&
         Date.now() < deadline);
    return {failure: error, refused, leader: leaderOf(trailers), epoch};
  }

  // Runs `attempt(stub, deadline)` (resolving to {error, response,
  // trailers}) on the replica believed to lead the call's pool, and on
  // others as the answers direct, until one answers (resolves to {response,
  // epoch}) or fails other than UNAVAILABLE (rejects with that error), or
  // `deadline` (Unix ms) leaves no time for another try (rejects with the
  // last error). `scope` is the pool's name (the call goes by its route;
  // an answer at an epoch below the pool's highest counts as UNAVAILABLE),
  // SERVER (a call on every pool to one replica: only with one target) or
  // ANY_REPLICA (any replica answers; no route changes). With one target:
  // one attempt.
  async #withFailover(deadline, attempt, scope) {
    const pool = typeof scope === 'string' ? scope : null;
    const epochPool = pool ?? DEFAULT_POOL;
    let anyAddress = pool === null ?
        (this.#lastAnswered || this.currentTarget) : '';
    const rounds = new Rounds(deadline);
    for (;;) {
      const address = pool === null ? anyAddress : this.#routeOf(pool);
      const outcome = await attempt(this.#stub(address), deadline);
      const verdict =
          this.#judge(address, outcome, epochPool, pool === null, deadline);
      if (!verdict.failure) {
        if (pool !== null) {
          this.#answered(pool, address, verdict.epoch);
        } else {
          this.#lastAnswered = address;
        }
        return {response: verdict.response, epoch: verdict.epoch};
      }
      const {failure, leader} = verdict;
      if (!verdict.refused || !this.#replicated) throw failure;
      if (leader !== '' && leader !== address) {
        if (pool === null) {
          anyAddress = leader;
        } else {
          this.#moveRoute(pool, address, leader, verdict.epoch ?? 0);
          // The leaderships moved: learn where every pool went. The named
          // leader stays this pool's route unless a later one is known.
          await this.#refreshRoutes(deadline, {prefer: [address]});
        }
        await rounds.next(failure, /*named=*/true);
        continue;
      } else if (pool === null) {
        anyAddress = this.#nextTarget(address);
      } else {
        this.#moveRoute(pool, address, this.#nextTarget(address));
      }
      await rounds.next(failure, /*named=*/false);
    }
  }

  // What a refusal by `address` of a call on the pools `pools` (grouped to
  // it by their routes) changes: a named leader becomes their route, else
  // the next target does (a refresh of the routes follows and corrects
  // either). Returns whether a leader was named.
  #refusedOnPools(address, pools, verdict) {
    const {leader} = verdict;
    const named = leader !== '' && leader !== address;
    const to = named ? leader : this.#nextTarget(address);
    for (const pool of pools) this.#moveRoute(pool, address, to);
    return named;
  }

  // Runs `attempt` (as for #withFailover) once on every distinct leader of
  // the route table, refreshed first, in parallel: each answers for the
  // pools it leads. A replica that refuses (UNAVAILABLE, or a stale answer)
  // makes the table refreshed and its pools tried again, at their leaders
  // as the table then says (a replica that already answered is asked again
  // if it took them over), with #withFailover's backoff, until every pool's
  // leader answered or the deadline leaves no time for another try (rejects
  // with the last refusal). Resolves to the answers, [{address, response}
  // or {address, error}] (error: other than UNAVAILABLE).
  async #onEveryLeader(deadline, attempt) {
    const answers = [];
    // Pools whose leader has answered.
    const covered = new Set();
    const rounds = new Rounds(deadline);
    await this.#refreshRoutes(deadline);
    for (;;) {
      const groups = this.#groupByLeader(
          this.#knownPools().filter((pool) => !covered.has(pool)));
      if (groups.size === 0) return answers;
      const tries = await Promise.all([...groups].map(
          async ([address, pools]) =>
            ({address, pools, outcome: await attempt(this.#stub(address), deadline)})));
      let failure = null;
      let named = false;
      const prefer = [];
      const avoid = [];
      for (const {address, pools, outcome} of tries) {
        const verdict =
            this.#judge(address, outcome, DEFAULT_POOL, true, deadline);
        if (verdict.failure && verdict.refused) {
          failure = verdict.failure;
          if (this.#refusedOnPools(address, pools, verdict)) {
            named = true;
            prefer.push(address);
          } else {
            avoid.push(address);
          }
          continue;
        }
        if (!verdict.failure) this.#lastAnswered = address;
        for (const pool of pools) covered.add(pool);
        answers.push(verdict.failure ?
          {address, error: verdict.failure} : {address, response: verdict.response});
      }
      if (failure === null) return answers;
      await this.#refreshRoutes(deadline, {prefer, avoid});
      await rounds.next(failure, named);
    }
  }

  // `pools` grouped by where their calls go: address -> [pool].
  #groupByLeader(pools) {
    const groups = new Map();
    for (const pool of pools) {
      const address = this.#routeOf(pool);
      if (!groups.has(address)) groups.set(address, []);
      groups.get(address).push(pool);
    }
    return groups;
  }

  // sync with replicas: one stream per leader, all made again until every
  // leader took its part in the same round (see sync).
  async #syncEveryLeader(jams, leaseTtlMs, deadline) {
    const rounds = new Rounds(deadline);
    await this.#refreshRoutes(deadline);
    for (;;) {
      const pools = this.#groupByLeader(this.#knownPools());
      const parts = new Map([...pools.keys()].map((address) => [address, []]));
      for (const jam of jams) {
        const address = this.#routeOf(poolKey(jam?.pool));
        if (!parts.has(address)) parts.set(address, []);
        parts.get(address).push(jam);
      }
      const barrier = new HalfCloseBarrier(parts.size);
      const tries = await Promise.all([...parts].map(([address, part]) =>
        this.#syncOnce(this.#stub(address), part, leaseTtlMs, deadline, barrier)
            .then((outcome) => ({address, outcome}), (thrown) => ({address, thrown}))));
      const malformed = tries.find(({thrown}) => thrown !== undefined);
      if (malformed) throw malformed.thrown;
      let failure = null;
      let named = false;
      const prefer = [];
      const avoid = [];
      const responses = [];
      for (const {address, outcome} of tries) {
        const verdict =
            this.#judge(address, outcome, DEFAULT_POOL, true, deadline);
        if (!verdict.failure) {
          this.#lastAnswered = address;
          responses.push(verdict.response);
        } else if (!verdict.refused) {
          throw verdict.failure;
        } else {
          failure = verdict.failure;
          if (this.#refusedOnPools(address, pools.get(address) ?? [], verdict)) {
            named = true;
            prefer.push(address);
          } else {
            avoid.push(address);
          }
        }
      }
      this.lastSyncMessageCount =
          tries.reduce((sum, {outcome}) => sum + outcome.written, 0);
      if (failure === null) {
        return {
          leaseExpiresUnixMs: earliest(responses.map((r) => r.leaseExpiresUnixMs)),
          jamCount: responses.reduce((sum, r) => sum + r.jamCount, 0),
          userCount: responses.reduce((sum, r) => sum + r.userCount, 0),
        };
      }
      await this.#refreshRoutes(deadline, {prefer, avoid});
      await rounds.next(failure, named);
    }
  }
}

BalancerClient.MAX_SYNC_MESSAGE_BYTES = MAX_SYNC_MESSAGE_BYTES;
BalancerClient.MAX_SYNC_MESSAGE_JAMS = MAX_SYNC_MESSAGE_JAMS;
BalancerClient.DEFAULT_POOL = DEFAULT_POOL;

module.exports = { BalancerClient };
