// The Kubernetes base (deploy/k8s): `kubectl kustomize` renders it, every
// rendered object passes the Kubernetes schemas (npm kubernetes-models and
// @kubernetes-models/prometheus-operator: types and required fields, then
// TypeScript's check of the same objects against the models' types, which
// refuses unknown fields), the objects agree with each other, and they run:
// the etcd StatefulSet's arguments start a three-member etcd cluster (the
// etcd on PATH, on loopback), and the Deployment's arguments and ConfigMap
// (the flags and the pools file) start two replicas of the real server on
// it, which share the pools: one leader per pool, and a replica passes the
// readiness probe while it leads one.
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
  checkElection,
  localEtcdVersion,
  options,
  parseYaml,
  parseYamlAll,
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
const kubectl = opts.kubectl || which("kubectl");

// The models of every kind the base may render, with the TypeScript type of
// its data.
const MODELS = {
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "IConfigMap"],
  "v1/Service": ["kubernetes-models/v1/Service", "IService"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "IDeployment"],
  "apps/v1/StatefulSet": ["kubernetes-models/apps/v1/StatefulSet", "IStatefulSet"],
  "policy/v1/PodDisruptionBudget": ["kubernetes-models/policy/v1/PodDisruptionBudget", "IPodDisruptionBudget"],
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
// The one object of `kind` (named `name`, where the base has several).
const find = (kind, name) => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ""} rendered`);
  return found[0];
};
const matches = (selector, labels) =>
  Object.entries(selector).every(([key, value]) => labels?.[key] === value);

// The balancer and its etcd.
const BALANCER = "jam-balancer";
const ETCD = "jam-balancer-etcd";
// What the readiness probe asks for: the service of
// proto/jambalancer/v1/jam_balancer.proto.
const BALANCER_SERVICE = "jambalancer.v1.JamBalancerService";

// --name=value arguments as a map (each name once).
function flagMap(args) {
  const map = {};
  for (const arg of args) {
    const [, name, value] = /^--([\w-]+)=(.*)$/s.exec(arg) ?? [];
    assert.ok(name, `--name=value: ${arg}`);
    assert.equal(map[name], undefined, `--${name} given twice`);
    map[name] = value;
  }
  return map;
}

// Kubernetes' expansion of $(VAR) in a container's args from its env:
// `values` gives each variable's value here; a reference to a variable the
// container does not define stays literal in Kubernetes, so it fails here.
function expandArgs(container, values) {
  const defined = new Set((container.env ?? []).map((e) => e.name));
  return container.args.map((arg) =>
    arg.replace(/\$\((\w+)\)/g, (ref, name) => {
      assert.ok(defined.has(name), `${arg}: ${name} is not in the container's env`);
      assert.ok(values[name] !== undefined, `${arg}: no value for ${name} here`);
      return values[name];
    }),
  );
}

// The entries of a pools file (--pools_file): NAME:MAX_USERS[:TTL[:MAX_TTL]]
// separated by commas or newlines, '#' comments to the end of the line.
function poolsOf(text) {
  return text
    .split("\n")
    .flatMap((line) => line.replace(/#.*/, "").split(","))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const match = /^([a-z0-9][a-z0-9_-]{0,62}):([1-9]\d*)(?::(\d+[smh]))?(?::(\d+[smh]))?$/.exec(entry);
      assert.ok(match, `a pool NAME:MAX_USERS[:TTL[:MAX_TTL]]: ${entry}`);
      return { name: match[1], maxUsers: Number(match[2]) };
    });
}

// The field a downward-API env var of `container` comes from.
const fieldOf = (container, name) => container.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;

// An IntOrString of a rolling update resolved against `total` as the
// Deployment controller does: percentages of maxSurge round up, of
// maxUnavailable down.
function resolveIntOrPercent(value, total, roundUp) {
  if (typeof value === "number") return value;
  const percent = /^(\d+)%$/.exec(value);
  assert.ok(percent, `int or percentage: ${value}`);
  const exact = (Number(percent[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

test("renders exactly the expected objects", () => {
  assert.deepEqual(
    objects.map((o) => `${o.kind}/${o.kind === "ConfigMap" ? "(generated)" : o.metadata.name}`).sort(),
    [
      "ConfigMap/(generated)",
      `Deployment/${BALANCER}`,
      `NetworkPolicy/${BALANCER}`,
      `NetworkPolicy/${ETCD}`,
      `PodDisruptionBudget/${ETCD}`,
      `PrometheusRule/${BALANCER}`,
      `Service/${BALANCER}`,
      `Service/${ETCD}`,
      `ServiceMonitor/${BALANCER}`,
      `StatefulSet/${ETCD}`,
    ],
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
  const deployment = structuredClone(find("Deployment"));
  deployment.spec.replicas = "1";
  assert.throws(() => new Deployment(deployment).validate(), /replicas/);
  const nameless = structuredClone(find("Deployment"));
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
  const deployment = structuredClone(find("Deployment"));
  deployment.spec.template.spec.containers[0].readinessProbe.grpc.prot = 1;
  const complaints = typeCheck([deployment]);
  assert.equal(complaints.length, 1, complaints.join("\n"));
  assert.match(complaints[0], /'"prot"' does not exist/);
});

// Pod Security Standards, "restricted" profile, and resources set.
function assertRestricted(pod, container) {
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
  const security = container.securityContext;
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.deepEqual(security.capabilities.drop, ["ALL"]);
  assert.equal(security.privileged ?? false, false);
  assert.equal(pod.hostNetwork ?? false, false);
  assert.equal(pod.automountServiceAccountToken, false);
  for (const kind of ["requests", "limits"]) {
    assert.ok(container.resources[kind].cpu, `${kind}.cpu`);
    assert.ok(container.resources[kind].memory, `${kind}.memory`);
  }
}

const containerPorts = (container) => Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));

test("Deployment: two replicas, restricted, probed over gRPC", () => {
  const { spec } = find("Deployment");
  assert.equal(spec.replicas, 2);
  assert.ok(matches(spec.selector.matchLabels, spec.template.metadata.labels));
  const pod = spec.template.spec;
  assert.equal(pod.containers.length, 1);
  const [container] = pod.containers;
  const ports = containerPorts(container);
  assert.deepEqual(ports, { grpc: 50051, metrics: 9464 });
  // Readiness: the balancer service, SERVING on the leader only, so the
  // Service routes to the leader. Liveness: the process (""), SERVING on a
  // standby too, so standing by never restarts a pod.
  assert.deepEqual(container.readinessProbe.grpc, { port: ports.grpc, service: BALANCER_SERVICE });
  assert.deepEqual(container.livenessProbe.grpc, { port: ports.grpc });
  assertRestricted(pod, container);
  // The user the image was built with.
  const [, uid, gid] = /^USER (\d+):(\d+)$/m.exec(readText("deploy/docker/Dockerfile"));
  assert.deepEqual([pod.securityContext.runAsUser, pod.securityContext.runAsGroup], [Number(uid), Number(gid)]);
  // The listen flags agree with the container ports.
  assert.ok(container.args.includes(`--listen=0.0.0.0:${ports.grpc}`), container.args.join(" "));
  assert.ok(container.args.includes(`--metrics_listen=0.0.0.0:${ports.metrics}`), container.args.join(" "));
});

test("the readiness probe names the service of the proto", () => {
  const proto = readText("proto/jambalancer/v1/jam_balancer.proto");
  const [, pkg] = /^package ([\w.]+);$/m.exec(proto);
  const services = [...proto.matchAll(/^service (\w+) \{/gm)].map((m) => `${pkg}.${m[1]}`);
  assert.deepEqual(services, [BALANCER_SERVICE]);
});

test("Deployment: a rollout cannot stall on standbys that are never Ready", () => {
  // Only the leader is Ready. The Deployment controller removes old pods only
  // while at least replicas - maxUnavailable pods stay available, and the new
  // pods (standbys while the old leader leads) never become available: with
  // more than zero required, the old leader would never be removed.
  const { spec } = find("Deployment");
  assert.equal(spec.strategy.type, "RollingUpdate");
  const { maxSurge, maxUnavailable } = spec.strategy.rollingUpdate;
  const minAvailable = spec.replicas - resolveIntOrPercent(maxUnavailable, spec.replicas, false);
  assert.ok(minAvailable <= 0, `maxUnavailable ${maxUnavailable} keeps ${minAvailable} available`);
  // New pods are created before the old ones go (as many as there are), so
  // the old leader can resign to one that runs.
  assert.equal(resolveIntOrPercent(maxSurge, spec.replicas, true), spec.replicas, `maxSurge ${maxSurge}`);
  // The old leader leads on while they start: a pause before SIGTERM.
  const [container] = spec.template.spec.containers;
  const pause = container.lifecycle?.preStop?.exec?.command;
  assert.equal(pause?.[0], "sleep", "a preStop sleep");
  assert.ok(Number(pause[1]) >= 5 && Number(pause[1]) <= 15, `preStop sleep ${pause[1]}`);
  // The image has sleep: its runtime stage is Debian's (coreutils is
  // essential there).
  const stages = [...readText("deploy/docker/Dockerfile").matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  assert.match(stages.at(-1), /^debian:[\w.-]+$/);
});

test("Deployment: the flags come from the generated ConfigMap", () => {
  const configMap = find("ConfigMap");
  const pod = find("Deployment").spec.template.spec;
  const [container] = pod.containers;
  const volume = pod.volumes.find((v) => v.configMap?.name === configMap.metadata.name);
  assert.ok(volume, `a volume of ConfigMap ${configMap.metadata.name}`);
  const mount = container.volumeMounts.find((m) => m.name === volume.name);
  assert.ok(mount?.readOnly);
  const flagfile = container.args.find((a) => a.startsWith("--flagfile="));
  assert.equal(flagfile, `--flagfile=${mount.mountPath}/flags`);
  assert.ok(configMap.data.flags, "ConfigMap data key flags");
  // The pools file the flags name, beside them: pools besides the default
  // one, each named once.
  assert.match(configMap.data.flags, new RegExp(`^--pools_file=${mount.mountPath}/pools$`, "m"));
  const pools = poolsOf(configMap.data.pools ?? "").map((p) => p.name);
  assert.ok(pools.length >= 2, `pools: ${pools}`);
  assert.equal(new Set(pools).size, pools.length, `pools named once: ${pools}`);
  assert.ok(!pools.includes("default"), "the default pool is configured by --max_users");
  assert.deepEqual(Object.keys(configMap.data).sort(), ["flags", "pools"]);
  // The pod gets longer to stop than its pause before SIGTERM plus the time
  // the server drains calls.
  const grace = /--shutdown_grace=(\d+)s/.exec(configMap.data.flags);
  assert.ok(grace, "--shutdown_grace in seconds in the flags");
  const pause = Number(container.lifecycle.preStop.exec.command[1]);
  assert.ok(pod.terminationGracePeriodSeconds > pause + Number(grace[1]) + 5);
});

test("Deployment: every flag is one the server knows", () => {
  assert.ok(opts.server, "--server");
  const known = serverFlags(opts.server);
  const [container] = find("Deployment").spec.template.spec.containers;
  const fromFile = find("ConfigMap").data.flags.trim().split("\n");
  assert.deepEqual(unknownFlags([...container.args, ...fromFile], known), []);
  // And the check is sensitive.
  assert.deepEqual(unknownFlags(["--etcd_endpoint=x:1"], known), ["etcd_endpoint"]);
});

test("Deployment: the election is on the etcd StatefulSet, advertising the pod IP", () => {
  const [container] = find("Deployment").spec.template.spec.containers;
  const flags = flagMap(container.args);
  const service = find("Service", ETCD);
  const statefulSet = find("StatefulSet", ETCD);
  // One DNS name for every member (the server takes one name, or a list of
  // IP addresses): the headless Service of the StatefulSet, its client port.
  assert.equal(service.spec.clusterIP, "None");
  assert.equal(statefulSet.spec.serviceName, service.metadata.name);
  const client = service.spec.ports.find((p) => p.name === "client");
  assert.equal(flags.etcd_endpoints, `${service.metadata.name}:${client.port}`);
  // The pod's IP from the downward API, and the gRPC port.
  assert.equal(fieldOf(container, "POD_IP"), "status.podIP");
  assert.equal(flags.advertise_address, `$(POD_IP):${containerPorts(container).grpc}`);
});

test("etcd: a static cluster of three members, each named in --initial-cluster", () => {
  const statefulSet = find("StatefulSet", ETCD);
  const service = find("Service", ETCD);
  const { spec } = statefulSet;
  assert.equal(spec.replicas, 3);
  assert.ok(matches(spec.selector.matchLabels, spec.template.metadata.labels));
  // Members are Ready only once the cluster has a leader: they must start
  // together, and find each other's names before they are Ready.
  assert.equal(spec.podManagementPolicy, "Parallel");
  assert.equal(service.spec.publishNotReadyAddresses, true);
  assert.ok(matches(service.spec.selector, spec.template.metadata.labels), "the Service selects the members");
  const pod = spec.template.spec;
  assert.equal(pod.containers.length, 1);
  const [container] = pod.containers;
  const ports = containerPorts(container);
  assert.deepEqual(ports, { client: 2379, peer: 2380 });
  assert.deepEqual(
    Object.fromEntries(service.spec.ports.map((p) => [p.name, [p.port, p.targetPort]])),
    { client: [ports.client, "client"], peer: [ports.peer, "peer"] },
  );
  assertRestricted(pod, container);
  assert.deepEqual(container.command, ["/usr/local/bin/etcd"]);

  const flags = flagMap(container.args);
  assert.equal(fieldOf(container, "POD_NAME"), "metadata.name");
  assert.equal(flags.name, "$(POD_NAME)");
  const own = `$(POD_NAME).${service.metadata.name}`;
  assert.equal(flags["initial-advertise-peer-urls"], `http://${own}:${ports.peer}`);
  assert.equal(flags["advertise-client-urls"], `http://${own}:${ports.client}`);
  assert.equal(flags["listen-peer-urls"], `http://0.0.0.0:${ports.peer}`);
  assert.equal(flags["listen-client-urls"], `http://0.0.0.0:${ports.client}`);
  // Every member by its pod name and its name under the headless Service.
  const members = [...Array(spec.replicas).keys()].map((i) => `${statefulSet.metadata.name}-${i}`);
  assert.deepEqual(
    flags["initial-cluster"].split(","),
    members.map((m) => `${m}=http://${m}.${service.metadata.name}:${ports.peer}`),
  );
  assert.equal(flags["initial-cluster-state"], "new");
  assert.ok(flags["initial-cluster-token"]);

  // The data on a volume of its own per member.
  const [claim] = spec.volumeClaimTemplates;
  assert.equal(spec.volumeClaimTemplates.length, 1);
  assert.deepEqual(claim.spec.accessModes, ["ReadWriteOnce"]);
  assert.ok(claim.spec.resources.requests.storage);
  const mount = container.volumeMounts.find((m) => m.name === claim.metadata.name);
  assert.ok(mount, "the claim is mounted");
  assert.ok(flags["data-dir"].startsWith(`${mount.mountPath}/`), `--data-dir ${flags["data-dir"]} on the volume`);
  assert.equal(pod.securityContext.fsGroup, pod.securityContext.runAsGroup, "the volume is writable");

  // Readiness: a member of a cluster with a leader; liveness: the process
  // answers (so losing the quorum restarts nothing).
  assert.deepEqual(container.readinessProbe.httpGet, { path: "/health", port: "client" });
  assert.deepEqual(container.livenessProbe.httpGet, { path: "/version", port: "client" });
});

test("etcd: the image is etcd 3.4, the version the local etcd checks", () => {
  const [container] = find("StatefulSet", ETCD).spec.template.spec.containers;
  const [, version] = /^quay\.io\/coreos\/etcd:v(3\.4)\.\d+$/.exec(container.image) ?? [];
  assert.ok(version, `etcd 3.4 pinned to a patch version: ${container.image}`);
  assert.equal(localEtcdVersion(), version, "the etcd on PATH (tools/install-deps.sh)");
});

test("PodDisruptionBudgets keep etcd's quorum and never block a node drain", () => {
  const budgets = objects.filter((o) => o.kind === "PodDisruptionBudget");
  // Ready pods of each workload when all is well, at the least: one
  // balancer (one replica may lead every pool), every etcd member.
  const workloads = [
    { object: find("Deployment"), ready: 1 },
    { object: find("StatefulSet", ETCD), ready: find("StatefulSet", ETCD).spec.replicas },
  ];
  for (const budget of budgets) {
    const selected = workloads.filter((w) =>
      matches(budget.spec.selector.matchLabels, w.object.spec.template.metadata.labels),
    );
    assert.equal(selected.length, 1, `${budget.metadata.name} selects one workload`);
    const [{ object, ready }] = selected;
    // The disruption controller: allowed = Ready - minAvailable. Zero would
    // make every drain of a node hosting such a pod wait forever.
    const minAvailable = resolveIntOrPercent(budget.spec.minAvailable, object.spec.replicas, true);
    assert.ok(ready - minAvailable >= 1, `${budget.metadata.name}: ${ready} Ready, minAvailable ${minAvailable}`);
  }
  // etcd: at most one member out, and what stays is a quorum.
  const etcd = find("PodDisruptionBudget", ETCD);
  const members = find("StatefulSet", ETCD).spec.replicas;
  assert.ok(matches(etcd.spec.selector.matchLabels, find("StatefulSet", ETCD).spec.template.metadata.labels));
  assert.equal(etcd.spec.minAvailable, Math.floor(members / 2) + 1);
  // None for the balancer: only its leader is Ready, so any budget would
  // forbid evicting the leader (see deployment.yaml).
  const balancerLabels = find("Deployment").spec.template.metadata.labels;
  assert.ok(!budgets.some((b) => matches(b.spec.selector.matchLabels, balancerLabels)));
});

test("Services, ServiceMonitor and NetworkPolicies point at the pods' ports", () => {
  const deployment = find("Deployment");
  const podLabels = deployment.spec.template.metadata.labels;
  const podPorts = new Set(deployment.spec.template.spec.containers[0].ports.map((p) => p.name));
  const statefulSet = find("StatefulSet", ETCD);
  const etcdLabels = statefulSet.spec.template.metadata.labels;
  const etcdPorts = new Set(statefulSet.spec.template.spec.containers[0].ports.map((p) => p.name));

  const service = find("Service", BALANCER);
  assert.ok(matches(service.spec.selector, podLabels), "Service selects the pod");
  assert.ok(!matches(service.spec.selector, etcdLabels), "and not etcd's");
  assert.deepEqual(service.spec.ports.map((p) => p.name).sort(), ["grpc", "metrics"]);
  for (const port of service.spec.ports) assert.ok(podPorts.has(port.targetPort), port.name);
  assert.ok(!matches(find("Service", ETCD).spec.selector, podLabels), "etcd's Service selects no balancer");

  const monitor = find("ServiceMonitor");
  assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels), "ServiceMonitor selects the Service");
  assert.ok(!matches(monitor.spec.selector.matchLabels, find("Service", ETCD).metadata.labels), "not etcd's");
  assert.deepEqual(monitor.spec.endpoints.map((e) => e.port), ["metrics"]);
  // The alert rules select job="jam-balancer"; the operator names the job
  // after the Service unless jobLabel says otherwise.
  assert.equal(service.metadata.name, "jam-balancer");
  assert.equal(monitor.spec.jobLabel, undefined);

  // Each policy admits [port name, sources] and nothing else.
  const rulesOf = (policy, labels, ports) => {
    assert.ok(matches(policy.spec.podSelector.matchLabels, labels), `${policy.metadata.name} selects its pods`);
    assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
    return Object.fromEntries(
      policy.spec.ingress.map((rule) => {
        assert.equal(rule.ports.length, 1);
        assert.ok(ports.has(rule.ports[0].port), `port ${rule.ports[0].port}`);
        return [rule.ports[0].port, rule.from];
      }),
    );
  };
  const rules = rulesOf(find("NetworkPolicy", BALANCER), podLabels, podPorts);
  assert.deepEqual(Object.keys(rules).sort(), ["grpc", "metrics"]);
  // gRPC: only pods labelled as front ends. Metrics: only Prometheus.
  assert.deepEqual(rules.grpc, [{ podSelector: { matchLabels: { "jam-balancer/front-end": "true" } } }]);
  assert.deepEqual(rules.metrics, [
    { namespaceSelector: {}, podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } } },
  ]);
  // etcd: its client port from the balancers, its peer port from members.
  const etcdRules = rulesOf(find("NetworkPolicy", ETCD), etcdLabels, etcdPorts);
  assert.deepEqual(Object.keys(etcdRules).sort(), ["client", "peer"]);
  assert.equal(etcdRules.client.length, 1);
  assert.ok(matches(etcdRules.client[0].podSelector.matchLabels, podLabels), "balancers reach etcd's client port");
  assert.equal(etcdRules.peer.length, 1);
  assert.ok(matches(etcdRules.peer[0].podSelector.matchLabels, etcdLabels), "members reach each other's peer port");
  assert.ok(!matches(etcdRules.client[0].podSelector.matchLabels, etcdLabels));
  assert.ok(!matches(etcdRules.peer[0].podSelector.matchLabels, podLabels));
});

test("PrometheusRule holds the groups of deploy/prometheus/alerts.yml", () => {
  const alerts = parseYaml(readText("deploy/prometheus/alerts.yml"), "alerts.yml");
  assert.deepEqual(find("PrometheusRule").spec.groups, alerts.groups);
});

test("the StatefulSet's etcd and the Deployment's two replicas run: one leader per pool, leaders Ready", async () => {
  assert.ok(opts.server && opts.jamctl, "--server and --jamctl");
  // etcd: each member's arguments as Kubernetes expands them for its pod,
  // its peers and clients reaching it at <pod>.<headless Service>.
  const statefulSet = find("StatefulSet", ETCD);
  const serviceName = statefulSet.spec.serviceName;
  const [etcdContainer] = statefulSet.spec.template.spec.containers;
  const etcdPorts = containerPorts(etcdContainer);
  const members = [...Array(statefulSet.spec.replicas).keys()].map((i) => {
    const name = `${statefulSet.metadata.name}-${i}`;
    return { name, host: `${name}.${serviceName}`, args: expandArgs(etcdContainer, { POD_NAME: name }) };
  });
  const cluster = await startEtcdCluster(members, {
    clientPort: etcdPorts.client,
    peerPort: etcdPorts.peer,
    healthPath: etcdContainer.readinessProbe.httpGet.path,
  });
  try {
    // The liveness probe's path answers too.
    for (const member of cluster.members) {
      const response = await fetch(`${member.clientUrl}${etcdContainer.livenessProbe.httpGet.path}`);
      assert.equal(response.status, 200, `${member.name} liveness`);
    }
    // The balancers: the container's arguments on loopback ports, the
    // ConfigMap's files (the flags naming the pools file where it is here)
    // and etcd, each pod with an IP of its own (TEST-NET-1).
    const configMap = find("ConfigMap");
    const [container] = find("Deployment").spec.template.spec.containers;
    const dir = tempDir("deploy-k8s-flags-");
    const { mountPath } = container.volumeMounts.find((m) => m.name === "flags");
    for (const [key, text] of Object.entries(configMap.data)) {
      writeFileSync(path.join(dir, key), text.replaceAll(`${mountPath}/`, `${dir}/`));
    }
    const replicas = [1, 2].map((n) => {
      const podIp = `192.0.2.${n}`;
      const args = expandArgs(container, { POD_IP: podIp }).map((arg) => {
        if (arg.startsWith("--listen=")) return "--listen=127.0.0.1:0";
        if (arg.startsWith("--metrics_listen=")) return "--metrics_listen=127.0.0.1:0";
        if (arg.startsWith("--flagfile=")) return `--flagfile=${dir}/flags`;
        if (arg.startsWith("--etcd_endpoints=")) return `--etcd_endpoints=${cluster.endpoints}`;
        return arg;
      });
      return { args, advertise: flagMap(args).advertise_address };
    });
    assert.deepEqual(
      replicas.map((r) => r.advertise),
      [`192.0.2.1:${containerPorts(container).grpc}`, `192.0.2.2:${containerPorts(container).grpc}`],
    );
    const { startLines, pools } = await checkElection(
      opts.server,
      opts.jamctl,
      replicas,
      container.readinessProbe.grpc.service,
    );
    // Every pool of the pools file is served, with its max_users.
    const filePools = poolsOf(configMap.data.pools);
    assert.deepEqual(pools, ["default", ...filePools.map((p) => p.name)].sort());
    // Every flag of the file took effect (the start line echoes them).
    for (const line of configMap.data.flags.trim().split("\n")) {
      const [, name, value] = /^--(\w+)=(.*)$/.exec(line);
      if (name === "pools_file") {
        const [, echoed] = /"pools":"([^"]*)"/.exec(startLines[0]) ?? [];
        assert.deepEqual(
          (echoed ?? "").split(",").map((entry) => entry.split(":").slice(0, 2).join(":")),
          filePools.map((p) => `${p.name}:${p.maxUsers}`),
          startLines[0],
        );
      } else if (name === "log_format") {
        assert.match(startLines[0], /^\{.*"msg":"jam-balancer started"/, "JSON log line");
      } else {
        assert.ok(
          startLines[0].includes(`"${name}":"${value}"`) || startLines[0].includes(`${name}=${value}`),
          `${name}=${value} in ${startLines[0]}`,
        );
      }
    }
  } catch (error) {
    error.message += `\netcd logs:\n${cluster.logs()}`;
    throw error;
  } finally {
    cluster.stop();
  }
});
