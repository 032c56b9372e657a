/**
 * The Docker files, checked without a Docker engine: the Dockerfile's stages (multi-stage, npm
 * ci + tsc, production dependencies and dist/ only, non-root, healthchecks, CUDA for the GPU
 * worker), the compose file (services, images from the Dockerfile's targets, loopback ports,
 * mounts that exist, the names Prometheus and the gateway use for each other), every GATEWAY_*
 * and WORKER_* variable they set being a real config key with a valid value, and the
 * model-init script run for real.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../helpers/paths.js';
import { GATEWAY, WORKER, configProblems } from '../../helpers/config-schemas.js';
import { readJson } from '../../helpers/json.js';

const DOCKER = join(PROJECT_ROOT, 'docker');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  steps: Instruction[];
}

/** Dockerfile → stages: continuation lines joined, comments and the parser directive dropped. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot read Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.replace(/\s+/g, ' ');
    if (op === 'FROM') {
      const f = /^(\S+)(?: AS (\S+))?$/i.exec(rest)!;
      stages.push({ from: f[1]!, name: f[2] ?? String(stages.length), steps: [] });
    } else if (stages.length === 0 && op === 'ARG') {
      const [k, v] = rest.split('=');
      args.set(k!, v ?? '');
    } else {
      stages.at(-1)!.steps.push({ op, args: rest });
    }
  }
  return { args, stages };
}

/** ENV a=b c=d → entries. */
/** The ENV of an image, its base stages' included. */
function envOf(image: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of imageSteps(image.name).filter((x) => x.op === 'ENV')) {
    for (const m of s.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

const dockerfile = parseDockerfile(readFileSync(join(DOCKER, 'Dockerfile'), 'utf8'));
const stage = (name: string) => {
  const s = dockerfile.stages.find((x) => x.name === name);
  assert.ok(s, `no stage ${name}`);
  return s;
};
const RUN_TARGETS = ['gateway', 'worker', 'worker-gpu'] as const;

/** A stage and the stages it is built FROM, base first: what makes up its image. */
function lineage(name: string): Stage[] {
  const s = stage(name);
  return dockerfile.stages.some((x) => x.name === s.from) ? [...lineage(s.from), s] : [s];
}
function imageSteps(name: string): Instruction[] {
  return lineage(name).flatMap((s) => s.steps);
}
function copyParts(c: Instruction): { from: string | undefined; src: string; dest: string } {
  const from = /--from=(\S+)/.exec(c.args)?.[1];
  const words = c.args.split(' ').filter((w) => !w.startsWith('--'));
  return { from, src: words[0]!, dest: words.at(-1)! };
}

/** What of the build tree ends up in an image's /app, following COPY --from=<image stage> /app. */
function appContents(name: string): string[] {
  const out: string[] = [];
  for (const c of imageSteps(name).filter((x) => x.op === 'COPY')) {
    const { from, src } = copyParts(c);
    if (from === 'build' || from === 'build-gpu') out.push(src);
    else if (from && src === '/app') out.push(...appContents(from));
  }
  return out;
}

/** The compiled CLI a stage runs (it must exist in this build). */
function cliOf(s: Stage): string {
  const cmd = JSON.parse(s.steps.findLast((x) => x.op === 'CMD')!.args) as string[];
  assert.equal(cmd[0], 'node', `${s.name} runs node`);
  const file = cmd[1]!;
  assert.match(file, /^dist\/src\/cli\/[a-z-]+\.js$/);
  assert.ok(existsSync(join(PROJECT_ROOT, file)), `${s.name} runs ${file}, which the build does not make`);
  return file;
}

const CONFIGS = [GATEWAY, WORKER];

test('Dockerfile: a build stage with npm ci and tsc that drops dev dependencies', () => {
  const build = stage('build');
  const runs = build.steps.filter((s) => s.op === 'RUN').map((s) => s.args).join(' && ');
  assert.match(runs, /npm ci\b/);
  assert.match(runs, /npm run build\b/);
  assert.match(runs, /npm prune --omit=dev/);
  assert.match(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8'), /"build": "tsc /);
  // npm ci comes before the sources are copied, so a source change does not reinstall.
  const ci = build.steps.findIndex((s) => s.op === 'RUN' && s.args.includes('npm ci'));
  const sources = build.steps.findIndex((s) => s.op === 'COPY' && s.args.startsWith('. '));
  assert.ok(ci >= 0 && sources > ci);
});

test('Dockerfile: each image runs from production dependencies and dist/src only, as a non-root user, with a healthcheck', () => {
  const allowed = ['/app/package.json', '/app/node_modules', '/app/dist/src', '/app/data/sample', '/app/adapters'];
  for (const name of RUN_TARGETS) {
    const steps = imageSteps(name);
    assert.equal(lineage(name)[0]!.from.startsWith('${'), true, `${name} starts from a base image, not the build stage`);
    assert.ok(!steps.some((x) => x.op === 'RUN' && /npm (ci|install|run)/.test(x.args)), `${name} installs and builds nothing itself`);
    const contents = appContents(name);
    for (const src of contents) {
      assert.ok(allowed.some((a) => src === a || src.startsWith(`${a}/`)), `${name} copies ${src}`);
    }
    assert.ok(contents.includes('/app/dist/src') && contents.includes('/app/node_modules'), `${name}: ${contents.join(', ')}`);
    const user = steps.findLast((x) => x.op === 'USER');
    assert.ok(user && !['root', '0'].includes(user.args.split(':')[0]!), `${name} runs as ${user?.args}`);
    const hc = steps.findLast((x) => x.op === 'HEALTHCHECK');
    assert.ok(hc, `${name} has a healthcheck`);
    assert.match(hc.args, /\/healthz/);
    assert.ok(steps.some((x) => x.op === 'EXPOSE'), `${name} exposes its port`);
  }
});

test('Dockerfile: the images run the gateway and worker CLIs on their configured ports', () => {
  assert.equal(cliOf(stage('gateway')), 'dist/src/cli/gateway.js');
  for (const name of ['worker', 'worker-gpu']) assert.equal(cliOf(stage(name)), 'dist/src/cli/worker.js');
  assert.equal(envOf(stage('gateway')).GATEWAY_PORT, stage('gateway').steps.find((x) => x.op === 'EXPOSE')!.args);
  assert.equal(envOf(stage('worker')).WORKER_PORT, stage('worker').steps.find((x) => x.op === 'EXPOSE')!.args);
  assert.equal(envOf(stage('gateway')).GATEWAY_HOST, '0.0.0.0');
});

test('Dockerfile: the GPU worker is CUDA 12 with the CUDA provider installed and asked for', () => {
  const gpu = stage('worker-gpu');
  assert.equal(gpu.from, '${CUDA_IMAGE}');
  assert.match(dockerfile.args.get('CUDA_IMAGE') ?? '', /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
  const buildGpu = stage('build-gpu');
  assert.equal(buildGpu.from, 'build');
  assert.ok(
    buildGpu.steps.some(
      (s) => s.op === 'RUN' && /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/.test(s.args) && /libonnxruntime_providers_cuda\.so/.test(s.args),
    ),
  );
  // The worker's tree, with onnxruntime's binaries (the CUDA provider among them) from build-gpu on top.
  const copies = gpu.steps.filter((s) => s.op === 'COPY').map(copyParts);
  assert.deepEqual(copies.map((c) => `${c.from} ${c.src} ${c.dest}`), [
    'node /usr/local/bin/node /usr/local/bin/node',
    'worker /app /app',
    'build-gpu /app/node_modules/onnxruntime-node/bin /app/node_modules/onnxruntime-node/bin',
  ]);
  assert.equal(envOf(gpu).WORKER_DEVICE_PROVIDER, 'cuda');
  assert.equal(envOf(stage('worker')).WORKER_DEVICE_PROVIDER, 'cpu');
  // The project's own install keeps the CPU build: onnxruntime-node's install script (the CUDA
  // download from outside the npm registry) is denied in package.json, so `npm ci` fetches nothing.
  const pkg = readJson<{ allowScripts?: Record<string, boolean> }>(join(PROJECT_ROOT, 'package.json'));
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
});

test('Dockerfile: files copied from the context exist and are not left out by .dockerignore', () => {
  const ignored = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const s of dockerfile.stages) {
    for (const c of s.steps.filter((x) => x.op === 'COPY' && !x.args.includes('--from='))) {
      const words = c.args.split(' ').filter((w) => !w.startsWith('--'));
      for (const src of words.slice(0, -1)) {
        if (src === '.') continue;
        assert.ok(existsSync(join(PROJECT_ROOT, src)), `${s.name}: COPY ${src} does not exist`);
        assert.ok(!ignored.some((i) => src === i || src.startsWith(`${i}/`)), `${s.name}: ${src} is in .dockerignore`);
      }
    }
  }
  for (const must of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(must), `.dockerignore leaves out ${must}`);
});

test('Dockerfile: every GATEWAY_* / WORKER_* variable is a real config key with a valid value', () => {
  for (const name of RUN_TARGETS) {
    const env = envOf(stage(name));
    assert.ok(Object.keys(env).some((k) => /^(GATEWAY|WORKER)_/.test(k)), name);
    assert.deepEqual(configProblems(env, CONFIGS), [], name);
  }
  assert.deepEqual(configProblems({ GATEWAY_NO_SUCH_KEY: '1' }, [GATEWAY]), ['GATEWAY_NO_SUCH_KEY is not a GATEWAY config key']);
  assert.equal(configProblems({ GATEWAY_PORT: 'eighty' }, [GATEWAY]).length, 1);
});

// --- compose -----------------------------------------------------------------------------

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target: string };
  command?: string[];
  environment?: Record<string, string | null>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  profiles?: string[];
  networks?: Record<string, { aliases?: string[] }>;
  deploy?: { replicas?: number; resources?: { reservations?: { devices?: { driver: string; capabilities: string[] }[] } } };
}
const compose = parse(readFileSync(join(DOCKER, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

/** Compose's `${VAR:-default}` with nothing set in the shell. */
function interpolate(value: string): string {
  return value.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, _name: string, dflt?: string) => dflt ?? '');
}
function composeEnv(s: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(s.environment ?? {}).flatMap(([k, v]) => (v === null ? [] : [[k, interpolate(String(v))]])));
}

test('compose: redis, a gateway, workers on a model volume, model-init, Prometheus and Grafana', () => {
  for (const name of ['redis', 'gateway', 'worker', 'model-init', 'prometheus', 'grafana', 'worker-gpu']) assert.ok(services[name], name);
  assert.ok((services.worker!.deploy?.replicas ?? 1) >= 1);
  for (const [name, s] of Object.entries(services)) {
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const dep of deps) assert.ok(services[dep], `${name} depends on unknown ${dep}`);
    for (const v of s.volumes ?? []) {
      const source = interpolate(v).split(':')[0]!;
      if (source.startsWith('.')) assert.ok(existsSync(join(DOCKER, source)), `${name}: ${source} does not exist`);
      else assert.ok(source in compose.volumes, `${name}: volume ${source} is not declared`);
    }
  }
});

test('compose: project images are built from the Dockerfile targets, and ports are published on loopback only', () => {
  const targets = new Set(dockerfile.stages.map((s) => s.name));
  const imageOfTarget = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    if (s.build) {
      assert.equal(s.build.dockerfile, 'docker/Dockerfile', name);
      assert.ok(existsSync(join(DOCKER, s.build.context, s.build.dockerfile)), name);
      assert.ok(targets.has(s.build.target) && RUN_TARGETS.includes(s.build.target as never), `${name}: target ${s.build.target}`);
      const prior = imageOfTarget.get(s.build.target);
      if (prior) assert.equal(s.image, prior, `${name}: one image name per target`);
      imageOfTarget.set(s.build.target, s.image!);
    }
    for (const p of s.ports ?? []) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p}`);
  }
  assert.deepEqual([...imageOfTarget.keys()].sort(), ['gateway', 'worker', 'worker-gpu']);
});

test('compose: workers get a model first; the GPU workers ask for a GPU and answer to the name `worker`', () => {
  const init = services['model-init']!;
  assert.deepEqual(init.command, ['sh', '/app/ensure-model.sh']);
  for (const name of ['worker', 'worker-gpu']) {
    const s = services[name]!;
    assert.deepEqual(s.depends_on, { 'model-init': { condition: 'service_completed_successfully' } }, name);
    assert.equal(composeEnv(s).WORKER_MODEL_DIR, composeEnv(init).WORKER_MODEL_DIR, name);
    assert.ok((s.volumes ?? []).every((v) => v.endsWith(':ro')), `${name} mounts the model read-only`);
  }
  assert.equal(composeEnv(init).WORKER_MODEL_DIR, '/models/demo-tiny');
  assert.deepEqual(init.volumes?.map((v) => interpolate(v)), ['models:/models']);
  const gpu = services['worker-gpu']!;
  assert.deepEqual(gpu.profiles, ['gpu']);
  assert.ok(gpu.networks?.default?.aliases?.includes('worker'));
  assert.deepEqual(gpu.deploy?.resources?.reservations?.devices?.[0]?.capabilities, ['gpu']);
  assert.equal(composeEnv(gpu).WORKER_DEVICE_PROVIDER, 'cuda');
});

test('compose: the gateway finds the workers by DNS, Prometheus scrapes both on their ports, Grafana loads the dashboards', () => {
  const gw = composeEnv(services.gateway!);
  const workerPort = composeEnv(services.worker!).WORKER_PORT;
  assert.equal(gw.GATEWAY_WORKERS_DNS, `worker:${workerPort}`);
  assert.equal(gw.GATEWAY_REDIS_URL, 'redis://redis:6379');
  const prom = parse(readFileSync(join(DOCKER, 'prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[];
  };
  const job = (n: string) => prom.scrape_configs.find((j) => j.job_name === n)?.dns_sd_configs?.[0];
  assert.deepEqual(job('gateway'), { names: ['gateway'], type: 'A', port: Number(gw.GATEWAY_PORT), refresh_interval: '15s' });
  assert.deepEqual(job('worker'), { names: ['worker'], type: 'A', port: Number(workerPort), refresh_interval: '15s' });
  assert.ok(services.prometheus!.volumes!.includes('./prometheus:/etc/prometheus:ro'));
  const provider = parse(readFileSync(join(DOCKER, 'grafana/provisioning/dashboards/glm-legal-serve.yml'), 'utf8')) as {
    providers: { options: { path: string } }[];
  };
  assert.ok(services.grafana!.volumes!.includes(`./grafana/dashboards:${provider.providers[0]!.options.path}:ro`));
  const ds = parse(readFileSync(join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { url: string }[] };
  assert.equal(ds.datasources[0]!.url, 'http://prometheus:9090');
});

test('compose: every GATEWAY_* / WORKER_* variable is a real config key with a valid value', () => {
  for (const [name, s] of Object.entries(services)) {
    // Pass-through variables (no value) are checked by name only.
    for (const k of Object.keys(s.environment ?? {})) {
      if (/^(GATEWAY|WORKER)_/.test(k)) assert.ok(CONFIGS.some((c) => c.envNames.has(k)), `${name}: ${k} is not a config key`);
    }
    assert.deepEqual(configProblems(composeEnv(s), CONFIGS), [], name);
  }
});

// --- the model-init script -----------------------------------------------------------------

test('ensure-model.sh leaves a mounted model alone and refuses to run without WORKER_MODEL_DIR', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ensure-model-'));
  try {
    const model = join(dir, 'real');
    mkdirSync(model);
    writeFileSync(join(model, 'model.json'), '{"mounted": true}');
    const ok = spawnSync('sh', [join(DOCKER, 'ensure-model.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, APP_DIR: join(dir, 'no-app-here'), WORKER_MODEL_DIR: model },
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /model found at/);
    assert.equal(readFileSync(join(model, 'model.json'), 'utf8'), '{"mounted": true}');
    const bad = spawnSync('sh', [join(DOCKER, 'ensure-model.sh')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /WORKER_MODEL_DIR is not set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ensure-model.sh builds the demo model with the project\'s demo-model command when none is mounted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ensure-model-'));
  try {
    const model = join(dir, 'demo-tiny');
    const env = { PATH: process.env.PATH, APP_DIR: PROJECT_ROOT, WORKER_MODEL_DIR: model, HOME: dir };
    const r = spawnSync('sh', [join(DOCKER, 'ensure-model.sh')], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /building the demo model \(preset tiny\)/);
    const manifest = readJson<{ name: string }>(join(model, 'model.json'));
    assert.equal(manifest.name, 'chatglm3-demo-tiny');
    for (const f of ['model.onnx', 'tokenizer.model']) assert.ok(existsSync(join(model, f)), f);
    const again = spawnSync('sh', [join(DOCKER, 'ensure-model.sh')], { encoding: 'utf8', env });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /model found at/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
