'use strict';

// JamHost: what the demo front end says to the balancer about its visitors,
// following the README's "Recommended front-end protocol".
//
// - place(user): CurrentJam with the user's id (a seat is reserved there).
// - join(jam, user, socket): AddUser, following redirects; once the balancer
//   confirmed it, the socket counts in the presence truth.
// - leave(jam, user, socket): when a user's last socket in a jam closes,
//   RemoveUser with a held seat, so that a reload lands in the same jam.
// - After every join and leave, Refresh of that jam with this front end's
//   users there (its presence truth; scoped to its front-end id). A jam whose
//   AddUser or Refresh failed (a timeout: it may or may not have happened)
//   is refreshed again at the next poll.
// - Every pollMs, GetJam of each jam it hosts; a changed member list (all
//   front ends' members) is pushed to the jam's sockets. When GetJam
//   answers again after failing, a keepalive checks the session at once (the
//   balancer may have restarted).
//
// Every call that names the front end goes through FrontendSession.call, so
// a lost session (balancer restart, lapsed lease) is answered by a Sync of
// the presence truth and one retry. The calls about one jam run one after
// another, so a Refresh never overtakes the AddUser or RemoveUser before it.

const { status } = require('jam-balancer-client');

// Redirects followed by one join before it gives up.
const MAX_REDIRECTS = 3;

class JamHost {
  // REQUIRES: `session` is a FrontendSession of `client`, whose truth is
  // `presence.truth()`.
  constructor({client, session, presence, holdSeatMs, pollMs, log}) {
    this._client = client;
    this._session = session;
    this._presence = presence;
    this._holdSeatMs = holdSeatMs;
    this._pollMs = pollMs;
    this._log = log;
    // jamId -> the tail of the jam's chain of calls.
    this._chains = new Map();
    // Jams with a Refresh queued that has not started yet.
    this._refreshQueued = new Set();
    // Jams the balancer may hold otherwise than the presence says: refreshed
    // at the next poll.
    this._unsure = new Set();
    // jamId -> the last member list pushed to its sockets (JSON).
    this._views = new Map();
    this._pollTimer = null;
    this._polling = false;
    this._balancerDown = false;
    this._stopping = false;
  }

  // The jam `userId` should join: CurrentJam with the user's id, which
  // reserves a seat there (or answers the jam where the user is a member or
  // holds a seat). -> {jamId, newJam}
  async place(userId) {
    const answer = await this._session.call((c) => c.currentJam(userId));
    return {jamId: answer.jamId, newJam: answer.newJam};
  }

  // Adds `userId` to `jamId` on the balancer (to the jam it redirects to, if
  // that one is full) and counts `socket` there. Returns the jam joined, or
  // null if the socket closed meanwhile (the user then leaves at once).
  // Rejects with the balancer's error, or when redirects do not end.
  async join(jamId, userId, socket) {
    for (let redirects = 0; ; ++redirects) {
      let answer;
      try {
        answer = await this._inOrder(
            jamId, () => this._session.call((c) => c.addUser(jamId, userId)));
      } catch (err) {
        this._unsure.add(jamId);
        throw err;
      }
      if (answer.added) break;
      if (redirects === MAX_REDIRECTS || !answer.redirectJamId) {
        throw new Error(`AddUser refused user ${userId} after ${redirects} ` +
                        `redirects (last jam ${jamId})`);
      }
      this._log.info(`user ${userId}: jam ${jamId} is full, redirected to ` +
                     `${answer.redirectJamId}`);
      jamId = answer.redirectJamId;
    }
    if (this._stopping) return null;  // EndSession removes everyone.
    if (socket.readyState !== socket.OPEN) {
      this._removeFromBalancer(jamId, userId);
      return null;
    }
    // A user is in one jam: its sockets in another jam here are closed.
    const previous = this._presence.jamOf(userId);
    if (previous !== undefined && previous !== jamId) {
      for (const old of this._presence.socketsOf(previous, userId)) {
        this._presence.remove(previous, userId, old);
        old.close(4001, 'joined another jam');
      }
      this._queueRefresh(previous);
    }
    this._presence.add(jamId, userId, socket);
    this._queueRefresh(jamId);
    // The new member list at once, not at the next poll.
    this._views.delete(jamId);
    this._pollJam(jamId);
    return jamId;
  }

  // `socket` of `userId` in `jamId` closed. When it was the user's last one
  // there, the user leaves the jam (its seat held for a reload).
  leave(jamId, userId, socket) {
    if (!this._presence.remove(jamId, userId, socket)) return;
    this._log.info(`user ${userId} left jam ${jamId}`);
    if (this._stopping) return;  // EndSession removes everyone at once.
    this._removeFromBalancer(jamId, userId);
  }

  // Starts pushing member lists every pollMs.
  startPolling() {
    this._pollTimer = setInterval(() => this._poll(), this._pollMs);
  }

  // Stops polling and the calls for leaving users (the front end shuts down
  // and ends its session).
  stop() {
    this._stopping = true;
    clearInterval(this._pollTimer);
  }

  _removeFromBalancer(jamId, userId) {
    this._inOrder(jamId, () => this._session.call(
        (c) => c.removeUser(jamId, userId, {holdSeatMs: this._holdSeatMs})))
        .catch((err) => this._log.error(
            `RemoveUser of user ${userId} in jam ${jamId} failed: ` +
            describe(err)));
    this._queueRefresh(jamId);
  }

  // Queues a Refresh of `jamId` with this front end's users there, unless
  // one is queued already (it will read the presence when it runs).
  _queueRefresh(jamId) {
    if (this._stopping || this._refreshQueued.has(jamId)) return;
    this._refreshQueued.add(jamId);
    this._inOrder(jamId, () => {
      this._refreshQueued.delete(jamId);
      const users = this._presence.users(jamId);
      return this._session.call((c) => c.refresh(jamId, users));
    }).catch((err) => {
      this._unsure.add(jamId);
      this._log.error(`Refresh of jam ${jamId} failed (retried at the next ` +
                      `poll): ${describe(err)}`);
    });
  }

  // Runs `call` after the calls queued before it for `jamId`.
  _inOrder(jamId, call) {
    const before = this._chains.get(jamId) ?? Promise.resolve();
    const result = before.then(call);
    const tail = result.catch(() => {});
    this._chains.set(jamId, tail);
    tail.then(() => {
      if (this._chains.get(jamId) === tail) this._chains.delete(jamId);
    });
    return result;
  }

  async _poll() {
    if (this._polling) return;  // The last round is still waiting.
    this._polling = true;
    try {
      for (const jamId of this._unsure) this._queueRefresh(jamId);
      this._unsure.clear();
      const jamIds = this._presence.jamIds();
      for (const jamId of this._views.keys()) {
        if (!jamIds.includes(jamId)) this._views.delete(jamId);
      }
      await Promise.all(jamIds.map((jamId) => this._pollJam(jamId)));
    } finally {
      this._polling = false;
    }
  }

  // Fetches `jamId`'s members (all front ends') and pushes them to its
  // sockets here if they changed.
  async _pollJam(jamId) {
    let jam;
    try {
      jam = await this._client.getJam(jamId);
    } catch (err) {
      if (!this._balancerDown) {
        this._balancerDown = true;
        this._log.warn(`balancer unreachable: GetJam failed: ${describe(err)}`);
      }
      return;
    }
    if (this._balancerDown) {
      this._balancerDown = false;
      this._log.info('balancer answers GetJam again');
      // It may have restarted and forgotten this front end: a keepalive now
      // tells (FAILED_PRECONDITION resyncs) without waiting for the next
      // period.
      this._session.call((c) => c.keepAlive()).catch((err) => this._log.error(
          `keepalive after the outage failed: ${describe(err)}`));
    }
    // Until the balancer lists every user here (after its restart, before
    // this front end resynced), keep showing the last list.
    const listed = new Set(jam.members.filter(
        (m) => m.frontendId === this._client.frontendId).map((m) => m.userId));
    if (!this._presence.users(jamId).every((u) => listed.has(u))) return;
    const view = JSON.stringify({
      type: 'members',
      jamId,
      members: jam.members.map(({userId, frontendId}) => ({userId, frontendId})),
      reservedCount: jam.reservedCount,
      maxUsers: jam.maxUsers,
    });
    if (this._views.get(jamId) === view) return;
    this._views.set(jamId, view);
    for (const socket of this._presence.sockets(jamId)) {
      if (socket.readyState === socket.OPEN) socket.send(view);
    }
  }
}

// A balancer error in one line: the gRPC status name and its message.
function describe(err) {
  if (err && typeof err.code === 'number') {
    const name = Object.keys(status).find((k) => status[k] === err.code);
    // grpc-js ends some messages with an empty "Resolution note: ".
    const details = String(err.details ?? err.message)
        .replace(/\s*Resolution note:\s*$/, '');
    return `${name ?? err.code}: ${details}`;
  }
  return String(err && err.message ? err.message : err);
}

module.exports = { JamHost, describe };
