'use strict';

// How sync splits a truth into messages, checked against the real encoding
// of SyncRequest (no server needed).

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { loadService } = require('../../../client/node/lib/service');
const {
  MAX_SYNC_MESSAGE_BYTES,
  MAX_SYNC_MESSAGE_JAMS,
  jamEntrySize,
  syncMessages,
} = require('../../../client/node/lib/sync_messages');

const serialize = loadService().service.Sync.requestSerialize;

function jam(index, users, idBytes = 8) {
  const userIds = [];
  for (let u = 0; u < users; ++u) {
    userIds.push(`u${index}-${u}-`.padEnd(idBytes, 'x'));
  }
  return {jamId: `jam-${index}`, userIds};
}

// The messages for `jams`, each checked to keep the limits when encoded, and
// to be no larger than the size the split counted for it.
function split(jams, frontendId = 'fe-a', leaseTtlMs = 10000) {
  const messages = [...syncMessages(frontendId, leaseTtlMs, jams)];
  for (const message of messages) {
    assert.ok(message.jams.length <= MAX_SYNC_MESSAGE_JAMS);
    if (message.jams.length > 1) {
      assert.ok(serialize(message).length <= MAX_SYNC_MESSAGE_BYTES,
          `a message of ${serialize(message).length} bytes`);
    }
  }
  // Every jam, in order, exactly once.
  assert.deepEqual(messages.flatMap((m) => m.jams), jams);
  return messages;
}

test('the first message names the front end and the lease, the others do not', () => {
  const messages = split(Array.from({length: 2500}, (_, i) => jam(i, 3)));
  assert.equal(messages.length, 3);
  assert.equal(messages[0].frontendId, 'fe-a');
  assert.equal(messages[0].leaseTtlMs, 10000);
  for (const message of messages.slice(1)) {
    assert.deepEqual(Object.keys(message), ['jams']);
  }
  assert.deepEqual(messages.map((m) => m.jams.length), [1000, 1000, 500]);
});

test('an empty truth is one message', () => {
  const messages = split([]);
  assert.equal(messages.length, 1);
  assert.deepEqual(messages[0], {frontendId: 'fe-a', leaseTtlMs: 10000, jams: []});
});

test('messages stay within 1 MiB, filled close to it', () => {
  // 100 jams of 1000 users with 120-byte ids: about 122 KB a jam.
  const jams = Array.from({length: 100}, (_, i) => jam(i, 1000, 120));
  const messages = split(jams);
  assert.ok(messages.length >= 12, `${messages.length} messages`);
  for (const message of messages.slice(0, -1)) {
    const bytes = serialize(message).length;
    assert.ok(bytes > MAX_SYNC_MESSAGE_BYTES - 130000, `only ${bytes} bytes`);
  }
});

test('the size counted is the encoded size, multi-byte UTF-8 included', () => {
  // Ids of 3-byte characters: a count of characters would let messages
  // grow to three times the limit.
  const jams = Array.from({length: 30}, (_, i) => ({
    jamId: `jam-${i}`,
    userIds: Array.from({length: 1000}, (_, u) => `${u}-`.padEnd(40, '\u266b')),
  }));
  const messages = split(jams);
  assert.ok(messages.length >= 4, `${messages.length} messages`);
});

test('the size counted for a jam is its encoded size', () => {
  for (const sample of [jam(0, 0), jam(1, 1), jam(2, 1024, 128),
    {jamId: 'j\u266b', userIds: ['\u00e9', 'x'.repeat(200)]},
    {jamId: 'j1', userIds: ['ann'], pool: 'rock\u266b'}]) {
    assert.equal(jamEntrySize(sample), serialize({jams: [sample]}).length);
  }
});

test('a jam\'s pool goes with it; the default pool takes no bytes', () => {
  const jams = [
    {jamId: 'j1', userIds: ['ann'], pool: 'rock'},
    {jamId: 'j1', userIds: ['bob'], pool: ''},
    {jamId: 'j2', userIds: ['cat']},
  ];
  const [message] = [...syncMessages('fe-a', 10000, jams)];
  assert.deepEqual(message.jams, [
    {jamId: 'j1', userIds: ['ann'], pool: 'rock'},
    {jamId: 'j1', userIds: ['bob']},
    {jamId: 'j2', userIds: ['cat']},
  ]);
  assert.equal(jamEntrySize(jams[1]), jamEntrySize({jamId: 'j1', userIds: ['bob']}));
  assert.equal(jamEntrySize(jams[0]), serialize({jams: [jams[0]]}).length);
});

test('a jam larger than the limit goes alone', () => {
  const huge = jam(1, 5000, 250);  // About 1.3 MB.
  const messages = split([jam(0, 2), huge, jam(2, 2)]);
  assert.equal(messages.length, 3);
  assert.deepEqual(messages[1].jams, [huge]);
  assert.ok(serialize(messages[1]).length > MAX_SYNC_MESSAGE_BYTES);
});

test('an anonymous front end without a lease sends neither field', () => {
  const [message] = split([jam(0, 1)], '', 0);
  assert.equal(serialize(message).length,
      serialize({jams: message.jams}).length);
});
