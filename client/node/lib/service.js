'use strict';

// Loads jambalancer.v1.JamBalancerService from the project's proto at run
// time (no generated code), once per proto file.

const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The proto of the repository this package lives in.
const DEFAULT_PROTO_PATH = path.resolve(
    __dirname, '..', '..', '..', 'proto', 'jambalancer', 'v1',
    'jam_balancer.proto');

// Messages in JavaScript: camelCase fields, 64-bit counts as Numbers (they
// stay far below 2^53), enums by name, unset fields as their defaults, and
// each oneof's case named by a virtual field (BatchResult.result is e.g.
// 'addUser').
const LOADER_OPTIONS = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

const services = new Map();

// The generated client constructor of JamBalancerService (a subclass of
// grpc.Client) for the proto at `protoPath` (default: the repository's).
// Throws if the file cannot be read or parsed.
function loadService(protoPath = DEFAULT_PROTO_PATH) {
  const resolved = path.resolve(protoPath);
  let service = services.get(resolved);
  if (!service) {
    const definition = protoLoader.loadSync(resolved, LOADER_OPTIONS);
    service = grpc.loadPackageDefinition(definition)
                  .jambalancer.v1.JamBalancerService;
    services.set(resolved, service);
  }
  return service;
}

module.exports = { DEFAULT_PROTO_PATH, LOADER_OPTIONS, loadService };
