// The Grafana dashboard (deploy/grafana/dashboards/jam-balancer.json) and its
// provisioning: valid JSON in the shape Grafana loads, panels that do not
// overlap, every query valid PromQL for Prometheus' own parser (promtool) and
// reading only the dashboard's variables, every query of a pool's metrics
// filtered by the pool variable, and the panels the operators need.
// Which metrics the queries name is checked against a running server by
// metric_names_test.mjs.
//
// Usage: node dashboard_test.mjs [--promtool=PATH]

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  YAML,
  analyzePromql,
  check,
  queriesOfDashboard,
  options,
  parseYaml,
  readText,
  substituteGrafanaVariables,
  tempDir,
  which,
} from "./lib.mjs";

const opts = options();
const promtool = opts.promtool || which("promtool");
const DASHBOARD = "deploy/grafana/dashboards/jam-balancer.json";
const dashboard = JSON.parse(readText(DASHBOARD));
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== "row");
const variables = dashboard.templating.list;

const dashboardQueries = () => queriesOfDashboard(dashboard);

test("the dashboard has an identity and a Prometheus data source variable", () => {
  assert.equal(dashboard.uid, "jam-balancer");
  assert.equal(dashboard.title, "jam-balancer");
  assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36);
  assert.equal(dashboard.id ?? null, null, "no database id in a provisioned dashboard");
  const datasource = variables.find((v) => v.name === "datasource");
  assert.equal(datasource?.type, "datasource");
  assert.equal(datasource.query, "prometheus");
});

test("panels have unique ids, fit 24 columns and do not overlap", () => {
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "unique ids");
  const boxes = panels.map((p) => ({ title: p.title, ...p.gridPos }));
  for (const box of boxes) {
    assert.ok(box.x >= 0 && box.w > 0 && box.x + box.w <= 24 && box.h > 0 && box.y >= 0, box.title);
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i], boxes[j]];
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `"${a.title}" overlaps "${b.title}"`);
    }
  }
});

test("every query panel reads the data source variable", () => {
  for (const panel of queryPanels) {
    assert.ok(panel.targets?.length > 0, `"${panel.title}" has queries`);
    const refIds = panel.targets.map((t) => t.refId);
    assert.equal(new Set(refIds).size, refIds.length, `"${panel.title}" refIds`);
    for (const target of [panel, ...panel.targets]) {
      assert.deepEqual(target.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
    }
  }
});

test("queries use only defined variables", () => {
  const defined = new Set(variables.map((v) => v.name));
  for (const { where, expr } of dashboardQueries()) {
    for (const use of expr.matchAll(/\$\{?(\w+)/g)) {
      const name = use[1];
      assert.ok(name.startsWith("__") || defined.has(name), `${where}: undefined variable $${name}`);
    }
  }
});

test("every query parses (lezer-promql and promtool)", () => {
  const queries = dashboardQueries();
  for (const { where, expr } of queries) {
    assert.deepEqual(analyzePromql(substituteGrafanaVariables(expr)).errors, [], `${where}: ${expr}`);
  }
  // Prometheus' own parser: each query as a recording rule.
  assert.ok(promtool, "promtool not found");
  const dir = tempDir("deploy-dashboard-");
  const rules = {
    groups: [
      {
        name: "dashboard",
        rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: substituteGrafanaVariables(q.expr) })),
      },
    ],
  };
  writeFileSync(path.join(dir, "queries.yml"), YAML.stringify(rules));
  check(promtool, ["check", "rules", path.join(dir, "queries.yml")], { timeoutMs: 60_000 });
});

test("the panels cover calls, errors, latency, jams, users, fill and the strand", () => {
  const all = dashboardQueries().map((q) => q.expr).join("\n");
  for (const needed of [
    /sum by \(grpc_method\) \(rate\(grpc_server_handled_total/,
    /sum by \(grpc_method, grpc_code\) \(rate\(grpc_server_handled_total\{[^}]*grpc_code!="OK"/,
    /histogram_quantile\(0\.99, sum by \(le\) \(rate\(grpc_server_handling_seconds_bucket/,
    /histogram_quantile\(0\.5, sum by \(le\) \(rate\(grpc_server_handling_seconds_bucket/,
    /jam_balancer_jams\{/,
    /jam_balancer_users\{/,
    /jam_balancer_jam_members_bucket\{/,
    /jam_balancer_strand_queue_depth\{/,
    /jam_balancer_strand_wait_seconds_bucket\{/,
  ]) {
    assert.match(all, needed);
  }
  // The fill histogram: Grafana turns the cumulative buckets into counts.
  const fill = queryPanels.find((p) => p.targets.some((t) => t.expr.includes("jam_balancer_jam_members_bucket")));
  assert.equal(fill.targets[0].format, "heatmap");
});

test("a pool variable: the pools of jam_balancer_jams, several at once or all", () => {
  const pool = variables.find((v) => v.name === "pool");
  assert.equal(pool?.type, "query");
  assert.deepEqual(pool.datasource, { type: "prometheus", uid: "${datasource}" });
  const query = typeof pool.query === "string" ? pool.query : pool.query.query;
  assert.match(query, /^label_values\(jam_balancer_jams(\{[^}]*\})?, pool\)$/);
  assert.equal(pool.definition, query);
  assert.equal(pool.multi, true);
  assert.equal(pool.includeAll, true);
  assert.equal(pool.allValue, ".*");
});

// The metrics of a pool: every jam_balancer_* family but the build info
// carries the label pool.
const POOL_METRIC = /\b(jam_balancer_(?!build_info\b)\w+)(\{[^}]*\})?/g;

// The selectors of `expr` that read a pool's metric without pool=~"$pool".
function unfilteredByPool(expr) {
  return [...expr.matchAll(POOL_METRIC)]
    .filter(([, , matchers]) => !/[{,]\s*pool=~"\$pool"\s*[,}]/.test(matchers ?? ""))
    .map(([selector]) => selector);
}

test("every panel query of a pool's metrics reads only the pools chosen", () => {
  const panelQueries = queryPanels.flatMap((p) => p.targets.map((t) => ({ where: `${p.title} ${t.refId}`, ...t })));
  const unfiltered = panelQueries.flatMap(({ where, expr }) => unfilteredByPool(expr).map((s) => `${where}: ${s}`));
  assert.deepEqual(unfiltered, []);
  assert.ok(panelQueries.filter((q) => q.expr.includes("jam_balancer_")).length > 20, "the pools' metrics are read");
  // And the check is sensitive.
  assert.deepEqual(unfilteredByPool('sum(jam_balancer_jams{job="jam-balancer"}) / sum(jam_balancer_limit)'), [
    'jam_balancer_jams{job="jam-balancer"}',
    "jam_balancer_limit",
  ]);
  assert.deepEqual(unfilteredByPool('jam_balancer_users{pool="$pool"} + jam_balancer_build_info'), [
    'jam_balancer_users{pool="$pool"}',
  ]);
  assert.deepEqual(unfilteredByPool('jam_balancer_users{job="jam-balancer", pool=~"$pool"}'), []);
});

test("series split by pool name the pool in their legend", () => {
  let split = 0;
  // Stats show one number (of all the pools chosen).
  for (const panel of queryPanels.filter((p) => p.type !== "stat")) {
    for (const target of panel.targets) {
      const { grouping } = analyzePromql(substituteGrafanaVariables(target.expr));
      if (!grouping.includes("pool")) continue;
      split++;
      assert.match(target.legendFormat ?? "", /\{\{pool\}\}/, `${panel.title} ${target.refId}`);
    }
  }
  assert.ok(split >= 15, `${split} queries split by pool`);
  // The members histogram has buckets up to each pool's max_users: one
  // panel per pool.
  const members = queryPanels.find((p) => p.targets.some((t) => t.expr.includes("jam_balancer_jam_members_bucket")));
  assert.equal(members.repeat, "pool");
  assert.match(members.title, /\$pool/);
});

test("the leadership panels show which replica leads which pool", () => {
  const leader = queryPanels.filter((p) => p.targets.some((t) => /\bjam_balancer_leader\{/.test(t.expr)));
  const byPoolAndInstance = leader.flatMap((p) => p.targets).find((t) => {
    const { grouping } = analyzePromql(substituteGrafanaVariables(t.expr));
    return grouping.includes("pool") && grouping.includes("instance");
  });
  assert.ok(byPoolAndInstance, "jam_balancer_leader by pool and instance");
  assert.match(byPoolAndInstance.legendFormat, /\{\{pool\}\}/);
  assert.match(byPoolAndInstance.legendFormat, /\{\{instance\}\}/);
  const all = dashboardQueries().map((q) => q.expr).join("\n");
  for (const metric of [
    "jam_balancer_leader_epoch",
    "jam_balancer_elections_won_total",
    "jam_balancer_etcd_keepalive_seconds_bucket",
    "jam_balancer_etcd_keepalive_failures_total",
  ]) {
    assert.ok(all.includes(`${metric}{`), metric);
  }
});

test("provisioning points Grafana at the Compose Prometheus and at this dashboard", () => {
  const datasources = parseYaml(
    readText("deploy/grafana/provisioning/datasources/prometheus.yaml"),
    "datasources",
  ).datasources;
  assert.deepEqual(
    datasources.map((d) => [d.type, d.url, d.isDefault]),
    [["prometheus", "http://prometheus:9090", true]],
  );
  const providers = parseYaml(
    readText("deploy/grafana/provisioning/dashboards/jam-balancer.yaml"),
    "dashboards",
  ).providers;
  assert.equal(providers.length, 1);
  assert.equal(providers[0].type, "file");
  // compose_test.mjs checks that Compose mounts the dashboards there.
  assert.equal(providers[0].options.path, "/var/lib/grafana/dashboards/jam-balancer");
});
