#!/usr/bin/env node
'use strict';

// A demo jam front end: a small web server whose page puts each visitor into
// a jam placed by the jam balancer, and shows the jam's members across all
// front ends. See README.md, "Try it: two front ends in a browser".
//
//   node examples/frontend/server.js --balancer=127.0.0.1:50051 \
//       --frontend-id=fe-a --port=8080
//
// Prints "listening on http://HOST:PORT" on stdout once its session on the
// balancer is up and it serves; logs one line per event on stderr. SIGTERM
// or SIGINT ends the session (the balancer removes its visitors at once),
// closes the sockets and exits 0.
//
// HTTP:
//   GET /                 the page (public/)
//   GET /api/jam?user=U   the jam U should join: {jamId, newJam, frontendId}
//   GET /api/truth        what this front end hosts: {frontendId, jams:
//                         [{jamId, userIds}]} (its presence truth)
//   GET /healthz          "ok"
//   WS  /ws?user=U&jam=J  joins U to J (or where the balancer redirects);
//                         the server sends {type: 'joined', jamId, userId,
//                         frontendId}, then {type: 'members', jamId,
//                         members: [{userId, frontendId}], reservedCount,
//                         maxUsers} whenever the members change, or
//                         {type: 'error', message} before it closes.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { WebSocketServer } = require('ws');
const { BalancerClient, FrontendSession } = require('jam-balancer-client');

const { JamHost, describe } = require('./jam_host');
const { createLog } = require('./log');
const { Presence } = require('./presence');

const USAGE = `Usage: node server.js [--balancer=HOST:PORT] [--frontend-id=ID]
    [--host=ADDRESS] [--port=N] [--lease-ms=N] [--hold-seat-ms=N] [--poll-ms=N]

  --balancer      the jam balancer's gRPC address (default 127.0.0.1:50051)
  --frontend-id   this front end's id on the balancer (default fe-PID)
  --host          address to serve on (default 127.0.0.1)
  --port          port to serve on; 0 picks a free one (default 8080)
  --lease-ms      the session's lease; it is kept alive every third of it
                  (default 10000)
  --hold-seat-ms  how long a leaving visitor's seat stays held for a reload
                  (default 5000)
  --poll-ms       how often the jams' member lists are fetched (default 400)`;

const DEFAULTS = {
  'balancer': '127.0.0.1:50051',
  'frontend-id': `fe-${process.pid}`,
  'host': '127.0.0.1',
  'port': '8080',
  'lease-ms': '10000',
  'hold-seat-ms': '5000',
  'poll-ms': '400',
};

// The longest a call to the balancer may take, and at most a third of the
// lease, so that one slow keepalive cannot let the lease run out.
const MAX_DEADLINE_MS = 5000;
// Between attempts to start the session while the balancer is unreachable.
const START_RETRY_MS = 1000;
// Sockets are pinged this often; one that missed the last pong is dropped.
const HEARTBEAT_MS = 15000;
// On SIGTERM, the longest EndSession may take before the process exits.
const SHUTDOWN_TIMEOUT_MS = 3000;
// User and jam ids, as the balancer takes them.
const MAX_ID_BYTES = 128;

const STATIC_FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/loops.js': ['loops.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

function parseFlags(argv) {
  const flags = {...DEFAULTS};
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match || !(match[1] in DEFAULTS)) usageError(`unknown argument ${arg}`);
    flags[match[1]] = match[2];
  }
  const number = (name, min) => {
    const value = Number(flags[name]);
    if (!Number.isInteger(value) || value < min) {
      usageError(`--${name} must be a whole number of at least ${min}`);
    }
    return value;
  };
  if (!validId(flags['frontend-id'])) {
    usageError('--frontend-id must be 1 to 128 bytes without control characters');
  }
  return {
    balancer: flags['balancer'],
    frontendId: flags['frontend-id'],
    host: flags['host'],
    port: number('port', 0),
    leaseMs: number('lease-ms', 500),
    holdSeatMs: number('hold-seat-ms', 0),
    pollMs: number('poll-ms', 50),
  };
}

function usageError(message) {
  process.stderr.write(`server.js: ${message}\n${USAGE}\n`);
  process.exit(2);
}

// 1 to 128 bytes of UTF-8 without control characters, as the balancer
// checks ids.
function validId(id) {
  return typeof id === 'string' && id.length > 0 &&
      Buffer.byteLength(id) <= MAX_ID_BYTES && !/[\x00-\x1f\x7f]/.test(id);
}

function readStaticFiles() {
  const files = new Map();
  for (const [route, [name, type]] of Object.entries(STATIC_FILES)) {
    files.set(route, {
      body: fs.readFileSync(path.join(__dirname, 'public', name)),
      type,
    });
  }
  return files;
}

function sendJson(res, code, value) {
  res.writeHead(code, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  });
  res.end(JSON.stringify(value));
}

async function main() {
  const options = parseFlags(process.argv.slice(2));
  const log = createLog();
  const files = readStaticFiles();

  const client = new BalancerClient({
    target: options.balancer,
    frontendId: options.frontendId,
    deadlineMs: Math.min(MAX_DEADLINE_MS, Math.floor(options.leaseMs / 3)),
    // Reconnect soon after a balancer restart (gRPC's default backoff grows
    // to minutes).
    channelOptions: {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 1000,
    },
  });
  const presence = new Presence();
  // Keepalive failures are logged once per outage (until a keepalive or a
  // Sync succeeds), not once per period.
  let keepAlivesAtFailure = -1;
  const session = new FrontendSession(client, {
    leaseTtlMs: options.leaseMs,
    truth: () => presence.truth(),
    onEvent: (event) => {
      if (event.type === 'resync') {
        const {jamCount, userCount} = event.response;
        log.info(`session synced (${event.reason}): ${userCount} users in ` +
                 `${jamCount} jams`);
        keepAlivesAtFailure = -1;
      } else if (event.type === 'resync-error' && event.reason !== 'start') {
        // (Failed starts are reported by the start loop below.)
        log.error(`session sync (${event.reason}) failed: ` +
                  describe(event.error));
      } else if (event.type === 'keepalive-error') {
        if (keepAlivesAtFailure !== session.keepAliveCount) {
          keepAlivesAtFailure = session.keepAliveCount;
          log.warn(`keepalive failed: ${describe(event.error)} (retried ` +
                   'every third of the lease)');
        }
      }
    },
  });
  const host = new JamHost({
    client,
    session,
    presence,
    holdSeatMs: options.holdSeatMs,
    pollMs: options.pollMs,
    log,
  });

  let stopping = false;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const file = files.get(url.pathname);
    if (req.method !== 'GET') {
      res.writeHead(405, {allow: 'GET'}).end();
    } else if (file) {
      res.writeHead(200, {'content-type': file.type, 'cache-control': 'no-store'});
      res.end(file.body);
    } else if (url.pathname === '/api/jam') {
      const userId = url.searchParams.get('user');
      if (!validId(userId)) {
        sendJson(res, 400, {error: 'user must be 1 to 128 bytes without control characters'});
        return;
      }
      if (stopping) {
        sendJson(res, 503, {error: 'front end shutting down'});
        return;
      }
      host.place(userId).then(
          ({jamId, newJam}) =>
            sendJson(res, 200, {jamId, newJam, frontendId: options.frontendId}),
          (err) => {
            log.error(`CurrentJam for user ${userId} failed: ${describe(err)}`);
            sendJson(res, 503, {error: `the balancer failed: ${describe(err)}`});
          });
    } else if (url.pathname === '/api/truth') {
      sendJson(res, 200, {frontendId: options.frontendId, jams: presence.truth()});
    } else if (url.pathname === '/healthz') {
      res.writeHead(200, {'content-type': 'text/plain'}).end('ok');
    } else {
      res.writeHead(404, {'content-type': 'text/plain'}).end('not found');
    }
  });

  const sockets = new WebSocketServer({server, path: '/ws'});
  sockets.on('connection', (socket, req) => {
    const query = new URL(req.url, 'http://localhost').searchParams;
    const userId = query.get('user');
    const wantedJam = query.get('jam');
    const fail = (message, code = 1011) => {
      socket.send(JSON.stringify({type: 'error', message}));
      socket.close(code, message.slice(0, 120));
    };
    if (!validId(userId) || !validId(wantedJam)) {
      fail('user and jam must be 1 to 128 bytes without control characters', 1008);
      return;
    }
    socket.alive = true;
    socket.on('pong', () => { socket.alive = true; });
    let joinedJam = null;
    socket.on('close', () => {
      if (joinedJam !== null) host.leave(joinedJam, userId, socket);
    });
    socket.on('error', (err) => log.warn(`socket of user ${userId}: ${err.message}`));
    const started = Date.now();
    host.join(wantedJam, userId, socket).then((jamId) => {
      if (jamId === null) return;  // Closed meanwhile; it has left.
      joinedJam = jamId;
      log.info(`user ${userId} joined jam ${jamId} in ${Date.now() - started} ms ` +
               `(${presence.users(jamId).length} here)`);
      socket.send(JSON.stringify({type: 'joined', jamId, userId,
                                  frontendId: options.frontendId}));
    }, (err) => {
      log.error(`join of user ${userId} to jam ${wantedJam} failed: ${describe(err)}`);
      if (socket.readyState === socket.OPEN) fail(`joining failed: ${describe(err)}`);
    });
  });
  const heartbeat = setInterval(() => {
    for (const socket of sockets.clients) {
      if (!socket.alive) {
        socket.terminate();
        continue;
      }
      socket.alive = false;
      socket.ping();
    }
  }, HEARTBEAT_MS);

  const shutdown = async (signal) => {
    if (stopping) return;
    stopping = true;
    log.info(`received ${signal}: ending the session, closing ` +
             `${sockets.clients.size} sockets`);
    host.stop();
    clearInterval(heartbeat);
    for (const socket of sockets.clients) {
      socket.close(1001, 'front end shutting down');
    }
    server.close();
    const timeout = new Promise((resolve) => {
      setTimeout(() => resolve('timeout'), SHUTDOWN_TIMEOUT_MS).unref();
    });
    try {
      const ended = await Promise.race(
          [session.stop({endSession: true}), timeout]);
      if (ended === 'timeout') {
        log.warn(`EndSession took over ${SHUTDOWN_TIMEOUT_MS} ms; the ` +
                 'balancer drops this front end when its lease runs out');
      } else {
        log.info(`session ended: the balancer removed ${ended.removedUserCount} users`);
      }
    } catch (err) {
      log.warn(`EndSession failed: ${describe(err)}; the balancer drops this ` +
               'front end when its lease runs out');
    }
    client.close();
    log.info('front end stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // The session first: a front end without one could place nobody.
  for (let attempt = 1; !stopping; ++attempt) {
    try {
      await session.start();
      break;
    } catch (err) {
      if (attempt === 1) {
        log.warn(`balancer ${options.balancer} not ready (${describe(err)}); ` +
                 `retrying every ${START_RETRY_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, START_RETRY_MS));
    }
  }
  if (stopping) return;
  host.startPolling();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const {port} = server.address();
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  log.info(`front end ${options.frontendId} serving on port ${port}, balancer ` +
           `${options.balancer}, lease ${options.leaseMs} ms, seats held ` +
           `${options.holdSeatMs} ms`);
  process.stdout.write(`listening on http://${shownHost}:${port}\n`);
}

main().catch((err) => {
  process.stderr.write(`server.js: ${err.stack ?? err}\n`);
  process.exit(1);
});
