'use strict';

// BalancerClient: one front end's (or an anonymous) client of the jam
// balancer, every RPC as a Promise. Mirrors the C++ client library
// (client/balancer_client.h). Given several replicas of a replicated
// balancer (--etcd_endpoints), it calls the one that leads and follows the
// leadership when it moves.

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
// (server/rpc/serving_gate.h): the epoch of the leadership the answer
// belongs to (decimal; grows with each new leadership), and on a refusal
// (UNAVAILABLE) the address of the leader, when the replica knows it.
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
// Replicas. Given several targets (the replicas of a balancer run with
// --etcd_endpoints, of which one leads), each call goes to the replica
// believed to lead (`currentTarget`; at first the first target). A replica
// that does not lead answers UNAVAILABLE, naming the leader in trailing
// metadata when it knows it: the call goes there at once. Refused without a
// leader's name, or not reachable, it tries the next target after a backoff
// (50 ms, doubling up to 500 ms). All tries stay within the call's deadline;
// when it is spent the call rejects with the last error. Every answer of a
// replicated balancer names its leadership's epoch: the client keeps the
// highest it has seen (`highestEpoch`) and never resolves an answer of a
// lower one (a replica that led once and does not know yet that it lost):
// such an answer counts as UNAVAILABLE, and the call tries elsewhere. Only
// UNAVAILABLE (and such stale answers) are tried again: a replica that
// refuses a call has not run it. Each replica, and each leader address
// learned from metadata, gets its own channel, made at its first call.
//
// With a single target the client makes exactly one call per method, as
// without replicas: no retries, whatever the error (only an answer of an
// epoch below `highestEpoch` is turned into UNAVAILABLE).
//
// One client (and its channels) may serve any number of concurrent calls.
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

class BalancerClient {
  #Service;
  #credentials;
  #channelOptions;
  // Address -> stub (a grpc.Client), one channel each.
  #stubs = new Map();
  #targets;
  #replicated;
  // Where the next call goes: the replica believed to lead.
  #current;
  // Rotates through #targets for calls refused by an address not among them.
  #rotation = 0;
  #highestEpoch = 0;
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
    this.#current = parsed[0];
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

  // The address the next call goes to first: the replica believed to lead
  // (the one that answered, or the leader a replica named); at first the
  // first target. With one target, always it.
  get currentTarget() {
    return this.#current;
  }

  // The highest jam-balancer-epoch any answer carried (0: none yet, e.g.
  // from a balancer that runs alone).
  get highestEpoch() {
    return this.#highestEpoch;
  }

  // The jam a new user should join. With `userId`, a seat is reserved there
  // for that user for `reservationTtlMs` (0: the server's default; the server
  // caps long ones); join it with addUser before it expires.
  // -> {jamId, userCount, newJam, reservationExpiresUnixMs}
  currentJam(userId = '', { reservationTtlMs = 0 } = {}) {
    return this.#unary('CurrentJam', {
      userId,
      reservationTtlMs: wholeMillis(reservationTtlMs),
      frontendId: this.frontendId,
    });
  }

  // Adds a user to a jam if it has room, atomically. A holder of a live
  // reservation there is always added. -> {added, userCount, redirectJamId}
  addUser(jamId, userId) {
    return this.#unary('AddUser', {jamId, userId, frontendId: this.frontendId});
  }

  // Replaces the jam's members (this front end's only, when it has an id)
  // with `userIds`. -> {userCount}
  refresh(jamId, userIds) {
    return this.#unary('Refresh', {jamId, userIds, frontendId: this.frontendId});
  }

  // Removes a member from a jam (or releases the user's seat there). With
  // `holdSeatMs` above 0 the leaving member's seat stays reserved for the
  // user that long, so that a page reload lands in the same jam.
  // -> {removed, userCount}
  removeUser(jamId, userId, { holdSeatMs = 0 } = {}) {
    return this.#unary('RemoveUser', {
      jamId,
      userId,
      frontendId: this.frontendId,
      holdSeatMs: wholeMillis(holdSeatMs),
    });
  }

  // Whether one more user may enter the jam; with `userId`, a member or seat
  // holder always may. -> {hasCapacity, userCount, maxUsers}
  hasCapacity(jamId, userId = '') {
    return this.#unary('HasCapacity', {jamId, userId});
  }

  // -> {jamCount, userCount, maxUsers, fullJamCount, reservationCount,
  //     sessionCount}
  getStats() {
    return this.#unary('GetStats', {});
  }

  // One page of jams in id order. pageSize 0: the server's default (100);
  // pass the answer's nextPageToken back for the next page.
  // -> {jams: [{jamId, userIds, reservedCount}], nextPageToken}
  listJams({ pageSize = 0, pageToken = '' } = {}) {
    return this.#unary('ListJams', {pageSize, pageToken});
  }

  // Every jam, across as many ListJams pages as it takes (not a snapshot:
  // jams may change between pages). If the leadership changes between pages
  // (the epoch of an answer differs), it starts over from the first page of
  // the new leader. -> [{jamId, userIds, reservedCount}]
  async listAllJams() {
    for (let restarts = 0; ; ++restarts) {
      const jams = [];
      let pageToken = '';
      let epoch;
      let moved = false;
      do {
        const page = await this.#call('ListJams',
            {pageSize: MAX_PAGE_SIZE, pageToken});
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
  // balancer does not hold).
  // -> {jamId, members: [{userId, frontendId}], reservedCount, maxUsers}
  getJam(jamId) {
    return this.#unary('GetJam', {jamId});
  }

  // Runs `operations` (BatchOperation objects, e.g. {addUser: {jamId,
  // userId, frontendId}}; at most 1000) in order in one atomic step. The
  // operations are sent as given: a front end's operation names its
  // frontendId itself. -> {results: [{result: 'addUser', addUser: {...}}]}
  batch(operations) {
    return this.#unary('Batch', {operations});
  }

  // Renews this front end's lease. -> {leaseExpiresUnixMs}
  keepAlive() {
    return this.#unary('KeepAlive', {frontendId: this.frontendId});
  }

  // Ends this front end's session; the server removes its members and
  // reservations first. -> {removedUserCount}
  endSession() {
    return this.#unary('EndSession', {frontendId: this.frontendId});
  }

  // -> {sessions: [{frontendId, leaseExpiresUnixMs, memberCount,
  //     reservationCount}]}
  listSessions() {
    return this.#unary('ListSessions', {});
  }

  // Starts or renews this front end's session with a lease of `leaseTtlMs`
  // (0: the server's default; the server refuses less than 500 and caps long
  // ones), and makes `jams` ([{jamId, userIds}]) everything it hosts: its
  // members not listed are removed. The jams go on one client stream in as
  // many messages as needed (at most MAX_SYNC_MESSAGE_BYTES encoded bytes or
  // MAX_SYNC_MESSAGE_JAMS jams each), applied together when the stream ends;
  // a stream that fails changes nothing. `deadlineMs` (default: the
  // client's) bounds the whole stream. When the call has finished,
  // lastSyncMessageCount holds the number of messages it wrote.
  // -> {leaseExpiresUnixMs, jamCount, userCount}
  sync(jams, { leaseTtlMs = 0, deadlineMs = this.deadlineMs } = {}) {
    if (!Array.isArray(jams)) {
      return Promise.reject(
          new TypeError('sync: jams must be an array of {jamId, userIds}'));
    }
    const lease = wholeMillis(leaseTtlMs);
    return this.#withFailover(Date.now() + deadlineMs,
        (stub, deadline) => this.#syncOnce(stub, jams, lease, deadline))
        .then(({response}) => response);
  }

  // Closes the channels; calls made afterwards reject.
  close() {
    this.#closed = true;
    for (const stub of this.#stubs.values()) stub.close();
  }

  // One unary call with this client's deadline (failover included).
  #unary(method, request) {
    return this.#call(method, request).then(({response}) => response);
  }

  // One unary call; resolves to {response, epoch} (epoch: of the answer,
  // null without one).
  #call(method, request) {
    return this.#withFailover(Date.now() + this.deadlineMs,
        (stub, deadline) => new Promise((resolve) => {
          // The callback comes first, then the status with the trailing
          // metadata (grpc-js), but take them in either order.
          let outcome = null;
          let trailers = null;
          const finish = () => {
            if (outcome !== null && trailers !== null) {
              resolve({...outcome, trailers});
            }
          };
          const call = stub[method](
              request, {deadline}, (error, response) => {
                outcome = {error, response};
                if (error && error.metadata) trailers ??= error.metadata;
                finish();
              });
          call.on('status', (status) => {
            trailers ??= status.metadata ?? new grpc.Metadata();
            finish();
          });
        }));
  }

  // One Sync stream to `stub`; resolves to {error, response, trailers}, or
  // rejects if a jam is malformed (then nothing is applied: the stream is
  // cancelled before its half-close).
  #syncOnce(stub, jams, leaseTtlMs, deadline) {
    return new Promise((resolve, reject) => {
      let finished = false;
      let written = 0;
      let outcome = null;
      let trailers = null;
      const finish = () => {
        if (outcome !== null && trailers !== null) {
          resolve({...outcome, trailers});
        }
      };
      const call = stub.Sync({deadline}, (error, response) => {
        finished = true;
        this.lastSyncMessageCount = written;
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
      // Writes until the stream's buffer is full, then again on 'drain', so
      // that a large truth is never all encoded at once.
      const pump = () => {
        try {
          while (!finished) {
            const next = messages.next();
            if (next.done) {
              call.end();
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
          // never comes.
          finished = true;
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

  // Runs `attempt(stub, deadline)` (resolving to {error, response,
  // trailers}) on the replica believed to lead, and on others as the answers
  // direct, until one answers (resolves to {response, epoch}) or fails other
  // than UNAVAILABLE (rejects with that error), or `deadline` (Unix ms)
  // leaves no time for another try (rejects with the last error). An answer
  // at an epoch below the highest seen counts as UNAVAILABLE. With one
  // target: one attempt.
  async #withFailover(deadline, attempt) {
    let backoffMs = FIRST_BACKOFF_MS;
    // Whether the call went straight to a named leader since its last
    // backoff: a second such hop waits too, so that replicas that name each
    // other (one of them stale) are not called in a busy loop.
    let hopped = false;
    for (;;) {
      const address = this.#current;
      const {error, response, trailers} =
          await attempt(this.#stub(address), deadline);
      const epoch = epochOf(trailers);
      let failure = error;
      let leader = '';
      if (epoch !== null && epoch < this.#highestEpoch) {
        failure = staleError(address, epoch, this.#highestEpoch, trailers);
      } else {
        if (epoch !== null) this.#highestEpoch = epoch;
        if (!error) return {response, epoch};
        leader = leaderOf(trailers);
      }
      // CANCELLED that this client did not ask for comes from a replica
      // shutting down (a call that raced its GOAWAY): like UNAVAILABLE, the
      // call may go to another replica.
      const refused = failure.code === grpc.status.UNAVAILABLE ||
          (failure.code === grpc.status.CANCELLED && this.#replicated &&
           Date.now() < deadline);
      if (!refused) throw failure;
      if (!this.#replicated) throw failure;
      if (leader !== '' && leader !== address) {
        // Only move on if no other call has meanwhile.
        if (this.#current === address) this.#current = leader;
        if (!hopped) {
          hopped = true;
          continue;
        }
      } else if (this.#current === address) {
        this.#current = this.#nextTarget(address);
      }
      const remaining = deadline - Date.now();
      if (remaining <= backoffMs) throw failure;
      await sleep(backoffMs);
      backoffMs = Math.min(2 * backoffMs, MAX_BACKOFF_MS);
      hopped = false;
    }
  }
}

BalancerClient.MAX_SYNC_MESSAGE_BYTES = MAX_SYNC_MESSAGE_BYTES;
BalancerClient.MAX_SYNC_MESSAGE_JAMS = MAX_SYNC_MESSAGE_JAMS;

module.exports = { BalancerClient };
