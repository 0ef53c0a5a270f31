'use strict';

// The front end's presence truth: which of its visitors are connected to
// which jam, through which sockets. This is what the front end tells the
// balancer (Refresh of one jam, Sync of all of them), so it holds only
// visitors whose join the balancer confirmed.
//
// A visitor (user id) is in at most one jam at a time and may have several
// sockets there (the same user in two tabs, or a reload whose new socket
// opened before the old one closed); the visitor leaves the jam when its
// last socket there closes. Pure data: no I/O, no timers.
class Presence {
  constructor() {
    // jamId -> Map(userId -> Set(socket))
    this._jams = new Map();
    // userId -> jamId
    this._jamOfUser = new Map();
  }

  // The jam `userId` is connected to, or undefined.
  jamOf(userId) {
    return this._jamOfUser.get(userId);
  }

  // The sockets of `userId` in `jamId` (an empty array if none).
  socketsOf(jamId, userId) {
    const sockets = this._jams.get(jamId)?.get(userId);
    return sockets ? [...sockets] : [];
  }

  // Records `socket` of `userId` in `jamId`. REQUIRES: the user is in no
  // other jam (close its sockets there and remove them first).
  add(jamId, userId, socket) {
    const other = this._jamOfUser.get(userId);
    if (other !== undefined && other !== jamId) {
      throw new Error(`user ${userId} is still in jam ${other}`);
    }
    let users = this._jams.get(jamId);
    if (!users) {
      users = new Map();
      this._jams.set(jamId, users);
    }
    let sockets = users.get(userId);
    if (!sockets) {
      sockets = new Set();
      users.set(userId, sockets);
    }
    sockets.add(socket);
    this._jamOfUser.set(userId, jamId);
  }

  // Forgets `socket` of `userId` in `jamId`. Returns true when that was the
  // user's last socket there: the user has left the jam.
  remove(jamId, userId, socket) {
    const users = this._jams.get(jamId);
    const sockets = users?.get(userId);
    if (!sockets || !sockets.delete(socket)) return false;
    if (sockets.size > 0) return false;
    users.delete(userId);
    if (users.size === 0) this._jams.delete(jamId);
    this._jamOfUser.delete(userId);
    return true;
  }

  // The users connected to `jamId`, in byte order of their ids.
  users(jamId) {
    return [...(this._jams.get(jamId)?.keys() ?? [])].sort(byteOrder);
  }

  // Every socket connected to `jamId`.
  sockets(jamId) {
    const all = [];
    for (const sockets of this._jams.get(jamId)?.values() ?? []) {
      all.push(...sockets);
    }
    return all;
  }

  // The jams with at least one connected user.
  jamIds() {
    return [...this._jams.keys()];
  }

  // Everything this front end hosts, as Sync takes it: [{jamId, userIds}]
  // in jam id order.
  truth() {
    return this.jamIds().sort(byteOrder).map(
        (jamId) => ({jamId, userIds: this.users(jamId)}));
  }

  // The number of connected users.
  get userCount() {
    return this._jamOfUser.size;
  }
}

// Byte order of ASCII ids, as the balancer sorts them.
function byteOrder(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

module.exports = { Presence, byteOrder };
