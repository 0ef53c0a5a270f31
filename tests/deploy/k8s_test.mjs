// The Kubernetes base (deploy/k8s): `kubectl kustomize` renders it, every
// rendered object passes the Kubernetes schemas (npm kubernetes-models and
// @kubernetes-models/prometheus-operator: types and required fields, then
// TypeScript's check of the same objects against the models' types, which
// refuses unknown fields), the objects agree with each other, and the
// Deployment's arguments with its ConfigMap start the real server.
//
// Usage: node k8s_test.mjs --server=PATH --jamctl=PATH [--kubectl=PATH]

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  DEPLOY,
  ROOT,
  check,
  options,
  parseYaml,
  parseYamlAll,
  readText,
  requireTool,
  run,
  startServer,
  tempDir,
  which,
} from "./lib.mjs";

const opts = options();
const kubectl = opts.kubectl || which("kubectl");

// The models of every kind the base may render, with the TypeScript type of
// its data.
const MODELS = {
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "IConfigMap"],
  "v1/Service": ["kubernetes-models/v1/Service", "IService"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "IDeployment"],
  "networking.k8s.io/v1/NetworkPolicy": ["kubernetes-models/networking.k8s.io/v1/NetworkPolicy", "INetworkPolicy"],
  "monitoring.coreos.com/v1/ServiceMonitor": [
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    "IServiceMonitor",
  ],
  "monitoring.coreos.com/v1/PrometheusRule": [
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
    "IPrometheusRule",
  ],
};

function render() {
  assert.ok(kubectl, "kubectl not found: tools/install-deps.sh installs Debian's kubernetes-client");
  return parseYamlAll(check(kubectl, ["kustomize", path.join(DEPLOY, "k8s")], { timeoutMs: 60_000 }), "kustomize");
}

const objects = render();
const byKind = (kind) => {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind} rendered`);
  return found[0];
};
const matches = (selector, labels) =>
  Object.entries(selector).every(([key, value]) => labels?.[key] === value);

test("renders exactly the expected kinds", () => {
  assert.deepEqual(
    objects.map((o) => o.kind).sort(),
    ["ConfigMap", "Deployment", "NetworkPolicy", "PrometheusRule", "Service", "ServiceMonitor"],
  );
});

test("every object passes its schema (types, required fields)", () => {
  for (const object of objects) {
    const key = `${object.apiVersion}/${object.kind}`;
    assert.ok(MODELS[key], `no model for ${key}`);
    const module = requireTool(MODELS[key][0]);
    const Model = module[object.kind];
    assert.doesNotThrow(() => new Model(object).validate(), `${key} ${object.metadata?.name}`);
  }
});

test("the schema check catches a wrong type and a missing field", () => {
  const { Deployment } = requireTool(MODELS["apps/v1/Deployment"][0]);
  const deployment = structuredClone(byKind("Deployment"));
  deployment.spec.replicas = "1";
  assert.throws(() => new Deployment(deployment).validate(), /replicas/);
  const nameless = structuredClone(byKind("Deployment"));
  delete nameless.spec.template.spec.containers[0].name;
  assert.throws(() => new Deployment(nameless).validate(), /name/);
});

// Writes each object as a typed TypeScript constant and type-checks the file:
// an object literal may only name known fields, at every depth. Returns the
// compiler's complaints, each with the offending line.
function typeCheck(list) {
  const dir = tempDir("deploy-k8s-ts-");
  const lines = [];
  list.forEach((object, i) => {
    const [module, type] = MODELS[`${object.apiVersion}/${object.kind}`];
    lines.push(`import type { ${type} as T${i} } from "${module}";`);
  });
  list.forEach((object, i) => {
    lines.push(`// ${object.kind} ${object.metadata?.name}`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(object, null, 2)};`);
  });
  const source = lines.join("\n");
  writeFileSync(path.join(dir, "objects.ts"), `${source}\n`);
  writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        baseUrl: path.join(ROOT, "tools", "node_modules"),
        paths: { "*": ["*"] },
        types: [],
        module: "commonjs",
        moduleResolution: "node",
        target: "es2020",
        skipLibCheck: true,
      },
      files: ["objects.ts"],
    }),
  );
  const tsc = path.join(ROOT, "tools", "node_modules", ".bin", "tsc");
  const result = run(tsc, ["-p", dir], { timeoutMs: 90_000 });
  const sourceLines = source.split("\n");
  return result.stdout
    .split("\n")
    .filter((line) => line.includes("error TS"))
    .map((line) => {
      const at = /\((\d+),\d+\)/.exec(line);
      return at ? `${line}\n    at: ${sourceLines[Number(at[1]) - 1].trim()}` : line;
    });
}

test("every object names only fields its schema knows", () => {
  assert.deepEqual(typeCheck(objects), []);
});

test("the field check catches a misspelt field", () => {
  const deployment = structuredClone(byKind("Deployment"));
  deployment.spec.template.spec.containers[0].readinessProbe.grpc.prot = 1;
  const complaints = typeCheck([deployment]);
  assert.equal(complaints.length, 1, complaints.join("\n"));
  assert.match(complaints[0], /'"prot"' does not exist/);
});

test("Deployment: one replica, Recreate, restricted, probed over gRPC", () => {
  const deployment = byKind("Deployment");
  const { spec } = deployment;
  assert.equal(spec.replicas, 1);
  assert.equal(spec.strategy.type, "Recreate");
  assert.ok(matches(spec.selector.matchLabels, spec.template.metadata.labels));
  const pod = spec.template.spec;
  assert.equal(pod.containers.length, 1);
  const [container] = pod.containers;
  const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
  assert.deepEqual(ports, { grpc: 50051, metrics: 9464 });
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.deepEqual(probe.grpc, { port: ports.grpc });
  }
  // Pod Security Standards, "restricted" profile.
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
  // The user the image was built with.
  const [, uid, gid] = /^USER (\d+):(\d+)$/m.exec(readText("deploy/docker/Dockerfile"));
  assert.deepEqual([pod.securityContext.runAsUser, pod.securityContext.runAsGroup], [Number(uid), Number(gid)]);
  const security = container.securityContext;
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.deepEqual(security.capabilities.drop, ["ALL"]);
  assert.equal(security.privileged ?? false, false);
  assert.equal(pod.hostNetwork ?? false, false);
  for (const kind of ["requests", "limits"]) {
    assert.ok(container.resources[kind].cpu, `${kind}.cpu`);
    assert.ok(container.resources[kind].memory, `${kind}.memory`);
  }
  // The listen flags agree with the container ports.
  assert.ok(container.args.includes(`--listen=0.0.0.0:${ports.grpc}`), container.args.join(" "));
  assert.ok(container.args.includes(`--metrics_listen=0.0.0.0:${ports.metrics}`), container.args.join(" "));
});

test("Deployment: the flags come from the generated ConfigMap", () => {
  const configMap = byKind("ConfigMap");
  const pod = byKind("Deployment").spec.template.spec;
  const [container] = pod.containers;
  const volume = pod.volumes.find((v) => v.configMap?.name === configMap.metadata.name);
  assert.ok(volume, `a volume of ConfigMap ${configMap.metadata.name}`);
  const mount = container.volumeMounts.find((m) => m.name === volume.name);
  assert.ok(mount?.readOnly);
  const flagfile = container.args.find((a) => a.startsWith("--flagfile="));
  assert.equal(flagfile, `--flagfile=${mount.mountPath}/flags`);
  assert.ok(configMap.data.flags, "ConfigMap data key flags");
  // The pod gets longer to stop than the server drains calls.
  const grace = /--shutdown_grace=(\d+)s/.exec(configMap.data.flags);
  assert.ok(grace, "--shutdown_grace in seconds in the flags");
  assert.ok(pod.terminationGracePeriodSeconds > Number(grace[1]) + 5);
});

test("Service, ServiceMonitor and NetworkPolicy point at the pod's ports", () => {
  const deployment = byKind("Deployment");
  const podLabels = deployment.spec.template.metadata.labels;
  const containerPorts = new Set(deployment.spec.template.spec.containers[0].ports.map((p) => p.name));

  const service = byKind("Service");
  assert.ok(matches(service.spec.selector, podLabels), "Service selects the pod");
  assert.deepEqual(service.spec.ports.map((p) => p.name).sort(), ["grpc", "metrics"]);
  for (const port of service.spec.ports) assert.ok(containerPorts.has(port.targetPort), port.name);

  const monitor = byKind("ServiceMonitor");
  assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels), "ServiceMonitor selects the Service");
  assert.deepEqual(monitor.spec.endpoints.map((e) => e.port), ["metrics"]);
  // The alert rules select job="jam-balancer"; the operator names the job
  // after the Service unless jobLabel says otherwise.
  assert.equal(service.metadata.name, "jam-balancer");
  assert.equal(monitor.spec.jobLabel, undefined);

  const policy = byKind("NetworkPolicy");
  assert.ok(matches(policy.spec.podSelector.matchLabels, podLabels), "NetworkPolicy selects the pod");
  assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
  const rules = Object.fromEntries(
    policy.spec.ingress.map((rule) => {
      assert.equal(rule.ports.length, 1);
      assert.ok(containerPorts.has(rule.ports[0].port), `port ${rule.ports[0].port}`);
      return [rule.ports[0].port, rule.from];
    }),
  );
  assert.deepEqual(Object.keys(rules).sort(), ["grpc", "metrics"]);
  // gRPC: only pods labelled as front ends. Metrics: only Prometheus.
  assert.deepEqual(rules.grpc, [{ podSelector: { matchLabels: { "jam-balancer/front-end": "true" } } }]);
  assert.deepEqual(rules.metrics, [
    { namespaceSelector: {}, podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } } },
  ]);
});

test("PrometheusRule holds the groups of deploy/prometheus/alerts.yml", () => {
  const alerts = parseYaml(readText("deploy/prometheus/alerts.yml"), "alerts.yml");
  assert.deepEqual(byKind("PrometheusRule").spec.groups, alerts.groups);
});

test("the Deployment's arguments and ConfigMap start the real server", async () => {
  assert.ok(opts.server && opts.jamctl, "--server and --jamctl");
  const configMap = byKind("ConfigMap");
  const [container] = byKind("Deployment").spec.template.spec.containers;
  const dir = tempDir("deploy-k8s-flags-");
  writeFileSync(path.join(dir, "flags"), configMap.data.flags);
  // The container's arguments, on loopback ports and the local flags file.
  const args = container.args.map((arg) => {
    if (arg.startsWith("--listen=")) return "--listen=127.0.0.1:0";
    if (arg.startsWith("--metrics_listen=")) return "--metrics_listen=127.0.0.1:0";
    if (arg.startsWith("--flagfile=")) return `--flagfile=${dir}/flags`;
    return arg;
  });
  const server = await startServer(opts.server, args);
  try {
    // Every flag of the file took effect (the start line echoes them).
    for (const line of configMap.data.flags.trim().split("\n")) {
      const [, name, value] = /^--(\w+)=(.*)$/.exec(line);
      if (name === "log_format") {
        assert.match(server.startLine, /^\{.*"msg":"jam-balancer started"/, "JSON log line");
      } else {
        assert.ok(
          server.startLine.includes(`"${name}":"${value}"`) || server.startLine.includes(`${name}=${value}`),
          `${name}=${value} in ${server.startLine}`,
        );
      }
    }
    check(opts.jamctl, [`--target=127.0.0.1:${server.port}`, "--deadline=5s", "health"], { timeoutMs: 20_000 });
    assert.equal(await server.stop(), 0, server.stderr());
  } finally {
    server.kill();
  }
});
