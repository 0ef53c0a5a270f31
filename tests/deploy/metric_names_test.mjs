// Every PromQL expression of the alert rules, the PrometheusRule and the
// Grafana dashboard names only metrics that the real server exports, and
// only labels those metrics carry. Starts jam-balancer on loopback, makes a
// few calls with jamctl, scrapes /metrics; then scrapes a replica with two
// pools on a one-member etcd (the etcd on PATH), for the election's metrics;
// and compares.
//
// Usage: node metric_names_test.mjs --server=PATH --jamctl=PATH [--promtool=PATH]

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  analyzePromql,
  check,
  options,
  parseExposition,
  parseYaml,
  queriesOfDashboard,
  readText,
  run,
  startEtcdCluster,
  startServer,
  substituteGrafanaVariables,
  which,
} from "./lib.mjs";

const opts = options();
assert.ok(opts.server && opts.jamctl, "--server and --jamctl");
const promtool = opts.promtool || which("promtool");

// Series that Prometheus adds to every scrape, and the target labels it adds
// to every series.
const SYNTHETIC = ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"];
const TARGET_LABELS = ["job", "instance"];

async function scrape() {
  const server = await startServer(opts.server, ["--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"]);
  try {
    const target = `--target=127.0.0.1:${server.port}`;
    const jamctl = (...args) => run(opts.jamctl, [target, "--deadline=5s", ...args], { timeoutMs: 20_000 });
    // Calls of every kind, one refused, so counters and histograms have data.
    for (const args of [
      ["current-jam"],
      ["current-jam", "ann"],
      ["refresh", "j1", "bob", "cat"],
      ["add-user", "j1", "dan"],
      ["has-capacity", "j1"],
      ["remove-user", "j1", "bob"],
      ["stats"],
      ["list", "--all"],
      ["health"],
    ]) {
      const result = jamctl(...args);
      assert.equal(result.status, 0, `jamctl ${args.join(" ")}: ${result.stderr}`);
    }
    assert.equal(jamctl("add-user", "", "eve").status, 1, "an invalid call is refused");
    const response = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200);
    return await response.text();
  } finally {
    server.kill();
  }
}

// The exposition of a replica (--etcd_endpoints) with the pools duo and rock
// besides the default one, once it leads all three: the election's metrics
// (jam_balancer_leader and the rest), one series per pool.
async function scrapeReplica() {
  const cluster = await startEtcdCluster(
    [
      {
        name: "etcd-0",
        host: "etcd-0",
        args: [
          "--name=etcd-0",
          "--data-dir=/var/lib/etcd/data",
          "--listen-client-urls=http://0.0.0.0:2379",
          "--advertise-client-urls=http://etcd-0:2379",
          "--listen-peer-urls=http://0.0.0.0:2380",
          "--initial-advertise-peer-urls=http://etcd-0:2380",
          "--initial-cluster=etcd-0=http://etcd-0:2380",
        ],
      },
    ],
    { clientPort: 2379, peerPort: 2380 },
  );
  let server;
  try {
    server = await startServer(opts.server, [
      "--listen=127.0.0.1:0",
      "--metrics_listen=127.0.0.1:0",
      "--pools=duo:2,rock:7:30s",
      `--etcd_endpoints=${cluster.endpoints}`,
      "--election_ttl=2s",
    ]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const response = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`, {
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 200);
      const text = await response.text();
      const leading = text.match(/^jam_balancer_leader\{pool="\w+"\} 1$/gm) ?? [];
      if (leading.length === 3) return text;
      assert.ok(Date.now() < deadline, `the replica leads ${leading.length} of 3 pools:\n${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    error.message += `\netcd logs:\n${cluster.logs()}`;
    throw error;
  } finally {
    server?.kill();
    cluster.stop();
  }
}

const exposition = await scrape();
const replicaExposition = await scrapeReplica();
const exported = parseExposition(exposition);
for (const [name, labels] of parseExposition(replicaExposition)) {
  exported.set(name, new Set([...(exported.get(name) ?? []), ...labels]));
}
for (const name of SYNTHETIC) exported.set(name, new Set());

function alertQueries(file, groups) {
  return groups.flatMap((g) => g.rules).map((r) => ({ where: `${file} ${r.alert ?? r.record}`, expr: r.expr }));
}

const alerts = parseYaml(readText("deploy/prometheus/alerts.yml"), "alerts.yml");
const prometheusRule = parseYaml(readText("deploy/k8s/prometheusrule.yaml"), "prometheusrule.yaml");
const queries = [
  ...alertQueries("alerts.yml", alerts.groups),
  ...alertQueries("prometheusrule.yaml", prometheusRule.spec.groups),
  ...queriesOfDashboard(JSON.parse(readText("deploy/grafana/dashboards/jam-balancer.json"))),
];

// The problems of one expression: unknown metrics, labels a metric does not
// carry, grouping by labels none of its metrics carry.
function problems(expr) {
  const { errors, selectors, grouping } = analyzePromql(substituteGrafanaVariables(expr));
  const found = [...errors];
  const carried = new Set(TARGET_LABELS);
  for (const { metric, labels } of selectors) {
    if (metric === null) {
      found.push("a selector without a metric name");
      continue;
    }
    const known = exported.get(metric);
    if (!known) {
      found.push(`metric ${metric} is not exported`);
      continue;
    }
    for (const label of known) carried.add(label);
    for (const label of labels) {
      if (!known.has(label) && !TARGET_LABELS.includes(label)) found.push(`${metric} has no label ${label}`);
    }
  }
  for (const label of grouping) {
    if (!carried.has(label)) found.push(`no metric of the expression has label ${label}`);
  }
  return found;
}

test("the scrapes are valid exposition (promtool check metrics)", () => {
  assert.ok(promtool, "promtool not found");
  check(promtool, ["check", "metrics"], { input: exposition, timeoutMs: 30_000 });
  check(promtool, ["check", "metrics"], { input: replicaExposition, timeoutMs: 30_000 });
});

test("every jam_balancer_* series but the build info carries the pool", () => {
  const pools = (text) => new Set([...text.matchAll(/[{,]pool="(\w+)"/g)].map((m) => m[1]));
  assert.deepEqual([...pools(exposition)].sort(), ["default"]);
  assert.deepEqual([...pools(replicaExposition)].sort(), ["default", "duo", "rock"]);
  for (const [name, labels] of exported) {
    if (!name.startsWith("jam_balancer_") || name === "jam_balancer_build_info") continue;
    assert.ok(labels.has("pool"), `${name} has the label pool`);
  }
  for (const metric of [
    "jam_balancer_leader",
    "jam_balancer_leader_epoch",
    "jam_balancer_elections_won_total",
    "jam_balancer_leader_seconds_total",
    "jam_balancer_etcd_keepalive_seconds_bucket",
    "jam_balancer_etcd_keepalive_failures_total",
  ]) {
    assert.deepEqual([...(exported.get(metric) ?? [])].filter((l) => l !== "le"), ["pool"], metric);
  }
});

test("the comparison catches unknown metrics and labels", () => {
  assert.deepEqual(problems("rate(jam_balancer_jam_created_total[5m])"), [
    "metric jam_balancer_jam_created_total is not exported",
  ]);
  assert.deepEqual(problems('sum by (method) (grpc_server_handled_total{code="OK"})'), [
    "grpc_server_handled_total has no label code",
    "no metric of the expression has label method",
  ]);
  assert.deepEqual(problems("sum by (le) (rate(jam_balancer_strand_wait_seconds_bucket[$__rate_interval]))"), []);
});

test("every rule and dashboard query names exported metrics and labels", () => {
  assert.ok(queries.length > 30, `${queries.length} queries`);
  const failures = queries
    .map(({ where, expr }) => ({ where, expr, found: problems(expr) }))
    .filter((q) => q.found.length > 0)
    .map((q) => `${q.where}: ${q.found.join("; ")}\n  ${q.expr}`);
  assert.deepEqual(failures, []);
});

test("the alerts read the metrics they are about", () => {
  const names = new Set(
    alertQueries("alerts.yml", alerts.groups).flatMap(({ expr }) =>
      analyzePromql(expr).selectors.map((s) => s.metric),
    ),
  );
  for (const metric of [
    "up",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds_bucket",
    "jam_balancer_overfilled_jams",
    "jam_balancer_overfilled_refreshes_total",
    "jam_balancer_strand_queue_depth",
    "jam_balancer_strand_wait_seconds_bucket",
    "jam_balancer_jams",
    "jam_balancer_reservations_expired_total",
    "jam_balancer_reservations_made_total",
    "jam_balancer_limit",
    "jam_balancer_leader",
  ]) {
    assert.ok(names.has(metric), metric);
  }
});
