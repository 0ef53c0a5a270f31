// Shared helpers of the deploy tests (tests/deploy/*_test.mjs): the
// repository's paths, the npm tools of tools/package.json, bounded commands,
// a jam-balancer on loopback that cannot outlive its test, an etcd cluster
// and replicated balancers as the deploy files describe them, on loopback,
// and a PromQL reader.
//
// Every command has a time limit; every server and etcd member is started
// under `timeout --signal=KILL` and killed when the test process exits.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
);
export const DEPLOY = path.join(ROOT, "deploy");

// require() that resolves the npm packages installed in tools/node_modules.
export const requireTool = createRequire(path.join(ROOT, "tools", "package.json"));
export const YAML = requireTool("yaml");

// Command-line options of a test: --name=value pairs.
export function options() {
  const result = {};
  for (const arg of process.argv.slice(2)) {
    const match = /^--([\w-]+)=(.*)$/.exec(arg);
    if (!match) throw new Error(`unknown argument ${arg}`);
    result[match[1]] = match[2];
  }
  return result;
}

export function readText(relative) {
  return readFileSync(path.join(ROOT, relative), "utf8");
}

// Parses one YAML document; throws on syntax errors and warnings.
export function parseYaml(text, where) {
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length) {
    throw new Error(`${where}: ${problems.map((e) => e.message).join("\n")}`);
  }
  return doc.toJS();
}

export function parseYamlAll(text, where) {
  return YAML.parseAllDocuments(text).map((doc, i) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length) {
      throw new Error(`${where} document ${i}: ${problems.map((e) => e.message).join("\n")}`);
    }
    return doc.toJS();
  });
}

export function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Runs a command to its end (at most timeoutMs); returns {status, stdout,
// stderr}. Throws if it cannot start or runs out of time.
export function run(command, args, { timeoutMs = 60_000, cwd = ROOT, input } = {}) {
  const result = spawnSync(command, args, {
    cwd,
    input,
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) {
    throw new Error(`${command} ${args.join(" ")}: ${result.error.message}`);
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// Runs a command that must exit 0; returns its stdout.
export function check(command, args, opts) {
  const result = run(command, args, opts);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.status}\n` +
        `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return result.stdout;
}

// The first executable named `name` on PATH, or null.
export function which(name) {
  const result = spawnSync("sh", ["-c", `command -v "$1"`, "sh", name], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : null;
}

// Longest life of a server started here, whatever happens to the test.
const SERVER_LIFETIME_S = 100;
const START_TIMEOUT_MS = 10_000;

// A jam-balancer process on 127.0.0.1. `flags` must choose loopback
// addresses. Resolves when the start-up line has logged the ports.
export function startServer(serverPath, flags) {
  const child = spawn(
    "timeout",
    ["--signal=KILL", String(SERVER_LIFETIME_S), serverPath, ...flags],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  // timeout(1) leads its own process group, the server in it: kill both.
  const kill = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.on("exit", kill);
  let stderr = "";
  const server = {
    child,
    kill,
    stderr: () => stderr,
    // Sends SIGTERM; resolves with the exit code (null if killed by timeout).
    stop(timeoutMs = 15_000) {
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        const timer = setTimeout(() => {
          kill();
          resolve(null);
        }, timeoutMs);
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        // timeout(1) passes SIGTERM on to the server.
        child.kill("SIGTERM");
      });
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`jam-balancer logged no ports in ${START_TIMEOUT_MS} ms:\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      // Text (port=N) or JSON ("port":"N") log lines.
      const port = /(?:\sport=|"port":")(\d+)/.exec(stderr);
      const metrics = /(?:\smetrics_port=|"metrics_port":")(\d+)/.exec(stderr);
      if (port && metrics && server.port === undefined) {
        clearTimeout(timer);
        server.port = Number(port[1]);
        server.metricsPort = Number(metrics[1]);
        server.startLine = stderr.split("\n").find((line) => line.includes("jam-balancer started"));
        resolve(server);
      }
    });
    child.on("exit", (code, signal) => {
      if (server.port === undefined) {
        clearTimeout(timer);
        reject(new Error(`jam-balancer exited (${code ?? signal}) before it started:\n${stderr}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------
// PromQL

const { parser: promqlParser } = requireTool("@prometheus-io/lezer-promql");

// Grafana's variables, replaced by values that keep the expression valid
// PromQL for the checks.
export function substituteGrafanaVariables(expr) {
  return expr
    .replaceAll("$__rate_interval", "5m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$__range", "1h")
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, ".*");
}

// What a PromQL expression reads. Returns {errors, selectors: [{metric,
// labels}], grouping: [label names in by/without/on/ignoring/group_*]}.
// Grafana variables must be substituted first.
export function analyzePromql(expr) {
  const tree = promqlParser.parse(expr);
  const errors = [];
  const selectors = [];
  const grouping = [];
  const text = (node) => expr.slice(node.from, node.to);
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) {
        errors.push(`syntax error at ${ref.from}: ...${expr.slice(Math.max(0, ref.from - 20), ref.from + 20)}...`);
        return;
      }
      if (ref.name === "VectorSelector") {
        const node = ref.node;
        const identifier = node.getChild("Identifier");
        const selector = { metric: identifier ? text(identifier) : null, labels: [] };
        const matchers = node.getChild("LabelMatchers");
        if (matchers) {
          for (let child = matchers.firstChild; child; child = child.nextSibling) {
            const name = child.getChild("LabelName");
            const value = child.getChild("StringLiteral");
            if (!name) continue;
            const label = text(name);
            if (label === "__name__" && value) {
              selector.metric = JSON.parse(text(value).replace(/^'|'$/g, '"'));
            } else {
              selector.labels.push(label);
            }
          }
        }
        selectors.push(selector);
        return false;
      }
      if (ref.name === "GroupingLabels") {
        for (let child = ref.node.firstChild; child; child = child.nextSibling) {
          if (child.name === "LabelName") grouping.push(text(child));
        }
        return false;
      }
      return undefined;
    },
  });
  return { errors, selectors, grouping };
}

// Parses the Prometheus text exposition format: a map from each sample name
// (e.g. foo_bucket) to the set of label names seen on it.
export function parseExposition(text) {
  const samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (!match) throw new Error(`unparsable exposition line: ${line}`);
    const labels = samples.get(match[1]) ?? new Set();
    for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) {
      labels.add(pair[1]);
    }
    samples.set(match[1], labels);
  }
  return samples;
}

// Every PromQL query of a Grafana dashboard: panel targets and the selectors
// of label_values() variable queries. Returns [{where, expr}].
export function queriesOfDashboard(dashboard) {
  const queries = [];
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  for (const panel of panels.filter((p) => p.type !== "row")) {
    for (const target of panel.targets ?? []) {
      queries.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
    }
  }
  for (const variable of dashboard.templating.list.filter((v) => v.type === "query")) {
    const query = typeof variable.query === "string" ? variable.query : variable.query.query;
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(query);
    if (!inner) throw new Error(`variable ${variable.name}: expected label_values(SELECTOR, LABEL), got ${query}`);
    queries.push({ where: `variable ${variable.name}`, expr: inner[1] });
  }
  return queries;
}

// ---------------------------------------------------------------------------
// Replicated balancers on etcd, as a manifest describes them, on loopback.

// The flags jam-balancer accepts: those its --help lists, and Abseil's
// --flagfile.
export function serverFlags(serverPath) {
  const help = run(serverPath, ["--help"], { timeoutMs: 20_000 }).stdout;
  const flags = new Set([...help.matchAll(/^\s+--(\w+) \(/gm)].map((m) => m[1]));
  for (const expected of ["listen", "etcd_endpoints", "advertise_address"]) {
    if (!flags.has(expected)) throw new Error(`--help lists no --${expected}:\n${help}`);
  }
  flags.add("flagfile");
  return flags;
}

// The names of the --name=value arguments that `flags` does not know.
export function unknownFlags(args, flags) {
  return args
    .map((arg) => /^--(\w+)(=|$)/.exec(arg)?.[1] ?? `(not --name=value: ${arg})`)
    .filter((name) => !flags.has(name));
}

// `count` distinct TCP ports of 127.0.0.1 that were free a moment ago.
export async function freePorts(count) {
  const servers = [];
  for (let i = 0; i < count; i++) {
    const server = net.createServer();
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    servers.push(server);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

// The major.minor of the etcd on PATH (e.g. "3.4"), or null if there is none.
export function localEtcdVersion() {
  const etcd = which("etcd");
  if (!etcd) return null;
  const match = /etcd Version: (\d+\.\d+)\./.exec(run(etcd, ["--version"], { timeoutMs: 20_000 }).stdout);
  return match ? match[1] : null;
}

// Longest life of an etcd member started here.
const ETCD_LIFETIME_S = 100;
const ETCD_HEALTHY_TIMEOUT_MS = 30_000;

// Starts the etcd on PATH once per member, with the member's own arguments
// moved to loopback: each member gets two free ports for `clientPort` and
// `peerPort`, and every http://HOST:PORT in the arguments becomes
// http://127.0.0.1:<that member's port> (HOST: a member's `host`, the name
// its peers and clients use, or 0.0.0.0 for the member's own); --data-dir
// becomes a temporary folder. Any other host or port is an error: the
// arguments must name only the members. Resolves once every member answers
// `healthPath` with 200, with {endpoints: "127.0.0.1:P,..." (the client
// ports), members: [{name, clientUrl}], logs()}.
//
// members: [{name, host, args}]
export async function startEtcdCluster(members, { clientPort, peerPort, healthPath = "/health" }) {
  const etcd = which("etcd");
  if (!etcd) throw new Error("etcd not found: tools/install-deps.sh installs Debian's etcd-server");
  const ports = await freePorts(2 * members.length);
  const local = members.map((member, i) => ({
    ...member,
    ports: { [clientPort]: ports[2 * i], [peerPort]: ports[2 * i + 1] },
  }));
  const dir = tempDir("deploy-etcd-");
  const localize = (member, arg) => {
    if (arg.startsWith("--data-dir=")) return `--data-dir=${path.join(dir, member.name)}`;
    return arg.replace(/http:\/\/([^:/,]+):(\d+)/g, (url, host, port) => {
      const target = host === "0.0.0.0" ? member : local.find((m) => m.host === host);
      if (!target) throw new Error(`${member.name}: ${url} names no member (${arg})`);
      const mapped = target.ports[port];
      if (!mapped) throw new Error(`${member.name}: ${url}: port neither ${clientPort} nor ${peerPort}`);
      return `http://127.0.0.1:${mapped}`;
    });
  };
  const logs = [];
  for (const member of local) {
    const args = member.args.map((arg) => localize(member, arg));
    const child = spawn("timeout", ["--signal=KILL", String(ETCD_LIFETIME_S), etcd, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const kill = () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    process.on("exit", kill);
    const log = { name: member.name, text: "", exit: null };
    logs.push(log);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.text += chunk;
    });
    child.on("exit", (code, signal) => {
      log.exit = code ?? signal;
    });
    member.kill = kill;
    member.clientUrl = `http://127.0.0.1:${member.ports[clientPort]}`;
  }
  // Each log's first lines (a refused flag) and last ones.
  const describe = () =>
    logs
      .map((l) => {
        const lines = l.text.split("\n");
        const shown = lines.length > 20 ? [...lines.slice(0, 5), "...", ...lines.slice(-15)] : lines;
        return `--- ${l.name} (exit ${l.exit ?? "-"}):\n${shown.join("\n")}`;
      })
      .join("\n");
  const stop = () => local.forEach((m) => m.kill());
  const deadline = Date.now() + ETCD_HEALTHY_TIMEOUT_MS;
  try {
    for (const member of local) {
      for (;;) {
        const exited = logs.find((l) => l.exit !== null);
        if (exited) throw new Error(`etcd member ${exited.name} exited:\n${describe()}`);
        const status = await fetch(`${member.clientUrl}${healthPath}`, { signal: AbortSignal.timeout(2_000) })
          .then((response) => response.status)
          .catch(() => 0);
        if (status === 200) break;
        if (Date.now() > deadline) throw new Error(`etcd not healthy in ${ETCD_HEALTHY_TIMEOUT_MS} ms:\n${describe()}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } catch (error) {
    stop();
    throw error;
  }
  return {
    endpoints: local.map((m) => `127.0.0.1:${m.ports[clientPort]}`).join(","),
    members: local.map(({ name, clientUrl }) => ({ name, clientUrl })),
    logs: describe,
    stop,
  };
}

// Starts one jam-balancer per argument list (each must put it on loopback
// and in one election per pool) and checks what the deploy files rely on:
// every pool is led by exactly one replica, and all replicas agree which
// (GetRouting, `jamctl routing`, names it by its `advertise` address); the
// rebalancer spreads the pools (no replica leads more than its share,
// pools / replicas rounded up); a replica reports the balancer service SERVING (a readiness probe on it
// passes) exactly while it leads a pool, and every one reports the process
// ("") SERVING (liveness); a replica that does not lead the default pool
// refuses its calls naming the one that does; and when the default pool's
// leader stops, the others take over every pool. With the default pool
// alone that is one leader and standbys. All exit 0 on SIGTERM. Resolves
// with {startLines} (each replica's start log line) and {pools} (the pools'
// names); throws on the first failure.
//
// replicas: [{args, advertise}]
export async function checkElection(serverPath, jamctlPath, replicas, service) {
  const servers = [];
  try {
    for (const { args } of replicas) servers.push(await startServer(serverPath, args));
    const jamctl = (server, ...args) =>
      run(jamctlPath, [`--target=127.0.0.1:${server.port}`, "--deadline=3s", ...args], { timeoutMs: 20_000 });
    const serving = (server, name) => jamctl(server, "health", ...(name ? [name] : [])).status === 0;
    const advertised = (server) => replicas[servers.indexOf(server)].advertise;
    // Each pool's leader as `server` knows it: {pool: address ("": none)}.
    const routing = (server) => {
      const result = jamctl(server, "routing");
      if (result.status !== 0) throw new Error(`jamctl routing exited ${result.status}:\n${result.stderr}`);
      const { routes } = JSON.parse(result.stdout);
      return Object.fromEntries(routes.map((r) => [r.pool, r.leaderAddress ?? ""]));
    };
    // Waits until every running replica knows the same leader of every
    // pool, each leader one of them, none leads more than its share, and
    // exactly the leaders report the service SERVING (the rebalancer may be
    // moving a pool meanwhile: look again). Resolves with {pool: leader
    // server}.
    const leaders = async (running) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const views = running.map(routing);
        const seen = JSON.stringify(views[0]);
        const leading = Object.fromEntries(
          Object.entries(views[0]).map(([pool, address]) => [pool, running.find((s) => advertised(s) === address)]),
        );
        const agreed = views.every((view) => JSON.stringify(view) === seen);
        const led = Object.values(leading).every((server) => server !== undefined);
        const share = Math.ceil(Object.keys(leading).length / running.length);
        const spread = running.every((s) => Object.values(leading).filter((l) => l === s).length <= share);
        const ready = running.every((s) => serving(s, service) === Object.values(leading).includes(s));
        if (agreed && led && spread && ready) return leading;
        if (Date.now() > deadline) {
          throw new Error(
            `the replicas do not agree on one leader per pool, each leading its share and SERVING ` +
              `${service} exactly while it leads a pool:\n${running.map((s, i) => `${advertised(s)}: ${JSON.stringify(views[i])}`).join("\n")}\n` +
              running.map((s) => s.stderr()).join("\n---\n"),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    await leaders(servers);
    for (const server of servers) {
      if (!serving(server, "")) throw new Error(`a replica reports the process ("") not SERVING:\n${server.stderr()}`);
    }
    // The default pool's calls (jamctl names no pool): refused by the
    // others, naming its leader.
    let leader;
    for (let attempt = 0; ; attempt++) {
      leader = (await leaders(servers)).default;
      const refusals = servers
        .filter((s) => s !== leader)
        .map((s) => jamctl(s, "stats"))
        .filter((r) => r.status === 0 || !`${r.stdout}${r.stderr}`.includes(advertised(leader)));
      if (refusals.length === 0) break;
      if (attempt === 5) {
        const [refused] = refusals;
        throw new Error(
          `a replica's refusal does not name the default pool's leader ${advertised(leader)} ` +
            `(exit ${refused.status}):\n${refused.stdout}${refused.stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // The leader resigns on SIGTERM; the others lead every pool at once.
    const pools = Object.keys(routing(leader)).sort();
    const code = await leader.stop();
    if (code !== 0) throw new Error(`the leader exited ${code}:\n${leader.stderr()}`);
    const rest = servers.filter((s) => s !== leader);
    if (rest.length) await leaders(rest);
    for (const server of rest) {
      const exit = await server.stop();
      if (exit !== 0) throw new Error(`a replica exited ${exit}:\n${server.stderr()}`);
    }
    return { startLines: servers.map((s) => s.startLine), pools };
  } finally {
    for (const server of servers) server.kill();
  }
}
