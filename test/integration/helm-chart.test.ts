/**
 * The Helm chart, rendered with `helm template` (or helm-template, which renders as it does) for the default values, the
 * GPU values and variations: what renders (kinds, names, env, probes, resources, checksums, the
 * headless Service DNS name the gateways are given), that every variable it sets is a real
 * config key with a valid value, and that values.schema.json refuses bad values.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { chartRenderer, type ChartRenderer } from '../helpers/helm-template.js';
import { GATEWAY, WORKER, configProblems } from '../helpers/config-schemas.js';
import { readJson } from '../helpers/json.js';
import { parseLoadFlags } from '../../src/load/flags.js';

const CHART = join(PROJECT_ROOT, 'helm/glm-legal-serve');
const GPU_VALUES = join(CHART, 'values-gpu.yaml');
const renderer = chartRenderer();
const scratch = mkdtempSync(join(tmpdir(), 'helm-chart-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface RenderOptions {
  files?: string[];
  values?: Obj;
  sets?: string[];
  name?: string;
  namespace?: string;
}

let valuesFiles = 0;
function valuesFile(values: Obj): string {
  const f = join(scratch, `values-${valuesFiles++}.yaml`);
  writeFileSync(f, stringify(values));
  return f;
}

function run(r: ChartRenderer, o: RenderOptions) {
  return r.render({
    valuesFiles: [...(o.files ?? []), ...(o.values ? [valuesFile(o.values)] : [])],
    sets: o.sets ?? [],
    name: o.name ?? 'release',
    namespace: o.namespace ?? 'default',
    chart: CHART,
  });
}

function render(o: RenderOptions = {}): Obj[] {
  const r = run(renderer as ChartRenderer, o);
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

function find(docs: Obj[], kind: string, nameSuffix: string): Obj {
  const d = docs.find((x) => x.kind === kind && (x.metadata.name as string).endsWith(nameSuffix));
  assert.ok(d, `no ${kind} *${nameSuffix}`);
  return d;
}

function podSpec(workload: Obj): Obj {
  return workload.spec.template.spec;
}

/** The variables a container gets: its ConfigMaps and Secrets (envFrom) and its own env. */
function containerEnv(docs: Obj[], container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === from.configMapRef.name)?.data);
    if (from.secretRef) Object.assign(env, docs.find((d) => d.kind === 'Secret' && d.metadata.name === from.secretRef.name)?.stringData);
  }
  for (const e of container.env ?? []) env[e.name] = e.value;
  return env;
}

// The one check that may be left out: without a renderer the chart is not rendered, and this says so.
if ('missing' in renderer) console.log(`chart not rendered: ${renderer.missing}`);
else renderedChartTests();

function renderedChartTests(): void {
  const defaults = render();
  const gpu = render({ files: [GPU_VALUES] });

  test('default values render the gateway, the workers with their headless Service, Redis and the config objects', () => {
    const kinds = defaults.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'ConfigMap/release-glm-legal-serve-gateway',
      'ConfigMap/release-glm-legal-serve-worker',
      'Deployment/release-glm-legal-serve-gateway',
      'Deployment/release-glm-legal-serve-redis',
      'PodDisruptionBudget/release-glm-legal-serve-gateway',
      'Secret/release-glm-legal-serve-gateway',
      'Service/release-glm-legal-serve-gateway',
      'Service/release-glm-legal-serve-redis',
      'Service/release-glm-legal-serve-worker',
      'StatefulSet/release-glm-legal-serve-worker',
    ]);
    for (const d of defaults) assert.equal(d.metadata.labels['app.kubernetes.io/instance'], 'release', `${d.kind} labels`);
  });

  test('gateways are given the DNS name of the headless worker Service, which selects the worker pods', () => {
    const docs = render({ name: 'prod', namespace: 'legal' });
    const svc = find(docs, 'Service', '-worker');
    const sts = find(docs, 'StatefulSet', '-worker');
    assert.equal(svc.spec.clusterIP, 'None');
    assert.equal(sts.spec.serviceName, svc.metadata.name);
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) assert.equal(sts.spec.template.metadata.labels[k], v, k);
    const port = svc.spec.ports[0];
    assert.equal(port.targetPort, 'http');
    const workerContainer = podSpec(sts).containers[0];
    assert.equal(workerContainer.ports[0].name, 'http');
    assert.equal(workerContainer.ports[0].containerPort, port.port);
    const gw = find(docs, 'Deployment', '-gateway');
    const env = containerEnv(docs, podSpec(gw).containers[0]);
    assert.equal(env.GATEWAY_WORKERS_DNS, `prod-glm-legal-serve-worker.legal.svc.cluster.local:${port.port}`);
    assert.equal(containerEnv(docs, workerContainer).WORKER_PORT, String(port.port));
    assert.equal(env.GATEWAY_REDIS_URL, 'redis://prod-glm-legal-serve-redis:6379');
    assert.equal(find(docs, 'Service', '-redis').spec.ports[0].port, 6379);
  });

  test('every container has explicit resources, runs as non-root, and the services are probed on /healthz and /readyz', () => {
    for (const docs of [defaults, gpu]) {
      for (const w of docs.filter((d) => ['Deployment', 'StatefulSet'].includes(d.kind))) {
        const spec = podSpec(w);
        assert.equal(spec.securityContext.runAsNonRoot, true, w.metadata.name);
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          assert.ok(Object.keys(c.resources?.requests ?? {}).length > 0, `${c.name} requests`);
          assert.ok(Object.keys(c.resources?.limits ?? {}).length > 0, `${c.name} limits`);
          assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
        }
      }
      for (const suffix of ['-gateway', '-worker']) {
        const w = docs.find((d) => ['Deployment', 'StatefulSet'].includes(d.kind) && d.metadata.name.endsWith(suffix))!;
        const c = podSpec(w).containers[0];
        assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'http' }, suffix);
        assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'http' }, suffix);
        assert.deepEqual(c.startupProbe.httpGet, { path: '/healthz', port: 'http' }, suffix);
        assert.ok(c.ports.some((p: Obj) => p.name === 'http'));
        const annotations = w.spec.template.metadata.annotations;
        assert.equal(annotations['prometheus.io/scrape'], 'true');
        assert.equal(annotations['prometheus.io/port'], String(c.ports[0].containerPort));
      }
    }
  });

  test('checksum/config annotations change with the configuration, and only for the component whose config changed', () => {
    const sums = (docs: Obj[]) => ({
      gateway: find(docs, 'Deployment', '-gateway').spec.template.metadata.annotations,
      worker: find(docs, 'StatefulSet', '-worker').spec.template.metadata.annotations,
    });
    const base = sums(defaults);
    assert.match(base.gateway['checksum/config'], /^[0-9a-f]{64}$/);
    assert.match(base.gateway['checksum/secret'], /^[0-9a-f]{64}$/);
    assert.match(base.worker['checksum/config'], /^[0-9a-f]{64}$/);
    const forced = sums(render({ sets: ['gateway.degrade.mode=forced'] }));
    assert.notEqual(forced.gateway['checksum/config'], base.gateway['checksum/config']);
    assert.equal(forced.gateway['checksum/secret'], base.gateway['checksum/secret']);
    assert.equal(forced.worker['checksum/config'], base.worker['checksum/config']);
    const admin = sums(render({ sets: [`gateway.auth.adminTokenSha256=${'ab'.repeat(32)}`] }));
    assert.notEqual(admin.gateway['checksum/secret'], base.gateway['checksum/secret']);
    const queue = sums(render({ sets: ['worker.scheduler.maxQueue=128'] }));
    assert.notEqual(queue.worker['checksum/config'], base.worker['checksum/config']);
    assert.equal(queue.gateway['checksum/config'], base.gateway['checksum/config']);
    const scaled = sums(render({ sets: ['gateway.replicas=5', 'worker.replicas=7'] }));
    assert.deepEqual(scaled, base);
  });

  test('every variable the chart sets is a real config key of the gateway or the worker, with a valid value', () => {
    const extra = { gateway: { env: { GATEWAY_BREAKER_RESET_TIMEOUT_MS: 20000 } }, worker: { env: { WORKER_SHUTDOWN_GRACE_MS: 5000 } } };
    for (const docs of [defaults, gpu, render({ values: extra, sets: ['redis.enabled=false', 'redis.externalUrl=redis://cache:6379'] })]) {
      const gwEnv = containerEnv(docs, podSpec(find(docs, 'Deployment', '-gateway')).containers[0]);
      assert.ok(Object.keys(gwEnv).length >= 8);
      assert.ok(Object.keys(gwEnv).every((k) => k.startsWith('GATEWAY_')), Object.keys(gwEnv).join());
      assert.deepEqual(configProblems(gwEnv, [GATEWAY]), []);
      const sts = find(docs, 'StatefulSet', '-worker');
      const wEnv = containerEnv(docs, podSpec(sts).containers[0]);
      assert.ok(Object.keys(wEnv).length >= 8);
      assert.ok(Object.keys(wEnv).every((k) => k.startsWith('WORKER_')), Object.keys(wEnv).join());
      const init = podSpec(sts).initContainers?.[0];
      if (init) {
        const initEnv = containerEnv(docs, init);
        assert.equal(initEnv.WORKER_MODEL_DIR, wEnv.WORKER_MODEL_DIR);
        assert.deepEqual(Object.keys(initEnv).sort(), ['DEMO_MODEL_PRESET', 'WORKER_MODEL_DIR']);
      }
      assert.deepEqual(configProblems(wEnv, [WORKER]), []);
    }
    // The check catches a wrong name that the values schema's pattern lets through.
    const typo = render({ values: { gateway: { env: { GATEWAY_BREAKER_RESET_TIMEOUT: 1 } } } });
    const typoEnv = containerEnv(typo, podSpec(find(typo, 'Deployment', '-gateway')).containers[0]);
    assert.deepEqual(configProblems(typoEnv, [GATEWAY]), ['GATEWAY_BREAKER_RESET_TIMEOUT is not a GATEWAY config key']);
  });

  test('API-key hashes and the admin token hash go to the Secret, never the ConfigMap', () => {
    const key = { sha256: 'cd'.repeat(32), tenant: 'firm-a', tier: 'pro' };
    const docs = render({ values: { gateway: { auth: { keys: [key], adminTokenSha256: 'ef'.repeat(32) } } } });
    const secret = find(docs, 'Secret', '-gateway');
    assert.deepEqual(JSON.parse(secret.stringData.GATEWAY_AUTH_KEYS), [key]);
    assert.equal(secret.stringData.GATEWAY_AUTH_ADMIN_TOKEN_SHA256, 'ef'.repeat(32));
    const cm = find(docs, 'ConfigMap', '-gateway');
    assert.ok(!JSON.stringify(cm).includes('cd'.repeat(32)));
    assert.ok(!('GATEWAY_AUTH_KEYS' in cm.data));
    // Without an admin token the key is left out: an empty value is not a valid hash.
    assert.ok(!('GATEWAY_AUTH_ADMIN_TOKEN_SHA256' in find(defaults, 'Secret', '-gateway').stringData));
  });

  test('an existing Secret replaces the chart\'s own', () => {
    const docs = render({ sets: ['gateway.auth.existingSecret=legal-keys'] });
    assert.ok(!docs.some((d) => d.kind === 'Secret'));
    const c = podSpec(find(docs, 'Deployment', '-gateway')).containers[0];
    assert.ok(c.envFrom.some((f: Obj) => f.secretRef?.name === 'legal-keys'));
  });

  test('external Redis: no bundled Redis, the URL in the Secret; without a URL the chart refuses to render', () => {
    const docs = render({ sets: ['redis.enabled=false', 'redis.externalUrl=rediss://user:pw@cache.example:6380'] });
    assert.ok(!docs.some((d) => d.metadata.name.endsWith('-redis')));
    assert.equal(find(docs, 'Secret', '-gateway').stringData.GATEWAY_REDIS_URL, 'rediss://user:pw@cache.example:6380');
    assert.ok(!('GATEWAY_REDIS_URL' in find(docs, 'ConfigMap', '-gateway').data));
    const r = run(renderer as ChartRenderer, { sets: ['redis.enabled=false'] });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /set redis\.externalUrl/);
  });

  test('GPU values: the GPU image, one GPU per worker on GPU nodes, the cuda provider, the model from a volume', () => {
    const sts = find(gpu, 'StatefulSet', '-worker');
    const spec = podSpec(sts);
    const c = spec.containers[0];
    assert.equal(c.image, 'docker.io/glm-legal-serve/worker-gpu:0.1.0');
    assert.equal(c.resources.limits['nvidia.com/gpu'], 1);
    assert.equal(c.resources.requests['nvidia.com/gpu'], 1);
    assert.deepEqual(spec.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
    assert.deepEqual(spec.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    const env = containerEnv(gpu, c);
    assert.equal(env.WORKER_DEVICE_PROVIDER, 'cuda');
    assert.equal(env.WORKER_MODEL_DIR, '/models/chatglm3-6b-law');
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'models').persistentVolumeClaim, { claimName: 'glm-legal-serve-models', readOnly: true });
    assert.equal(spec.initContainers, undefined, 'a mounted model needs no demo model');
    assert.ok(c.volumeMounts.some((m: Obj) => m.mountPath === '/models' && m.readOnly === true));
    assert.ok(gpu.some((d) => d.kind === 'PodDisruptionBudget' && d.metadata.name.endsWith('-worker')));
    // CPU defaults: no GPU asked for, the demo model built by the init container.
    const cpu = podSpec(find(defaults, 'StatefulSet', '-worker'));
    assert.ok(!JSON.stringify(cpu.containers[0].resources).includes('nvidia.com/gpu'));
    assert.deepEqual(cpu.initContainers[0].command, ['sh', '/app/ensure-model.sh']);
  });

  test('autoscaling: an HPA on the gateway Deployment, which then leaves replicas to it', () => {
    const docs = render({ sets: ['gateway.autoscaling.enabled=true'] });
    const hpa = find(docs, 'HorizontalPodAutoscaler', '-gateway');
    const gw = find(docs, 'Deployment', '-gateway');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: gw.metadata.name });
    assert.equal(gw.spec.replicas, undefined);
    assert.equal(find(defaults, 'Deployment', '-gateway').spec.replicas, 2);
    assert.ok(!defaults.some((d) => d.kind === 'HorizontalPodAutoscaler'));
  });

  test('the load-test Job: off by default; on, a `helm test` hook running the load tool against the release\'s gateway Service', () => {
    assert.ok(!defaults.some((d) => d.kind === 'Job'));
    const docs = render({
      namespace: 'legal',
      values: { loadTest: { enabled: true, args: ['--rate', '40', '--duration', '45', '--stream'], apiKeySecret: { name: 'load-key', key: 'key' } } },
    });
    const job = find(docs, 'Job', '-load-test');
    assert.equal(job.metadata.annotations['helm.sh/hook'], 'test');
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(job.spec.activeDeadlineSeconds, 900);
    const pod = podSpec(job);
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const c = pod.containers[0];
    assert.equal(c.image, find(docs, 'Deployment', '-gateway').spec.template.spec.containers[0].image, 'the gateway image holds the tool');
    assert.deepEqual(c.command, ['node', 'dist/src/cli/load.js']);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(c.volumeMounts, [{ name: 'report', mountPath: '/report' }]);
    assert.deepEqual(pod.volumes, [{ name: 'report', emptyDir: {} }]);
    assert.deepEqual(c.env, [{ name: 'LOAD_API_KEY', valueFrom: { secretKeyRef: { name: 'load-key', key: 'key' } } }]);
    const service = find(docs, 'Service', '-gateway');
    const url = c.args[c.args.indexOf('--url') + 1];
    assert.equal(url, `http://${service.metadata.name}.legal.svc:${service.spec.ports[0].port}`);
    // The same tool reads these arguments: they must parse (the key comes from the Secret at run time).
    const flags = parseLoadFlags(c.args.map((a: string) => (a === '$(LOAD_API_KEY)' ? 'sk-from-secret' : a)));
    assert.equal(flags.url, new URL(url).origin);
    assert.deepEqual(flags.arrivals, { kind: 'open', rates: [40], burstiness: 1 });
    assert.equal(flags.apiKey, 'sk-from-secret');
    assert.equal(flags.report, '/report/load-report.html');
    assert.equal(flags.json, '/report/load.json');
    assert.equal(flags.local, null, 'never a local stack in the cluster');

    const kept = render({ values: { loadTest: { enabled: true, persistentVolumeClaim: 'load-reports' } } });
    const keptJob = find(kept, 'Job', '-load-test');
    assert.deepEqual(podSpec(keptJob).volumes, [{ name: 'report', persistentVolumeClaim: { claimName: 'load-reports' } }]);
    assert.equal(podSpec(keptJob).containers[0].env, undefined, 'no key: none sent');
    assert.ok(!podSpec(keptJob).containers[0].args.includes('--api-key'));
  });
}

// --- values.schema.json ----------------------------------------------------------------------

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(readJson<object>(join(CHART, 'values.schema.json')));
const defaultValues = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Obj;

/** Helm's merge of values files: maps merge, null deletes a key, everything else is replaced. */
function merged(...layers: Obj[]): Obj {
  const out: Obj = structuredClone(defaultValues);
  const into = (dst: Obj, src: Obj) => {
    for (const [k, v] of Object.entries(src)) {
      if (v === null) delete dst[k];
      else if (v && typeof v === 'object' && !Array.isArray(v) && dst[k] && typeof dst[k] === 'object' && !Array.isArray(dst[k])) into(dst[k], v);
      else dst[k] = v;
    }
  };
  for (const l of layers) into(out, l);
  return out;
}

function errorsOf(values: Obj): string[] {
  return validate(values) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`);
}

test('values.schema.json accepts the default and the GPU values', () => {
  assert.deepEqual(errorsOf(merged()), []);
  assert.deepEqual(errorsOf(merged(parse(readFileSync(GPU_VALUES, 'utf8')) as Obj)), []);
  assert.deepEqual(errorsOf(merged({ gateway: { env: { GATEWAY_BREAKER_VOLUME_THRESHOLD: 10 } }, redis: { enabled: false, externalUrl: 'redis://r:6379' } })), []);
});

test('values.schema.json refuses wrong values, naming the value at fault', () => {
  const bad: [Obj, string][] = [
    [{ gateway: { replicas: 'two' } }, '/gateway/replicas'],
    [{ gateway: { replica: 2 } }, '/gateway'],
    [{ gateway: { degrade: { mode: 'sometimes' } } }, '/gateway/degrade/mode'],
    [{ gateway: { port: 70000 } }, '/gateway/port'],
    [{ gateway: { image: { repository: '' } } }, '/gateway/image/repository'],
    [{ gateway: { auth: { keys: [{ sha256: 'abc', tenant: 't', tier: 'pro' }] } } }, '/gateway/auth/keys/0/sha256'],
    [{ gateway: { auth: { keys: [{ sha256: 'ab'.repeat(32), tenant: 't' }] } } }, '/gateway/auth/keys/0'],
    [{ gateway: { auth: { adminTokenSha256: 'secret' } } }, '/gateway/auth/adminTokenSha256'],
    [{ gateway: { env: { breakerTimeout: 5 } } }, '/gateway/env'],
    [{ gateway: { env: { WORKER_PORT: 5 } } }, '/gateway/env'],
    [{ gateway: { resources: { requests: { cpu: 'lots' } } } }, '/gateway/resources/requests/cpu'],
    [{ gateway: { resources: { limits: null } } }, '/gateway/resources'],
    [{ worker: { resources: { requests: { cpu: null, memory: null } } } }, '/worker/resources/requests'],
    [{ gateway: { service: { type: 'Ingress' } } }, '/gateway/service/type'],
    [{ worker: { device: { provider: 'rocm' } } }, '/worker/device/provider'],
    [{ worker: { gpu: { enabled: true } } }, '/worker/device/provider'],
    [{ worker: { scheduler: { maxRunningSequences: 0 } } }, '/worker/scheduler/maxRunningSequences'],
    [{ worker: { model: { name: '../etc' } } }, '/worker/model/name'],
    [{ worker: { model: { demoPreset: 'huge' } } }, '/worker/model/demoPreset'],
    [{ redis: { externalUrl: 'http://cache:6379' } }, '/redis/externalUrl'],
    [{ redis: { image: { pullPolicy: 'Sometimes' } } }, '/redis/image/pullPolicy'],
    [{ metrics: { scrapeAnnotations: 'yes' } }, '/metrics/scrapeAnnotations'],
    [{ loadTest: { enabled: 'yes' } }, '/loadTest/enabled'],
    [{ loadTest: { args: ['--local'] } }, '/loadTest/args/0'],
    [{ loadTest: { args: ['--url=http://elsewhere'] } }, '/loadTest/args/0'],
    [{ loadTest: { activeDeadlineSeconds: 0 } }, '/loadTest/activeDeadlineSeconds'],
    [{ gpu: true }, ''],
  ];
  for (const [values, path] of bad) {
    const errors = errorsOf(merged(values));
    assert.ok(errors.length > 0, `accepted ${JSON.stringify(values)}`);
    assert.ok(errors.some((e) => e.startsWith(`${path} `)), `${JSON.stringify(values)}: ${errors.join('; ')}`);
  }
});

test('the README documents every value of values.yaml', () => {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Helm'), readme.indexOf('## Monitoring'));
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  // Maps that are documented as a whole.
  const whole = new Set(['resources', 'env', 'podAnnotations', 'nodeSelector', 'tolerations', 'affinity', 'keys', 'imagePullSecrets']);
  const leaves: string[] = [];
  const walk = (node: Obj, path: string[]) => {
    for (const [k, v] of Object.entries(node)) {
      const p = [...path, k];
      if (v && typeof v === 'object' && !Array.isArray(v) && !whole.has(k) && Object.keys(v).length > 0) walk(v, p);
      else leaves.push(p.join('.'));
    }
  };
  walk(defaultValues, []);
  assert.ok(leaves.length > 40);
  const undocumented = leaves.filter((p) => {
    const cut = p.lastIndexOf('.');
    const parent = p.slice(0, cut);
    const leaf = p.slice(cut + 1);
    return !rows.some((r) => r.includes(`\`${p}\``) || (cut > 0 && r.includes(`\`${parent}.`) && r.includes(`\`.${leaf}\``)));
  });
  assert.deepEqual(undocumented, []);
});
