// The page: asks its front end which jam to join (/api/jam), joins it over a
// websocket (/ws), and shows the jam's members across all front ends as the
// front end pushes them. Reconnects (with backoff) when the socket closes.

import {LOOPS, assignLoops} from '/loops.js';

// The browser's user ids, oldest first; each tab takes one that no other
// open tab holds, or makes a new one.
const IDS_KEY = 'jam-demo.user-ids';
// The id this tab took, so that a reload is the same user.
const TAB_KEY = 'jam-demo.tab-user-id';
const MAX_KEPT_IDS = 20;
// On a reload the old page may hold its id's lock a moment longer.
const RELOAD_LOCK_WAIT_MS = 2000;
const MAX_RETRY_DELAY_MS = 5000;

const $ = (selector) => document.querySelector(selector);

function newUserId() {
  const random = crypto.randomUUID ? crypto.randomUUID() :
      Math.random().toString(16).slice(2) + '0000000000';
  return 'u-' + random.replace(/-/g, '').slice(0, 10);
}

// Holds the Web Lock named after `userId` for this page's life; resolves
// false if another page holds it (after waiting up to `waitMs`).
function lockUserId(userId, waitMs) {
  return new Promise((resolve) => {
    const options = waitMs > 0 ? {signal: AbortSignal.timeout(waitMs)} :
                                 {ifAvailable: true};
    navigator.locks.request(`jam-demo.user.${userId}`, options, (lock) => {
      resolve(lock !== null);
      // Held until the page goes away.
      return lock === null ? undefined : new Promise(() => {});
    }).catch(() => resolve(false));
  });
}

// The user id of this tab: kept in localStorage (a reload, or a tab opened
// after another was closed, is the same user), one per open tab (Web Locks
// tell which ids other tabs hold).
async function claimUserId() {
  let known = [];
  try {
    known = JSON.parse(localStorage.getItem(IDS_KEY) ?? '[]');
  } catch {
    // A damaged list starts over.
  }
  let userId;
  if (!navigator.locks) {  // Not a secure context: one user per browser.
    userId = known[0] ?? newUserId();
  } else {
    const mine = sessionStorage.getItem(TAB_KEY);
    if (mine && await lockUserId(mine, RELOAD_LOCK_WAIT_MS)) userId = mine;
    for (const id of known) {
      if (userId) break;
      if (id !== mine && await lockUserId(id, 0)) userId = id;
    }
    if (!userId) {
      userId = newUserId();
      await lockUserId(userId, 0);
    }
  }
  sessionStorage.setItem(TAB_KEY, userId);
  if (!known.includes(userId)) {
    localStorage.setItem(
        IDS_KEY, JSON.stringify([...known, userId].slice(-MAX_KEPT_IDS)));
  }
  return userId;
}

function setStatus(state, detail = '') {
  $('#status').textContent = state;
  $('#status').dataset.state = state;
  $('#status-detail').textContent = detail;
}

function tile(className, label, note) {
  const li = document.createElement('li');
  li.className = className;
  li.innerHTML = '<span class="loop-name"></span><span class="who"></span>';
  li.querySelector('.loop-name').textContent = label;
  li.querySelector('.who').textContent = note;
  return li;
}

// Shows a members message: one tile per loop, played by its member or free
// (a seat held for someone counts as held); members beyond the loops last.
function showMembers(view, userId) {
  const ids = view.members.map((m) => m.userId);
  const loops = assignLoops(ids);
  const byLoop = new Map();
  const extra = [];
  for (const member of view.members) {
    const loop = loops.get(member.userId);
    if (byLoop.has(loop)) extra.push(member); else byLoop.set(loop, member);
  }
  const list = $('#members');
  list.replaceChildren();
  let held = view.reservedCount;
  const memberTile = (member, loop) => {
    const li = tile('member', LOOPS[loop].name,
                    `${member.userId} · ${member.frontendId || 'anonymous'}`);
    li.dataset.userId = member.userId;
    li.dataset.frontendId = member.frontendId;
    li.style.setProperty('--loop-color', LOOPS[loop].color);
    li.style.setProperty('--beat', `${0.45 + loop * 0.07}s`);
    if (member.userId === userId) {
      li.classList.add('you');
      $('#your-loop').textContent = LOOPS[loop].name;
      $('#your-loop').style.setProperty('--loop-color', LOOPS[loop].color);
    }
    return li;
  };
  LOOPS.forEach((loop, index) => {
    const member = byLoop.get(index);
    if (member) {
      list.append(memberTile(member, index));
    } else if (held > 0) {
      --held;
      list.append(tile('free held', loop.name, 'seat held'));
    } else {
      list.append(tile('free', loop.name, 'free'));
    }
  });
  for (const member of extra) list.append(memberTile(member, loops.get(member.userId)));
  $('#seats').textContent = `${view.members.length} of ${view.maxUsers} seats`;
}

async function run() {
  const userId = await claimUserId();
  $('#user-id').textContent = userId;
  let failures = 0;

  const retry = (why) => {
    const delay = Math.min(MAX_RETRY_DELAY_MS, 500 * 2 ** failures++);
    setStatus('disconnected', `${why}; retrying in ${delay / 1000} s`);
    setTimeout(connect, delay);
  };

  async function connect() {
    setStatus('placing', 'asking the front end for a jam');
    let placed;
    try {
      const response = await fetch(
          `/api/jam?user=${encodeURIComponent(userId)}`, {cache: 'no-store'});
      placed = await response.json();
      if (!response.ok) throw new Error(placed.error ?? `HTTP ${response.status}`);
    } catch (err) {
      retry(`no jam: ${err.message}`);
      return;
    }
    $('#frontend-id').textContent = placed.frontendId;
    setStatus('joining', `jam ${placed.jamId}`);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(
        `${scheme}://${location.host}/ws?user=${encodeURIComponent(userId)}` +
        `&jam=${encodeURIComponent(placed.jamId)}`);
    let error = '';
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'joined') {
        failures = 0;
        $('#jam-id').textContent = message.jamId;
        $('#frontend-id').textContent = message.frontendId;
        document.title = `Jam ${message.jamId.slice(0, 8)}: loops with friends`;
        setStatus('joined');
      } else if (message.type === 'members') {
        showMembers(message, userId);
      } else if (message.type === 'error') {
        error = message.message;
      }
    };
    socket.onclose = (event) => {
      if (event.code === 4001) {
        setStatus('left', 'this user joined another jam in another tab');
      } else {
        retry(error || 'the connection to the front end closed');
      }
    };
  }

  connect();
}

run();
