// The Prometheus files (deploy/prometheus): promtool accepts the
// configuration and the rules, the rules' unit tests pass, and every alert
// has unit tests in which it fires and in which it stays quiet.
//
// Usage: node prometheus_test.mjs [--promtool=PATH]

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";

import { DEPLOY, check, options, parseYaml, readText, which } from "./lib.mjs";

const opts = options();
const promtool = opts.promtool || which("promtool");
const dir = path.join(DEPLOY, "prometheus");
const alerts = parseYaml(readText("deploy/prometheus/alerts.yml"), "alerts.yml");
const unitTests = parseYaml(readText("deploy/prometheus/alerts_test.yml"), "alerts_test.yml");
const rules = alerts.groups.flatMap((group) => group.rules);

function promtoolOk(args) {
  assert.ok(promtool, "promtool not found: tools/install-deps.sh installs Debian's prometheus");
  return check(promtool, args, { cwd: dir, timeoutMs: 60_000 });
}

test("promtool check config", () => {
  const out = promtoolOk(["check", "config", "prometheus.yml"]);
  assert.match(out, /SUCCESS: 1 rule files found/);
});

test("promtool check rules", () => {
  promtoolOk(["check", "rules", "alerts.yml"]);
});

test("promtool test rules", () => {
  promtoolOk(["test", "rules", "alerts_test.yml"]);
});

test("the scrape job is the one the rules select", () => {
  const config = parseYaml(readText("deploy/prometheus/prometheus.yml"), "prometheus.yml");
  assert.deepEqual(config.rule_files, ["alerts.yml"]);
  assert.deepEqual(
    config.scrape_configs.map((c) => c.job_name),
    ["jam-balancer"],
  );
  for (const rule of rules) {
    for (const selector of rule.expr.matchAll(/\{([^}]*)\}/g)) {
      assert.match(selector[1], /^job="jam-balancer"/, `${rule.alert}: every selector names the job`);
    }
  }
});

test("every alert has a severity, a summary and a description", () => {
  assert.ok(rules.length >= 6);
  for (const rule of rules) {
    assert.ok(rule.alert, `only alerts: ${JSON.stringify(rule)}`);
    assert.match(rule.labels?.severity ?? "", /^(critical|warning)$/, rule.alert);
    assert.ok(rule.annotations?.summary, `${rule.alert} summary`);
    assert.ok(rule.annotations?.description, `${rule.alert} description`);
  }
});

test("every alert has a unit test where it fires and one where it does not", () => {
  assert.deepEqual(unitTests.rule_files, ["alerts.yml"]);
  const cases = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const rule of rules) {
    const own = cases.filter((c) => c.alertname === rule.alert);
    assert.ok(own.some((c) => c.exp_alerts?.length > 0), `${rule.alert} fires in a test`);
    assert.ok(own.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert} stays quiet in a test`);
  }
  const known = new Set(rules.map((r) => r.alert));
  for (const c of cases) assert.ok(known.has(c.alertname), `test of unknown alert ${c.alertname}`);
});
