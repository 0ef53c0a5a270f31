'use strict';

// FrontendSession: keeps a front end's session on the balancer alive, and
// restores it when the balancer lost it (the lease ran out, or the balancer
// restarted and forgot everything). Mirrors the C++ helper
// (client/frontend_session.h).

const grpc = require('@grpc/grpc-js');

// The shortest lease there is (SyncRequest.lease_ttl_ms: at least 500), so
// keepalives never come more often than every third of it, whatever the
// clocks say.
const SHORTEST_LEASE_MS = 500;

// Whether `error` says the front end has no live session: the only
// FAILED_PRECONDITION of the API ("front end F has no live session ...:
// Sync it, then retry").
function needsResync(error) {
  return error != null && error.code === grpc.status.FAILED_PRECONDITION;
}

// What a resync asked for by a keepalive or call() gets once the session is
// stopped: nothing brings back a session that stop() left.
function stoppedError() {
  const error = new Error('the front-end session is stopped');
  error.code = grpc.status.FAILED_PRECONDITION;
  error.details = error.message;
  return error;
}

// The front end knows the truth of what it hosts: `truth()` returns (or
// resolves to) it, every jam of every pool with the users connected to it
// there, [{jamId, userIds, pool}] (pool '' or left out: the default pool).
// The session spans every pool, and with replicas every pool's leader: the
// client's sync, keepAlive and endSession reach them all. start() Syncs that truth and then sends a KeepAlive
// every third of the lease the balancer granted (never longer than asked).
// When the balancer answers FAILED_PRECONDITION (the front end has no live
// session) to a keepalive, or to a call made through call(), the session
// asks `truth` again and Syncs it, so the balancer holds exactly what the
// front end hosts; call() then retries its call once. A keepalive that fails
// otherwise (the balancer is unreachable) is reported and tried again a
// period later: after a restart on the same address that next keepalive is
// answered FAILED_PRECONDITION, and the session resyncs by itself.
//
// One Sync runs at a time; resyncs asked for while one that began after
// them is in flight share it. `truth` must not call back into the session. A
// user whose addUser is in flight while `truth` runs may be left out of the
// Sync and removed by it, so a front end should count a joining user as
// present before it calls addUser.
//
// The client's deadline bounds each call: keep it below a third of the
// lease, or one slow keepalive lets the lease run out.
//
// `onEvent(event)`, optional, is told (and must not throw; what it throws
// or rejects is ignored):
//   {type: 'resync', reason, response}   a Sync succeeded; reason is
//       'start', 'keepalive', 'call' or 'resync'; response its SyncResponse.
//   {type: 'resync-error', reason, error}  a Sync failed (or truth threw).
//   {type: 'keepalive-error', error}     a keepalive failed other than with
//       FAILED_PRECONDITION; the next one is tried a period later.
//
// The keepalive timer is unref'd: it does not keep the process alive. No
// promise the session creates on its own is ever left rejected unhandled.
class FrontendSession {
  #client;
  #leaseTtlMs;
  #truth;
  #onEvent;

  // start() and stop() run one after the other, in the order called.
  #control = Promise.resolve();
  #started = false;
  // The next keepalive's timeout, or the keepalive in flight (never both).
  #timer = null;
  #tick = null;
  // A third of the lease last granted.
  #periodMs = SHORTEST_LEASE_MS / 3;

  // Syncs are numbered as they begin; the one in flight is {number,
  // promise}. A Sync numbered above what a caller saw began after it asked.
  #syncsStarted = 0;
  #inflight = null;
  // The number and response of the latest successful Sync (0: none yet).
  #lastSynced = 0;
  #lastResponse = null;

  #syncCount = 0;
  #keepAliveCount = 0;
  #leaseExpiresUnixMs = 0;

  // REQUIRES: `client` (a BalancerClient) outlives the session and has a
  // non-empty frontendId. `leaseTtlMs` is what each Sync asks for: 0 for the
  // server's default; the server refuses less than 500.
  constructor(client, { leaseTtlMs = 0, truth, onEvent } = {}) {
    if (client == null || typeof client.sync !== 'function') {
      throw new TypeError('FrontendSession: a BalancerClient is required');
    }
    if (typeof truth !== 'function') {
      throw new TypeError('FrontendSession: option truth (a function) is required');
    }
    this.#client = client;
    this.#leaseTtlMs = leaseTtlMs;
    this.#truth = truth;
    this.#onEvent = onEvent;
  }

  // Syncs the truth and, if that succeeded, starts the keepalives. Resolves
  // to the SyncResponse; rejects with the Sync's error, and then nothing is
  // started and start may be called again. While started, it only resyncs.
  start() {
    return this.#serialize(async () => {
      const response =
          await this.#resyncAfter(this.#syncsStarted, false, 'start');
      this.#started = true;
      if (this.#timer === null && this.#tick === null) {
        this.#schedule(Date.now());
      }
      return response;
    });
  }

  // Stops the keepalives and waits for a keepalive or Sync in flight; from
  // then on call() no longer resyncs. With `endSession`, then ends the
  // session on the balancer (which removes the front end's members and
  // reservations) and resolves to the EndSessionResponse (rejects with its
  // error); else resolves to undefined, and the session on the balancer is
  // left to its lease. start() starts again.
  stop({ endSession = false } = {}) {
    return this.#serialize(async () => {
      this.#started = false;
      clearTimeout(this.#timer);
      this.#timer = null;
      await this.#tick;
      if (this.#inflight !== null) await this.#inflight.promise.catch(() => {});
      return endSession ? this.#client.endSession() : undefined;
    });
  }

  // Syncs the truth now, e.g. after the front end lost track of its presence
  // (also while stopped: that starts a session that nothing keeps alive).
  // Resolves to the SyncResponse of a Sync that began after this call.
  resync() {
    return this.#resyncAfter(this.#syncsStarted, false, 'resync');
  }

  // Runs `fn(client)`, one call of the client (e.g. c => c.addUser(jam,
  // user)), and resolves or rejects as it does. While started, a
  // FAILED_PRECONDITION rejection (no live session) resyncs and then runs
  // `fn` once more, whose outcome is the answer; if the Sync fails, the first
  // rejection is. `fn` may run twice.
  async call(fn) {
    const asked = this.#syncsStarted;
    try {
      return await fn(this.#client);
    } catch (error) {
      if (!needsResync(error)) throw error;
      try {
        await this.#resyncAfter(asked, true, 'call');
      } catch {
        throw error;
      }
      return fn(this.#client);
    }
  }

  // Whether the keepalives run (start() succeeded, stop() not called since).
  get started() {
    return this.#started;
  }

  // Successful Syncs so far (start's included).
  get syncCount() {
    return this.#syncCount;
  }

  // Successful keepalives so far.
  get keepAliveCount() {
    return this.#keepAliveCount;
  }

  // The lease as the balancer last granted it (Sync or KeepAlive), in Unix
  // milliseconds by the balancer's clock; 0 before the first Sync.
  get leaseExpiresUnixMs() {
    return this.#leaseExpiresUnixMs;
  }

  #serialize(operation) {
    const result = this.#control.then(operation);
    this.#control = result.catch(() => {});
    return result;
  }

  // Syncs the truth, unless a Sync that began after `seen` Syncs had begun
  // succeeded meanwhile (resolves to its response at once) or is in flight
  // (shares its outcome). With `onlyIfStarted`, rejects with
  // FAILED_PRECONDITION instead while stopped.
  async #resyncAfter(seen, onlyIfStarted, reason) {
    for (;;) {
      if (onlyIfStarted && !this.#started) throw stoppedError();
      if (this.#lastSynced > seen) return this.#lastResponse;
      const inflight = this.#inflight;
      if (inflight === null) break;
      if (inflight.number > seen) return inflight.promise;
      // Began before we asked: it may miss what changed since. Wait for it
      // (one Sync at a time), then look again.
      await inflight.promise.catch(() => {});
    }
    const number = ++this.#syncsStarted;
    const promise = this.#sync(number, reason);
    const inflight = {number, promise};
    this.#inflight = inflight;
    const done = () => {
      if (this.#inflight === inflight) this.#inflight = null;
    };
    promise.then(done, done);
    return promise;
  }

  // One Sync of the truth, reported to onEvent.
  async #sync(number, reason) {
    try {
      const jams = await this.#truth();
      const sent = Date.now();
      const response =
          await this.#client.sync(jams, {leaseTtlMs: this.#leaseTtlMs});
      this.#lastSynced = number;
      this.#lastResponse = response;
      ++this.#syncCount;
      this.#granted(sent, response.leaseExpiresUnixMs);
      this.#emit({type: 'resync', reason, response});
      return response;
    } catch (error) {
      this.#emit({type: 'resync-error', reason, error});
      throw error;
    }
  }

  // Records a lease granted until `expiresUnixMs` to a call sent at
  // `sentMs`: the lease actually granted (the server applies its default and
  // caps long leases), but never longer than asked, since a clock behind the
  // balancer's would stretch it.
  #granted(sentMs, expiresUnixMs) {
    this.#leaseExpiresUnixMs = expiresUnixMs;
    let lease = Math.max(expiresUnixMs - sentMs, SHORTEST_LEASE_MS);
    if (this.#leaseTtlMs > 0) lease = Math.min(lease, this.#leaseTtlMs);
    this.#periodMs = lease / 3;
  }

  // Arms the next keepalive a period after `fromMs`.
  #schedule(fromMs) {
    const delay = Math.max(0, fromMs + this.#periodMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const tick = this.#keepAlive();
      this.#tick = tick;
      tick.then(() => {
        if (this.#tick === tick) this.#tick = null;
      });
    }, delay);
    this.#timer.unref();
  }

  // One keepalive, then the next one armed while started. Never rejects.
  async #keepAlive() {
    const asked = this.#syncsStarted;
    const sent = Date.now();
    try {
      const response = await this.#client.keepAlive();
      ++this.#keepAliveCount;
      this.#granted(sent, response.leaseExpiresUnixMs);
    } catch (error) {
      if (needsResync(error)) {
        // A failed resync was reported; it is tried again at the next tick.
        await this.#resyncAfter(asked, true, 'keepalive').catch(() => {});
      } else {
        this.#emit({type: 'keepalive-error', error});
      }
    }
    if (this.#started) this.#schedule(sent);
  }

  #emit(event) {
    if (typeof this.#onEvent !== 'function') return;
    try {
      const result = this.#onEvent(event);
      if (result != null && typeof result.then === 'function') {
        result.then(undefined, () => {});
      }
    } catch {
      // onEvent must not throw; the session goes on regardless.
    }
  }
}

module.exports = { FrontendSession };
