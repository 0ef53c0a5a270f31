'use strict';

// Splits a front end's truth into the messages of one Sync stream, by the
// same rule as the C++ client (BalancerClient::kMaxSyncMessageBytes): a
// message holds at most MAX_SYNC_MESSAGE_BYTES encoded bytes or
// MAX_SYNC_MESSAGE_JAMS jams, whichever comes first, so that a front end of
// any size stays below gRPC's message limit (4 MB by default). A single jam
// larger than that (beyond the server's limit of users per jam) goes alone.

const MAX_SYNC_MESSAGE_BYTES = 1 << 20;
const MAX_SYNC_MESSAGE_JAMS = 1000;

// Bytes of `value` (a non-negative integer) as a protobuf varint.
function varintSize(value) {
  let size = 1;
  for (let rest = value; rest >= 128; rest = Math.floor(rest / 128)) ++size;
  return size;
}

// Bytes of a length-delimited field of `length` bytes with a one-byte tag.
function fieldSize(length) {
  return 1 + varintSize(length) + length;
}

function utf8Length(value) {
  return Buffer.byteLength(String(value), 'utf8');
}

// Bytes that `jam` ({jamId, userIds, pool}) takes as an entry of
// SyncRequest.jams. Like the C++ client, it counts an empty jam id as a
// field, so it is never below the real size; an empty pool takes no bytes.
function jamEntrySize(jam) {
  let size = fieldSize(utf8Length(jam.jamId ?? ''));
  for (const userId of jam.userIds ?? []) size += fieldSize(utf8Length(userId));
  const pool = jam.pool ?? '';
  if (pool !== '') size += fieldSize(utf8Length(pool));
  return fieldSize(size);
}

// A SyncRequest holding `frontendId` and `leaseTtlMs` where they are set
// (not empty or 0), and no jams yet. Fields left out take no bytes; the
// serializer would write an empty string or a 0 that is present.
function emptyMessage(frontendId, leaseTtlMs) {
  const message = {};
  if (frontendId) message.frontendId = frontendId;
  if (leaseTtlMs > 0) message.leaseTtlMs = leaseTtlMs;
  message.jams = [];
  return message;
}

// Yields the SyncRequest messages ({frontendId, leaseTtlMs, jams}) for
// `jams`, an array of {jamId, userIds, pool} (pool optional: empty or left
// out is the default pool). The first message names the front end and the
// lease, also when there are no jams; the others carry jams only. A jam's
// userIds array is sent as given, not copied.
function* syncMessages(frontendId, leaseTtlMs, jams) {
  let message = emptyMessage(frontendId, leaseTtlMs);
  let bytes = (frontendId ? fieldSize(utf8Length(frontendId)) : 0) +
      (leaseTtlMs > 0 ? 1 + varintSize(leaseTtlMs) : 0);
  for (const jam of jams) {
    const jamBytes = jamEntrySize(jam);
    if (message.jams.length > 0 &&
        (message.jams.length === MAX_SYNC_MESSAGE_JAMS ||
         bytes + jamBytes > MAX_SYNC_MESSAGE_BYTES)) {
      yield message;
      message = emptyMessage('', 0);
      bytes = 0;
    }
    const entry = {jamId: jam.jamId ?? '', userIds: jam.userIds ?? []};
    if ((jam.pool ?? '') !== '') entry.pool = jam.pool;
    message.jams.push(entry);
    bytes += jamBytes;
  }
  yield message;
}

module.exports = {
  MAX_SYNC_MESSAGE_BYTES,
  MAX_SYNC_MESSAGE_JAMS,
  jamEntrySize,
  syncMessages,
};
