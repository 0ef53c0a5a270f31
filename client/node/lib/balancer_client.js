'use strict';

// BalancerClient: one front end's (or an anonymous) client of the jam
// balancer, every RPC as a Promise. Mirrors the C++ client library
// (client/balancer_client.h).

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

// A duration in milliseconds as the proto's uint32 fields take it: zero or
// less (or not a number) is 0, which the fields read as "none" or "the
// server's default"; anything else whole milliseconds, at least 1 and at most
// what the field holds (the server caps it lower).
function wholeMillis(ms) {
  const value = Number(ms);
  if (!(value > 0)) return 0;
  return Math.min(Math.max(Math.trunc(value), 1), MAX_UINT32);
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
// One client (and its channel) may serve any number of concurrent calls.
class BalancerClient {
  #stub;

  // Options:
  //   target          host:port (or any gRPC target URI) of the balancer;
  //                   required.
  //   frontendId      the front end this client speaks for ('' anonymous).
  //   deadlineMs      deadline of every call (default 5000).
  //   protoPath       jam_balancer.proto to load (default: the repository's
  //                   proto/jambalancer/v1/jam_balancer.proto).
  //   credentials     grpc.ChannelCredentials (default: plaintext).
  //   channelOptions  options of the gRPC channel, e.g.
  //                   {'grpc.max_reconnect_backoff_ms': 1000}.
  // Throws a TypeError without a target, or the loader's error if the proto
  // cannot be loaded.
  constructor({
    target,
    frontendId = '',
    deadlineMs = DEFAULT_DEADLINE_MS,
    protoPath,
    credentials = grpc.credentials.createInsecure(),
    channelOptions = {},
  } = {}) {
    if (typeof target !== 'string' || target === '') {
      throw new TypeError('BalancerClient: option target (host:port) is required');
    }
    const Service = loadService(protoPath);
    this.#stub = new Service(target, credentials, channelOptions);
    // Read-only: a client speaks for one front end all its life.
    Object.defineProperty(this, 'frontendId', {
      value: String(frontendId),
      enumerable: true,
    });
    this.target = target;
    this.deadlineMs = deadlineMs;
    // The number of messages the last finished sync wrote on its stream (0
    // before the first).
    this.lastSyncMessageCount = 0;
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
  // jams may change between pages). -> [{jamId, userIds, reservedCount}]
  async listAllJams() {
    const jams = [];
    let pageToken = '';
    do {
      const page = await this.listJams({pageSize: MAX_PAGE_SIZE, pageToken});
      jams.push(...page.jams);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return jams;
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
    return new Promise((resolve, reject) => {
      if (!Array.isArray(jams)) {
        throw new TypeError('sync: jams must be an array of {jamId, userIds}');
      }
      let finished = false;
      let written = 0;
      const call = this.#stub.Sync(
          {deadline: Date.now() + deadlineMs}, (error, response) => {
            finished = true;
            this.lastSyncMessageCount = written;
            if (error) reject(error); else resolve(response);
          });
      // A write after the call ended (the server refused a message, the
      // deadline passed) may error the stream; the callback reports why.
      call.on('error', () => {});
      const messages =
          syncMessages(this.frontendId, wholeMillis(leaseTtlMs), jams);
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

  // Closes the channel; calls made afterwards reject.
  close() {
    this.#stub.close();
  }

  // One unary call with this client's deadline.
  #unary(method, request) {
    return new Promise((resolve, reject) => {
      this.#stub[method](
          request, {deadline: Date.now() + this.deadlineMs},
          (error, response) => {
            if (error) reject(error); else resolve(response);
          });
    });
  }
}

BalancerClient.MAX_SYNC_MESSAGE_BYTES = MAX_SYNC_MESSAGE_BYTES;
BalancerClient.MAX_SYNC_MESSAGE_JAMS = MAX_SYNC_MESSAGE_JAMS;

module.exports = { BalancerClient };
