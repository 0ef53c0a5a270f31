'use strict';

// jam-balancer-client: the Node.js client of the jam balancer for front-end
// servers (websocket servers). See README.md.
//
//   const { BalancerClient, FrontendSession, status } =
//       require('jam-balancer-client');
//
// BalancerClient makes every RPC of jambalancer.v1.JamBalancerService as a
// Promise; FrontendSession keeps a front end's session alive and resyncs it
// after the balancer lost it; `status` is @grpc/grpc-js's table of status
// codes, to compare with a rejected call's `err.code`.

const grpc = require('@grpc/grpc-js');

const { BalancerClient } = require('./lib/balancer_client');
const { FrontendSession } = require('./lib/frontend_session');

module.exports = { BalancerClient, FrontendSession, status: grpc.status };
