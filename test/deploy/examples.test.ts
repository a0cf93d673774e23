import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { MIN_SECRET_LENGTH, SETTINGS, type Setting } from '../../lib/config/settings.js'
import { parseDockerfile, type Stage } from '../../scripts/dockerfile.mjs'
import { buildGateway } from '../helpers/gateway.js'

/*
 * Issue 23: "Examples that cannot go stale." No Docker engine and no cluster run here, so everything in deploy/ is
 * held to what can be checked without one:
 *   - every file parses (YAML with duplicate keys and other errors refused), and a file of a new kind fails here
 *     until it gets its own check;
 *   - every Kubernetes object validates against the Kubernetes API's schemas (kubernetes-models, generated from the
 *     OpenAPI definitions of a current Kubernetes: 1.34 or later, as resource.k8s.io/v1 is in it), and has no
 *     field those types do not know (tsc's excess-property check over the same definitions: the schemas alone
 *     accept unknown fields, which `kubectl apply` refuses);
 *   - every MCP_GATEWAY_* name is a setting of lib/config/settings.ts (or the *_FILE twin of a secret one);
 *   - the probes and the proxy use the app's own paths and port, and the gateway answers those paths;
 *   - compose.yaml and the manifests configure the same settings, the same upstream, and the secrets as files;
 *   - shutdown fits: the gateway's grace ends before `docker stop` or the kubelet kills it.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEPLOY = join(ROOT, 'deploy')

type Json = Record<string, unknown>
const obj = (value: unknown): Json => (typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Json : {})
const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])
const str = (value: unknown): string => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '')

function filesUnder (dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [relative(DEPLOY, path)]
  })
}

/** Every YAML document of a file, parsed strictly: a syntax error, a duplicate key or a warning fails. */
function parseYaml (file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'), { uniqueKeys: true, strict: true, prettyErrors: true })
  if (!Array.isArray(docs)) throw new Error(`${file}: not YAML documents`)
  const problems = docs.flatMap((doc) => [...doc.errors, ...doc.warnings]).map((e) => e.message)
  if (problems.length > 0) throw new Error(`${file}:\n${problems.join('\n')}`)
  return docs.map((doc) => doc.toJS({ maxAliasCount: 10 }) as unknown).filter((doc) => doc !== null)
}

const files = filesUnder(DEPLOY)
const manifests = files.filter((f) => f.startsWith('kubernetes/') && f.endsWith('.yaml'))
const objects = manifests.flatMap((file) => parseYaml(file).map((doc) => ({ file, doc: obj(doc) })))
const compose = obj(parseYaml('compose.yaml')[0])
const caddyfile = readFileSync(join(DEPLOY, 'Caddyfile'), 'utf8')
const runtime = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).at(-1) as Stage
const imageEnv: Record<string, string> = Object.assign({}, ...runtime.steps.flatMap((s) => (s.instruction === 'ENV' ? [s.env] : [])))

const only = (kind: string): Json => {
  const found = objects.filter((o) => o.doc['kind'] === kind)
  if (found.length !== 1) throw new Error(`${found.length} ${kind} objects in deploy/kubernetes`)
  return (found[0] as { doc: Json }).doc
}
const deployment = only('Deployment')
const podSpec = obj(obj(obj(deployment['spec'])['template'])['spec'])
const container = obj(arr(podSpec['containers'])[0])
const configMap = only('ConfigMap')
const secret = only('Secret')
const service = only('Service')
const pdb = only('PodDisruptionBudget')
const services = obj(compose['services'])
const gatewayService = obj(services['gateway'])

/** What the Deployment's container sees: the image's ENV, the ConfigMap, then `env` (valueFrom: the name only). */
const k8sEnv: Record<string, string> = {
  ...imageEnv,
  ...Object.fromEntries(Object.entries(obj(configMap['data'])).map(([k, v]) => [k, str(v)])),
  ...Object.fromEntries(arr(container['env']).map((e) => [str(obj(e)['name']), obj(e)['value'] === undefined ? '(valueFrom)' : str(obj(e)['value'])]))
}
/** What a compose replica sees: the image's ENV, then `environment` (compose's ${VAR:-default} as written). */
const composeEnv: Record<string, string> = { ...imageEnv, ...Object.fromEntries(Object.entries(obj(gatewayService['environment'])).map(([k, v]) => [k, str(v)])) }

const settings = Object.values(SETTINGS) as Setting[]
const knownNames = new Set(settings.flatMap((s) => (s.secret === true ? [s.env, `${s.env}_FILE`] : [s.env])))
const secretEnvs = settings.filter((s) => s.secret === true).map((s) => s.env)

t.test('every file in deploy/ parses, and each kind of file has its check here', async (t) => {
  t.same(files, [
    'Caddyfile',
    'compose.yaml',
    'kubernetes/configmap.yaml',
    'kubernetes/deployment.yaml',
    'kubernetes/pdb.yaml',
    'kubernetes/secret.yaml',
    'kubernetes/service.yaml',
    'secrets/.gitignore'
  ], 'the files this test knows how to check (add a check with a new file)')
  for (const file of files.filter((f) => f.endsWith('.yaml'))) t.doesNotThrow(() => parseYaml(file), `${file} is valid YAML`)
  t.equal(objects.length, manifests.length, 'one Kubernetes object per manifest file')
  let depth = 0
  for (const char of caddyfile.replace(/#.*$/gm, '').replace(/\{\$[A-Z_]+\}/g, '')) {
    if (char === '{') depth++
    if (char === '}') depth--
    if (depth < 0) break
  }
  t.equal(depth, 0, 'the Caddyfile\'s blocks are balanced')
  t.match(readFileSync(join(DEPLOY, 'secrets/.gitignore'), 'utf8'), /^\*$/m, 'deploy/secrets/ keeps every secret out of git')
})

const caddy = (process.env['PATH'] ?? '').split(':').map((dir) => join(dir, 'caddy')).find((path) => existsSync(path))
t.test('Caddy itself validates the Caddyfile (where Caddy is installed: .ci/run installs Debian\'s)', {
  skip: caddy === undefined ? 'caddy is not installed here (apt-get install caddy): the Caddyfile is only parsed above' : false
}, async (t) => {
  if (caddy === undefined) return
  const publicUrl = /^\$\{PUBLIC_URL:-(.+)\}$/.exec(composeEnv['MCP_GATEWAY_PUBLIC_URL'] ?? '')?.[1]
  t.ok(publicUrl !== undefined, `compose.yaml's default public URL (${String(publicUrl)})`)
  const home = mkdtempSync(join(tmpdir(), 'mcp-gateway-caddy-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  // `validate` loads and provisions every module (the local CA included), in a folder of its own, and starts nothing.
  const child = spawn(caddy, ['validate', '--config', join(DEPLOY, 'Caddyfile'), '--adapter', 'caddyfile'], {
    env: { PATH: process.env['PATH'] ?? '', HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home, PUBLIC_URL: publicUrl ?? '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.ok(code === 0 && output.includes('Valid configuration'), code === 0 ? 'caddy validate: Valid configuration' : output.slice(-2000))
})

t.test('every Kubernetes object validates against the Kubernetes API schemas (kubernetes-models)', async (t) => {
  for (const { file, doc } of objects) {
    const apiVersion = str(doc['apiVersion'])
    const kind = str(doc['kind'])
    const models = await import(`kubernetes-models/${apiVersion}`) as Record<string, (new (data: unknown) => { validate (): void }) | undefined>
    const Model = models[kind]
    if (Model === undefined) {
      t.fail(`${file}: ${apiVersion} ${kind} is not a Kubernetes API kind`)
      continue
    }
    t.doesNotThrow(() => new Model(doc).validate(), `${file}: ${apiVersion} ${kind} ${str(obj(doc['metadata'])['name'])}`)
  }
})

t.test('no Kubernetes object has a field the API does not define (tsc over the same definitions)', async (t) => {
  // The JSON schemas allow unknown fields (`readinesProbe:` validates); the generated interfaces do not.
  // The node_modules this file's own `import('kubernetes-models/…')` resolves from.
  let modules = fileURLToPath(new URL('.', import.meta.url))
  while (!existsSync(join(modules, 'node_modules/kubernetes-models/package.json')) && dirname(modules) !== modules) modules = dirname(modules)
  const work = mkdtempSync(join(tmpdir(), 'mcp-gateway-manifests-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  symlinkSync(join(modules, 'node_modules'), join(work, 'node_modules'), 'dir')
  // One typed constant per object; each line remembers its file, so an error names the file and the line's text.
  const lineFile: string[] = []
  const source = objects.map(({ file, doc }, i) => {
    const kind = str(doc['kind'])
    const block = `import type { I${kind} as T${i} } from 'kubernetes-models/${str(doc['apiVersion'])}'\nexport const m${i}: T${i} = ${JSON.stringify(doc, null, 2)}\n`
    lineFile.push(...block.split('\n').slice(1).map(() => file))
    return block
  }).join('')
  writeFileSync(join(work, 'manifests.ts'), source)
  writeFileSync(join(work, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2023', module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true, types: [] },
    files: ['manifests.ts']
  }))
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', work], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const lines = source.split('\n')
  const problems = [...output.matchAll(/manifests\.ts\((\d+),\d+\): error TS\d+: (.*)/g)]
    .map(([, line, message]) => `${lineFile[Number(line) - 1] ?? '?'}: ${(lines[Number(line) - 1] ?? '').trim()}: ${message ?? ''}`)
  t.equal(code, 0, `tsc: ${problems.length > 0 ? problems.join('; ') : output}`)
})

t.test('every MCP_GATEWAY_* name in deploy/ is a setting of lib/config/settings.ts', async (t) => {
  for (const file of files) {
    const names = new Set(readFileSync(join(DEPLOY, file), 'utf8').match(/\bMCP_GATEWAY_[A-Z0-9_]+/g) ?? [])
    for (const name of names) t.ok(knownNames.has(name), `${file}: ${name}`)
  }
  for (const [where, env] of [['compose.yaml', composeEnv], ['kubernetes', k8sEnv]] as const) {
    for (const name of secretEnvs) {
      t.notOk(name in env && !(name in imageEnv), `${where}: ${name} is not given as a variable (its _FILE twin is)`)
    }
  }
})

t.test('the probes and the proxy use the app\'s health paths and port, and the gateway answers them', async (t) => {
  const port = Number(k8sEnv['MCP_GATEWAY_PORT'])
  const ports = arr(container['ports']).map(obj)
  const http = ports.find((p) => p['name'] === 'http')
  t.equal(http?.['containerPort'], port, `containerPort http is MCP_GATEWAY_PORT (${port})`)
  t.equal(port, Number(imageEnv['MCP_GATEWAY_PORT']), 'the port the image listens on')
  t.equal(ports.find((p) => p['name'] === 'metrics')?.['containerPort'], Number(k8sEnv['MCP_GATEWAY_METRICS_PORT']), 'containerPort metrics is MCP_GATEWAY_METRICS_PORT')
  const probe = (name: string): Json => obj(obj(container[name])['httpGet'])
  t.strictSame(probe('readinessProbe'), { path: '/readyz', port: 'http' }, 'readiness on /readyz')
  t.strictSame(probe('livenessProbe'), { path: '/healthz', port: 'http' }, 'liveness on /healthz')
  t.strictSame(probe('startupProbe'), { path: '/healthz', port: 'http' }, 'startup on /healthz')

  const svcPort = obj(arr(obj(service['spec'])['ports'])[0])
  t.equal(svcPort['targetPort'], 'http', 'the Service targets the named port')
  const podLabels = obj(obj(obj(obj(deployment['spec'])['template'])['metadata'])['labels'])
  const matches = (selector: unknown): boolean =>
    Object.keys(obj(selector)).length > 0 && Object.entries(obj(selector)).every(([k, v]) => podLabels[k] === v)
  t.ok(matches(obj(obj(deployment['spec'])['selector'])['matchLabels']), 'the Deployment selects its own pods')
  t.ok(matches(obj(service['spec'])['selector']), 'the Service selects the pods')
  t.ok(matches(obj(obj(pdb['spec'])['selector'])['matchLabels']), 'the PodDisruptionBudget selects the pods')

  const dynamic = /dynamic a \{\s*name (\S+)\s*port (\d+)/.exec(caddyfile)
  t.equal(dynamic?.[1], 'gateway', 'Caddy proxies to the compose service `gateway`')
  t.ok(dynamic?.[1] !== undefined && dynamic[1] in services, 'which exists')
  t.equal(Number(dynamic?.[2]), Number(composeEnv['MCP_GATEWAY_PORT']), 'on the port the replicas listen on')

  const { app } = await buildGateway(t)
  for (const path of ['/healthz', '/readyz']) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 200, `the gateway answers GET ${path}`)
  }
})

t.test('compose.yaml: two replicas on one Redis behind a TLS proxy, secrets as files, the public URL set once', async (t) => {
  t.equal(obj(gatewayService['deploy'])['replicas'], 2, 'two gateway replicas')
  t.equal(obj(gatewayService['build'])['context'], '..', 'built from the repository\'s Dockerfile')
  t.notOk('ports' in gatewayService, 'the replicas publish no port: the proxy is the only way in')
  t.match(composeEnv['MCP_GATEWAY_STORE'], /^redis:\/\/redis:6379\//, 'the store is the compose Redis')
  t.ok('redis' in services, 'one Redis')
  const proxy = obj(services['proxy'])
  t.match(str(proxy['image']), /^caddy:/, 'Caddy in front')
  t.ok(arr(proxy['volumes']).includes('./Caddyfile:/etc/caddy/Caddyfile:ro'), 'with deploy/Caddyfile')
  t.match(caddyfile, /^\{\$PUBLIC_URL\} \{/m, 'Caddy serves the public URL')
  t.match(caddyfile, /^\s*tls internal$/m, 'with a certificate of its own local CA (self-signed) for local use')
  t.ok(arr(proxy['ports']).includes('443:443'), 'on 443')

  const raw = readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8')
  t.equal(raw.match(/\$\{PUBLIC_URL\b/g)?.length, 1, 'PUBLIC_URL is read once in compose.yaml')
  t.equal(obj(proxy['environment'])['PUBLIC_URL'], composeEnv['MCP_GATEWAY_PUBLIC_URL'], 'the proxy and the replicas get the same value')
  t.notMatch(composeEnv['MCP_GATEWAY_PUBLIC_URL'], /:\d+(\/|$|\})/, 'the default URL has no port: 443, the published one')

  const declared = obj(compose['secrets'])
  const mounted = arr(gatewayService['secrets']).map(str)
  for (const name of mounted) t.match(str(obj(declared[name])['file']), /^\.\/secrets\//, `secret ${name} from deploy/secrets/ (kept out of git)`)
  for (const env of secretEnvs.filter((e) => `${e}_FILE` in composeEnv)) {
    const path = composeEnv[`${env}_FILE`] ?? ''
    t.ok(mounted.some((name) => path === `/run/secrets/${name}`), `${env}_FILE names a mounted secret (${path})`)
  }
  t.equal(gatewayService['read_only'], true, 'read-only root filesystem')
  const grace = Number(composeEnv['MCP_GATEWAY_SHUTDOWN_GRACE'])
  const stop = Number(/^(\d+)s$/.exec(str(gatewayService['stop_grace_period']))?.[1])
  t.ok(grace > 0 && grace < stop, `the shutdown grace (${grace} s) ends before stop_grace_period (${stop} s)`)
})

t.test('deploy/kubernetes: 2 replicas, probes, non-root and read-only, resources, termination, Secret files, ConfigMap', async (t) => {
  const spec = obj(deployment['spec'])
  t.equal(spec['replicas'], 2, 'two replicas')
  t.equal(obj(obj(spec['strategy'])['rollingUpdate'])['maxUnavailable'], 0, 'a rollout never drops below two')
  const podSecurity = obj(podSpec['securityContext'])
  const security = obj(container['securityContext'])
  t.equal(podSecurity['runAsNonRoot'], true, 'runAsNonRoot')
  t.equal(podSecurity['runAsUser'], 1000, 'as the image\'s user node (uid 1000), by number')
  t.equal(runtime.steps.find((s) => s.instruction === 'USER')?.user, 'node', 'which is the Dockerfile\'s USER')
  t.equal(security['readOnlyRootFilesystem'], true, 'read-only root filesystem')
  t.equal(security['allowPrivilegeEscalation'], false, 'no privilege escalation')
  t.same(obj(security['capabilities'])['drop'], ['ALL'], 'no capabilities')
  const resources = obj(container['resources'])
  for (const kind of ['requests', 'limits']) for (const what of ['cpu', 'memory']) t.ok(obj(resources[kind])[what] !== undefined, `${kind}.${what}`)

  const grace = Number(k8sEnv['MCP_GATEWAY_SHUTDOWN_GRACE'])
  const pause = Number(obj(obj(obj(container['lifecycle'])['preStop'])['sleep'])['seconds'] ?? 0)
  const termination = Number(podSpec['terminationGracePeriodSeconds'])
  t.ok(grace > 0 && pause + grace < termination, `preStop ${pause} s + shutdown grace ${grace} s < terminationGracePeriodSeconds ${termination} s`)

  t.same(arr(container['envFrom']).map((e) => obj(obj(e)['configMapRef'])['name']), [obj(configMap['metadata'])['name']], 'settings from the ConfigMap')
  const volume = arr(podSpec['volumes']).map(obj).find((v) => obj(v['secret'])['secretName'] === obj(secret['metadata'])['name'])
  t.ok(volume !== undefined, 'the Secret is a volume')
  t.equal(obj(volume?.['secret'])['defaultMode'], 0o440, 'its files readable by the pod\'s group only')
  const mount = arr(container['volumeMounts']).map(obj).find((m) => m['name'] === volume?.['name'])
  t.equal(mount?.['readOnly'], true, 'mounted read-only')
  const keys = Object.keys(obj(secret['stringData']))
  for (const env of secretEnvs.filter((e) => `${e}_FILE` in k8sEnv)) {
    const path = k8sEnv[`${env}_FILE`] ?? ''
    t.ok(keys.some((key) => path === `${str(mount?.['mountPath'])}/${key}`), `${env}_FILE names a key of the Secret (${path})`)
  }
  const storeRef = obj(obj(arr(container['env']).map(obj).find((e) => e['name'] === 'MCP_GATEWAY_STORE')?.['valueFrom'])['secretKeyRef'])
  t.ok(keys.includes(str(storeRef['key'])), 'the Redis URL from the Secret (it may hold a password)')
  t.match(str(obj(secret['stringData'])[str(storeRef['key'])]), /^rediss?(-sentinel|-cluster)?:\/\//, 'a Redis URL')
  t.ok(str(obj(secret['stringData'])['gateway_secret']).length < MIN_SECRET_LENGTH, 'the placeholder secret is too short, so an unedited Secret refuses to start')
  t.equal(obj(pdb['spec'])['minAvailable'], 1, 'a disruption leaves one replica')
})

t.test('compose and Kubernetes configure the same settings and the same upstream', async (t) => {
  const names = (env: Record<string, string>): string[] => Object.keys(env).filter((n) => n.startsWith('MCP_GATEWAY_')).sort()
  t.strictSame(names(composeEnv), names(k8sEnv), 'the same MCP_GATEWAY_* names (image ENV included)')
  // What differs by design: where it runs (URL, proxy, store, grace), and the operator's own id and login.
  const local = new Set(['MCP_GATEWAY_PUBLIC_URL', 'MCP_GATEWAY_TRUST_PROXY', 'MCP_GATEWAY_STORE', 'MCP_GATEWAY_SHUTDOWN_GRACE', 'MCP_GATEWAY_UPSTREAM_CLIENT_ID', 'MCP_GATEWAY_USERNAME'])
  for (const name of names(composeEnv).filter((n) => !local.has(n))) {
    t.equal(k8sEnv[name], composeEnv[name], `${name}: the same value`)
  }
  t.match(k8sEnv['MCP_GATEWAY_PUBLIC_URL'], /^https:\/\//, 'Kubernetes: an https public URL')
})
