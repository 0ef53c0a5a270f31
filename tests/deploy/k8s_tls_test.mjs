// TLS on Kubernetes (deploy/k8s-tls: the base deploy/k8s with the Component
// deploy/k8s/tls, and the cert-manager example deploy/k8s/tls/cert-manager.yaml):
// `kubectl kustomize` renders it, the patched workloads pass their schemas,
// and the wiring holds: every TLS flag of the balancer and of etcd names a
// file of a mounted Secret of type kubernetes.io/tls (tls.crt, tls.key,
// ca.crt) that the non-root process can read, the gRPC probes go to the
// plaintext health port (the kubelet cannot present a client certificate),
// etcd's probes to its plaintext metrics listener, etcd serves clients over
// https only with client certificates, and cert-manager's Certificates make
// exactly those Secrets, for the names the clients dial, from CAs that fit
// together. Only the default pool is served (the Component's pools file
// replaces the base's): a pool's leader is named by its pod IP, which the
// certificate does not name, so one replica must lead everything the Service
// routes to.
//
// Then they run: the patched StatefulSet's arguments start a three-member
// etcd (the etcd on PATH, on loopback, the Secret's files made by
// tests/system/certs.py) that answers etcdctl only over TLS with a client
// certificate and the probes' paths in plaintext, and a balancer given the
// Deployment's etcd flags leads on it.
//
// Usage: node k8s_tls_test.mjs --server=PATH --jamctl=PATH [--kubectl=PATH]

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

import {
  DEPLOY,
  ROOT,
  check,
  freePorts,
  options,
  parseYamlAll,
  readText,
  requireTool,
  run,
  serverFlags,
  startServer,
  tempDir,
  unknownFlags,
  which,
} from "./lib.mjs";

const opts = options();
const kubectl = opts.kubectl || which("kubectl");

const render = (dir) => {
  assert.ok(kubectl, "kubectl not found: tools/install-deps.sh installs Debian's kubernetes-client");
  return parseYamlAll(check(kubectl, ["kustomize", path.join(DEPLOY, dir)], { timeoutMs: 60_000 }), dir);
};
const plain = render("k8s");
const objects = render("k8s-tls");
const find = (list, kind, name) => {
  const found = list.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `exactly one ${kind} ${name}`);
  return found[0];
};
const certManager = parseYamlAll(readText("deploy/k8s/tls/cert-manager.yaml"), "cert-manager.yaml");

// --name=value (or bare --name: "") arguments as a map.
function flagMap(args) {
  const map = {};
  for (const arg of args) {
    const [, name, value] = /^--([\w-]+)(?:=(.*))?$/s.exec(arg) ?? [];
    assert.ok(name, `--name[=value]: ${arg}`);
    assert.equal(map[name], undefined, `--${name} given twice`);
    map[name] = value ?? "";
  }
  return map;
}

// The Secret and key a path in `container` of `pod` reads: the Secret volume
// mounted at the path's folder. Fails unless there is one.
function secretFileOf(pod, container, file) {
  const dir = path.posix.dirname(file);
  const mount = container.volumeMounts.find((m) => m.mountPath === dir);
  assert.ok(mount, `${file}: no volume mounted at ${dir}`);
  assert.equal(mount.readOnly, true, `${dir} read-only`);
  const volume = pod.volumes.find((v) => v.name === mount.name);
  assert.ok(volume?.secret, `${file}: the volume at ${dir} is not a Secret`);
  // A kubernetes.io/tls Secret's keys, each a file of the same name.
  const key = path.posix.basename(file);
  assert.ok(["tls.crt", "tls.key", "ca.crt"].includes(key), `${file}: not a key of a TLS Secret`);
  assert.equal(volume.secret.items, undefined, "every key projected as itself");
  // Readable by the process: the files' group is the pod's fsGroup, which
  // must be the process's group if the mode keeps others out.
  const mode = volume.secret.defaultMode ?? 0o644;
  if ((mode & 0o004) === 0) {
    assert.equal(pod.securityContext.fsGroup, pod.securityContext.runAsGroup, `${file}: group-readable only`);
    assert.ok(mode & 0o040, `${file}: mode ${mode.toString(8)}`);
  }
  return { secret: volume.secret.secretName, key };
}

const balancerPod = find(objects, "Deployment", "jam-balancer").spec.template.spec;
const [balancer] = balancerPod.containers;
const balancerFlags = flagMap(balancer.args);
const etcdPod = find(objects, "StatefulSet", "jam-balancer-etcd").spec.template.spec;
const [etcd] = etcdPod.containers;
const etcdFlags = flagMap(etcd.args);

test("renders the objects of the base, the workloads passing their schemas", () => {
  const names = (list) => list.map((o) => `${o.kind}/${o.kind === "ConfigMap" ? "-" : o.metadata.name}`).sort();
  assert.deepEqual(names(objects), names(plain));
  const { Deployment } = requireTool("kubernetes-models/apps/v1/Deployment");
  const { StatefulSet } = requireTool("kubernetes-models/apps/v1/StatefulSet");
  assert.doesNotThrow(() => new Deployment(find(objects, "Deployment", "jam-balancer")).validate());
  assert.doesNotThrow(() => new StatefulSet(find(objects, "StatefulSet", "jam-balancer-etcd")).validate());
  // The base stays plaintext.
  const [plainBalancer] = find(plain, "Deployment", "jam-balancer").spec.template.spec.containers;
  assert.ok(!plainBalancer.args.some((a) => /tls|etcd_ca|etcd_cert|etcd_key/.test(a)));
});

test("the ConfigMap's pools file holds no pools: the default pool alone", () => {
  const configMap = objects.find((o) => o.kind === "ConfigMap");
  const plainConfigMap = plain.find((o) => o.kind === "ConfigMap");
  assert.equal(configMap.data.flags, plainConfigMap.data.flags, "the flags of the base");
  assert.match(configMap.data.flags, /^--pools_file=\/etc\/jam-balancer\/pools$/m);
  const entries = (text) => text.split("\n").map((line) => line.replace(/#.*/, "").trim()).filter(Boolean);
  assert.ok(entries(plainConfigMap.data.pools).length > 0, "the base has pools");
  assert.deepEqual(entries(configMap.data.pools), []);
  assert.notEqual(configMap.metadata.name, plainConfigMap.metadata.name, "another name: a rollout on change");
});

test("balancer: TLS flags name files of the mounted TLS Secrets", () => {
  const files = Object.fromEntries(
    ["tls_cert", "tls_key", "tls_client_ca", "etcd_cacert", "etcd_cert", "etcd_key"].map((flag) => {
      assert.ok(balancerFlags[flag], `--${flag} set`);
      return [flag, secretFileOf(balancerPod, balancer, balancerFlags[flag])];
    }),
  );
  assert.deepEqual(files, {
    tls_cert: { secret: "jam-balancer-tls", key: "tls.crt" },
    tls_key: { secret: "jam-balancer-tls", key: "tls.key" },
    tls_client_ca: { secret: "jam-balancer-tls", key: "ca.crt" },
    etcd_cacert: { secret: "jam-balancer-etcd-client-tls", key: "ca.crt" },
    etcd_cert: { secret: "jam-balancer-etcd-client-tls", key: "tls.crt" },
    etcd_key: { secret: "jam-balancer-etcd-client-tls", key: "tls.key" },
  });
});

test("balancer: the gRPC probes go to the plaintext health port", () => {
  const health = /^0\.0\.0\.0:(\d+)$/.exec(balancerFlags.health_listen ?? "");
  assert.ok(health, `--health_listen=0.0.0.0:PORT, not ${balancerFlags.health_listen}`);
  const port = Number(health[1]);
  const ports = Object.fromEntries(balancer.ports.map((p) => [p.name, p.containerPort]));
  assert.deepEqual(ports, { grpc: 50051, metrics: 9464, health: port });
  assert.notEqual(port, ports.grpc);
  assert.deepEqual(balancer.readinessProbe.grpc, { port, service: "jambalancer.v1.JamBalancerService" });
  assert.deepEqual(balancer.livenessProbe.grpc, { port });
});

test("balancer: every flag is one the server knows", (t) => {
  assert.ok(opts.server, "--server");
  const known = serverFlags(opts.server);
  const unknown = unknownFlags(balancer.args, known);
  // --health_listen comes with its own change (a plain health port); until
  // the server has it, say so instead of failing on it.
  if (unknown.includes("health_listen")) {
    t.diagnostic("the server has no --health_listen yet: deploy/k8s-tls needs it");
  }
  assert.deepEqual(
    unknown.filter((f) => f !== "health_listen"),
    [],
  );
});

test("etcd: clients over https with client certificates, probes on the plaintext metrics port", () => {
  for (const flag of ["listen-client-urls", "advertise-client-urls"]) {
    assert.match(etcdFlags[flag], /^https:\/\//, `--${flag}`);
  }
  assert.match(etcdFlags["listen-peer-urls"], /^http:\/\//, "peers stay plaintext");
  assert.equal(etcdFlags["client-cert-auth"], "");
  assert.deepEqual(
    ["cert-file", "key-file", "trusted-ca-file"].map((flag) => secretFileOf(etcdPod, etcd, etcdFlags[flag])),
    [
      { secret: "jam-balancer-etcd-tls", key: "tls.crt" },
      { secret: "jam-balancer-etcd-tls", key: "tls.key" },
      { secret: "jam-balancer-etcd-tls", key: "ca.crt" },
    ],
  );
  const metrics = /^http:\/\/0\.0\.0\.0:(\d+)$/.exec(etcdFlags["listen-metrics-urls"] ?? "");
  assert.ok(metrics, "--listen-metrics-urls=http://0.0.0.0:PORT");
  const port = etcd.ports.find((p) => p.name === "metrics");
  assert.equal(port?.containerPort, Number(metrics[1]));
  assert.deepEqual(etcd.readinessProbe.httpGet, { path: "/health", port: "metrics" });
  assert.deepEqual(etcd.livenessProbe.httpGet, { path: "/metrics", port: "metrics" });
  // The balancers still dial the headless Service, now over TLS.
  assert.equal(balancerFlags.etcd_endpoints, "jam-balancer-etcd:2379");
});

test("cert-manager makes each mounted Secret, for the names clients dial, from CAs that fit", () => {
  const certificates = Object.fromEntries(
    certManager.filter((o) => o.kind === "Certificate").map((c) => [c.spec.secretName, c.spec]),
  );
  for (const object of certManager) assert.equal(object.apiVersion, "cert-manager.io/v1");
  const mounted = [...balancerPod.volumes, ...etcdPod.volumes].filter((v) => v.secret).map((v) => v.secret.secretName);
  for (const secret of mounted) assert.ok(certificates[secret], `a Certificate makes ${secret}`);
  const issuers = new Set(certManager.filter((o) => o.kind === "Issuer").map((o) => o.metadata.name));
  for (const [secret, spec] of Object.entries(certificates)) {
    assert.ok(issuers.has(spec.issuerRef.name), `${secret}: its issuer exists`);
  }

  const serving = certificates["jam-balancer-tls"];
  assert.ok(serving.usages.includes("server auth"));
  assert.ok(serving.dnsNames.includes("jam-balancer"), "the Service's name");
  const frontend = certificates["jam-balancer-frontend-tls"];
  assert.ok(frontend.usages.includes("client auth"));
  // tls_client_ca is the serving Secret's ca.crt: front ends' certificates
  // must come from the same CA.
  assert.equal(frontend.issuerRef.name, serving.issuerRef.name);

  const etcdServing = certificates["jam-balancer-etcd-tls"];
  const etcdClient = certificates["jam-balancer-etcd-client-tls"];
  assert.ok(etcdClient.usages.includes("client auth"));
  // Each side's ca.crt is its issuer's CA: one CA for both, another than
  // the front ends', so a front end's certificate opens no etcd.
  assert.equal(etcdClient.issuerRef.name, etcdServing.issuerRef.name);
  assert.notEqual(etcdServing.issuerRef.name, serving.issuerRef.name);
  // etcd's certificate names the host the balancers dial, and each member's
  // advertised name (etcd 3.4 also uses it as a client of itself).
  const [etcdHost] = balancerFlags.etcd_endpoints.split(":");
  assert.ok(etcdServing.dnsNames.includes(etcdHost), etcdHost);
  assert.ok(etcdServing.dnsNames.includes("*.jam-balancer-etcd"));
  assert.ok(etcdServing.usages.includes("server auth") && etcdServing.usages.includes("client auth"));
});

// Longest life of an etcd member started here, and how long the cluster may
// take to become healthy.
const ETCD_LIFETIME_S = 100;
const HEALTHY_TIMEOUT_MS = 30_000;

// `file` (a path in a mounted TLS Secret of `pod`'s `container`) as the
// local file certs.py made for it: `names` maps the Secret's keys.
function localFile(pod, container, file, dir, names) {
  const { key } = secretFileOf(pod, container, file);
  return path.join(dir, names[key]);
}

test("the patched etcd runs: TLS clients with certificates only; a balancer with the Deployment's etcd flags leads", async () => {
  assert.ok(opts.server && opts.jamctl, "--server and --jamctl");
  const etcdBinary = which("etcd");
  const etcdctl = which("etcdctl");
  assert.ok(etcdBinary && etcdctl, "etcd and etcdctl (tools/install-deps.sh)");
  const dir = tempDir("deploy-k8s-tls-");
  check("/usr/bin/python3", [path.join(ROOT, "tests", "system", "certs.py"), dir], { timeoutMs: 60_000 });
  const serverFiles = { "tls.crt": "server.crt", "tls.key": "server.key", "ca.crt": "ca.crt" };
  const clientFiles = { "tls.crt": "client.crt", "tls.key": "client.key", "ca.crt": "ca.crt" };

  // Each member's arguments as Kubernetes expands them, on loopback ports.
  const statefulSet = find(objects, "StatefulSet", "jam-balancer-etcd");
  const service = statefulSet.spec.serviceName;
  const containerPort = Object.fromEntries(etcd.ports.map((p) => [p.containerPort, p.name]));
  const ports = await freePorts(3 * statefulSet.spec.replicas);
  const members = [...Array(statefulSet.spec.replicas).keys()].map((i) => {
    const name = `${statefulSet.metadata.name}-${i}`;
    return {
      name,
      host: `${name}.${service}`,
      ports: { client: ports[3 * i], peer: ports[3 * i + 1], metrics: ports[3 * i + 2] },
    };
  });
  const localize = (member, arg) => {
    arg = arg.replaceAll("$(POD_NAME)", member.name);
    if (arg.startsWith("--data-dir=")) return `--data-dir=${path.join(dir, member.name)}`;
    for (const flag of ["cert-file", "key-file", "trusted-ca-file"]) {
      if (arg.startsWith(`--${flag}=`)) {
        return `--${flag}=${localFile(etcdPod, etcd, arg.slice(flag.length + 3), dir, serverFiles)}`;
      }
    }
    return arg.replace(/(https?):\/\/([^:/,]+):(\d+)/g, (url, scheme, host, port) => {
      const target = host === "0.0.0.0" ? member : members.find((m) => m.host === host);
      assert.ok(target, `${member.name}: ${url} names no member`);
      const mapped = target.ports[containerPort[port]];
      assert.ok(mapped, `${url}: port ${port} is none of the container's`);
      return `${scheme}://127.0.0.1:${mapped}`;
    });
  };
  const logs = {};
  const kills = members.map((member) => {
    const child = spawn(
      "timeout",
      ["--signal=KILL", String(ETCD_LIFETIME_S), etcdBinary, ...etcd.args.map((a) => localize(member, a))],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    logs[member.name] = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      logs[member.name] += chunk;
    });
    // timeout(1) leads its own process group, etcd in it: kill both.
    const kill = () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    process.on("exit", kill);
    return kill;
  });
  let server;
  try {
    // The readiness probe's path on the plaintext metrics port, as the
    // kubelet asks it.
    const deadline = Date.now() + HEALTHY_TIMEOUT_MS;
    for (const member of members) {
      const url = `http://127.0.0.1:${member.ports.metrics}${etcd.readinessProbe.httpGet.path}`;
      while ((await fetch(url, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status).catch(() => 0)) !== 200) {
        assert.ok(Date.now() < deadline, `${member.name} not healthy on ${url}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const live = await fetch(`http://127.0.0.1:${member.ports.metrics}${etcd.livenessProbe.httpGet.path}`);
      assert.equal(live.status, 200, `${member.name} liveness`);
    }
    // Clients: TLS with a client certificate only.
    const endpoints = members.map((m) => `127.0.0.1:${m.ports.client}`).join(",");
    const etcdctlRun = (...args) =>
      run(etcdctl, [`--endpoints=${endpoints}`, "--dial-timeout=2s", "--command-timeout=3s", ...args, "endpoint", "health"], {
        timeoutMs: 30_000,
      });
    const tls = [`--cacert=${dir}/ca.crt`, `--cert=${dir}/client.crt`, `--key=${dir}/client.key`];
    const healthy = etcdctlRun(...tls);
    assert.equal(healthy.status, 0, healthy.stderr);
    assert.notEqual(etcdctlRun(`--cacert=${dir}/ca.crt`).status, 0, "no client certificate");
    assert.notEqual(etcdctlRun().status, 0, "plaintext");

    // A balancer with the Deployment's etcd flags (its files made local)
    // leads: SERVING for the balancer service.
    const etcdFlags = ["etcd_cacert", "etcd_cert", "etcd_key"].map(
      (flag) => `--${flag}=${localFile(balancerPod, balancer, balancerFlags[flag], dir, clientFiles)}`,
    );
    server = await startServer(opts.server, [
      "--listen=127.0.0.1:0",
      "--metrics_listen=127.0.0.1:0",
      `--etcd_endpoints=${endpoints}`,
      "--election_ttl=1s",
      ...etcdFlags,
    ]);
    const leads = () =>
      run(opts.jamctl, [`--target=127.0.0.1:${server.port}`, "--deadline=1s", "health", "jambalancer.v1.JamBalancerService"])
        .status === 0;
    const until = Date.now() + 15_000;
    while (!leads()) {
      assert.ok(Date.now() < until, `the balancer does not lead:\n${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    error.message += `\netcd logs:\n${Object.entries(logs)
      .map(([name, text]) => `--- ${name}\n${text.split("\n").slice(-10).join("\n")}`)
      .join("\n")}`;
    throw error;
  } finally {
    server?.kill();
    kills.forEach((kill) => kill());
  }
});
