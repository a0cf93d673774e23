import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import t from 'tap'
import { request } from 'undici'
import { signInThroughBothScreens } from '../helpers/cookie-browser.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import { freePort, gatewayFlags, waitFor } from '../helpers/process.js'
import { MemoryProvider } from '../helpers/sdk-provider.js'

/*
 * Issue 23: "The npm package is never installed the way a user installs it." Here it is: `npm pack` (its
 * `prepack` builds dist/) on a copy of the sources, the tarball installed into an empty folder with npm, then
 *   - `npx mcp-oauth-gateway --help`, the command a user types first;
 *   - the installed command started against the fake GitHub and a fake MCP server, an MCP SDK sign-in and a
 *     tool call through it;
 *   - examples/host-app/app.ts with its import changed to `from 'mcp-oauth-gateway'`, as its comment tells users
 *     to do, type-checked by `tsc` against the installed package's declarations, built and run: it registers
 *     the plugin and answers the gateway's discovery document.
 * Everything runs on the Node that runs this file (.ci/run: the oldest engines allows, then the image's). The
 * tarball's dependencies come from npm's cache when they are there (--prefer-offline), else from the registry.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
t.setTimeout(480_000)

interface Run { code: number | null, stdout: string, stderr: string, ms: number }

/** This process's environment without what would leak into a user's shell: our settings, npm's, tap's, loaders. */
function userEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name.startsWith('MCP_GATEWAY_') || /^npm_/i.test(name) || name.startsWith('TAP') ||
      name === 'NODE_OPTIONS' || name === 'NODE_ENV') continue
    env[name] = value
  }
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' }
}

async function run (argv: string[], cwd: string, env = userEnv(), timeoutMs = 300_000): Promise<Run> {
  const started = Date.now()
  const child = spawn(argv[0] as string, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, stdout, stderr, ms: Date.now() - started }
}

const versionOf = (name: string): string =>
  (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version

const work = mkdtempSync(join(tmpdir(), 'mcp-gateway-packed-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
t.comment(`Node ${process.version}, in ${work}`)

let tarball = ''
const app = join(work, 'app')

t.test('npm pack: its prepack builds dist/, and the tarball holds dist/, package.json and README.md only', async (t) => {
  // What the package is made of, as `npm publish` would see it in a fresh clone: no dist/ yet.
  const source = join(work, 'source')
  mkdirSync(source)
  const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }
  const rootTs = readdirSync(ROOT).filter((name) => name.endsWith('.ts'))
  const dirs = tsconfig.include.filter((entry) => !entry.includes('*'))
  for (const entry of ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json', ...rootTs, ...dirs]) {
    cpSync(join(ROOT, entry), join(source, entry), { recursive: true })
  }
  // The build's own tools (tsc, @types) as `npm ci` installed them.
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir')

  const pack = await run(['npm', 'pack', '--json', '--pack-destination', work], source)
  t.equal(pack.code, 0, pack.stderr)
  t.comment(`npm pack (with prepack's build): ${pack.ms} ms`)
  // Lifecycle scripts write their banners before the JSON: the JSON is the last top-level array.
  const json = pack.stdout.slice(pack.stdout.lastIndexOf('\n[') + 1)
  const [packed] = JSON.parse(json.startsWith('[') ? json : pack.stdout) as Array<{ filename: string, files: Array<{ path: string }>, size: number, entryCount: number }>
  if (packed === undefined) throw new Error(`npm pack printed no package: ${pack.stdout}`)
  tarball = join(work, packed.filename)
  t.comment(`${packed.filename}: ${packed.entryCount} files, ${packed.size} bytes`)
  const files = packed.files.map((f) => f.path)
  for (const file of ['package.json', 'README.md', 'dist/server.js', 'dist/index.js', 'dist/index.d.ts', 'dist/app.d.ts']) {
    t.ok(files.includes(file), `${file} is in the tarball`)
  }
  t.same(files.filter((f) => !(f === 'package.json' || f === 'README.md' || f.startsWith('dist/'))), [], 'nothing outside dist/ but the package files')
  t.same(files.filter((f) => f.startsWith('dist/test/') || /(^|\/)node_modules\//.test(f)), [], 'no tests, no node_modules')
  t.same(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources (Node 20 cannot run them)')
})

t.test('npm install <tarball> into an empty folder, with what a TypeScript host app needs', async (t) => {
  if (tarball === '') return t.fail('no tarball')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'packed-host-app', version: '1.0.0', private: true, type: 'module' }, null, 2))
  // The host's own fastify and tsc, at the versions this repository tests with, so npm's cache has them.
  const install = await run(['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund', tarball,
    `fastify@${versionOf('fastify')}`, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`], app)
  t.equal(install.code, 0, install.stderr)
  t.comment(`npm install --prefer-offline of the tarball and its dependencies: ${install.ms} ms (${/added \d+ packages?/.exec(install.stdout)?.[0] ?? install.stdout.trim()})`)
  const installed = JSON.parse(readFileSync(join(app, 'node_modules/mcp-oauth-gateway/package.json'), 'utf8')) as { version: string, bin: Record<string, string> }
  t.same(installed.bin, { 'mcp-oauth-gateway': './dist/server.js' }, 'the bin it declares')
  const notInstalled = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies)
    .filter((name) => !['typescript', '@types/node'].includes(name))
    .filter((name) => existsSync(join(app, 'node_modules', name)))
  t.same(notInstalled, [], 'no dev dependency of ours came along')
})

t.test('npx mcp-oauth-gateway --help: the usage, exit 0', async (t) => {
  const help = await run(['npx', '--offline', 'mcp-oauth-gateway', '--help'], app)
  t.equal(help.code, 0, help.stderr)
  t.match(help.stdout, /^Usage: mcp-oauth-gateway/, 'the usage')
  t.match(help.stdout, /MCP_GATEWAY_UPSTREAM_RS/, 'with the variables')
  t.comment(help.stdout.split('\n')[0] ?? '')
})

t.test('the installed command against the fake GitHub: an MCP SDK sign-in and a tool call', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const flags = gatewayFlags({ port, publicUrl: origin, store: 'memory', storePrefix: 'mcp-gateway:', secret: SECRET, github, upstreamRs: mcp.url })
  // The bin as npm linked it, run by plain node: no TypeScript loader, only what the tarball holds.
  const child = spawn(process.execPath, [join(app, 'node_modules/.bin/mcp-oauth-gateway'), ...flags], { cwd: app, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const started = Date.now()
  await waitFor(`the installed gateway to answer /readyz (output: ${output.slice(-2000)})`, async () => {
    if (child.exitCode !== null) throw new Error(`it exited with ${child.exitCode}: ${output.slice(-2000)}`)
    try {
      const res = await request(`${origin}/readyz`)
      await res.body.dump()
      return res.statusCode === 200
    } catch {
      return false
    }
  }, 30_000, 50)
  t.comment(`ready in ${Date.now() - started} ms`)

  const serverUrl = `${origin}/mcp`
  const provider = new MemoryProvider('http://127.0.0.1:33425/callback', 'packed package test')
  t.equal(await auth(provider, { serverUrl }), 'REDIRECT', 'discovery, registration, the authorization request')
  const authorizationUrl = provider.authorizationUrls[0]
  if (authorizationUrl === undefined) return t.fail('no authorization URL')
  const redirect = await signInThroughBothScreens(origin, authorizationUrl)
  t.equal(redirect.searchParams.get('iss'), origin, 'back at the client with the gateway as issuer')
  t.equal(await auth(provider, { serverUrl, authorizationCode: redirect.searchParams.get('code') ?? '' }), 'AUTHORIZED', 'the code exchanged')
  t.match(provider.saved, { token_type: 'Bearer', access_token: /^gwa_/, refresh_token: /^gwr_/ })

  const client = new Client({ name: 'packed-package', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider }))
  t.teardown(async () => { await client.close().catch(() => {}) })
  const result = await client.callTool({ name: 'echo', arguments: { text: 'from the tarball' } })
  t.strictSame(result.content, [{ type: 'text', text: 'from the tarball' }], 'the tool call went through')
  t.ok(mcp.requests.some((r) => /^Bearer gh[ou]_/.test(String(r.headers.authorization))), 'the upstream got the GitHub token')

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: a clean exit')
})

t.test('examples/host-app as a user copies it: tsc against the installed types, then it registers the plugin', async (t) => {
  const host = join(app, 'host')
  mkdirSync(host)
  const example = readFileSync(join(ROOT, 'examples/host-app/app.ts'), 'utf8')
  const copied = example.replace("from '../../index.js'", "from 'mcp-oauth-gateway'")
  t.not(copied, example, 'the example\'s import, changed to the package name as its comment says')
  writeFileSync(join(host, 'app.ts'), copied)
  writeFileSync(join(host, 'main.ts'), `import { ConfigError, REDACT_PATHS, serializeRequest, type GatewayPluginOptions } from 'mcp-oauth-gateway'
import { build } from './app.js'

const options = JSON.parse(process.env.GATEWAY_OPTIONS ?? '{}') as Omit<GatewayPluginOptions, 'prefix'>
// The declarations are real, not \`any\`: a wrong option is a type error.
// @ts-expect-error upstreamRs is a URL string
export const wrong: GatewayPluginOptions = { publicUrl: 'https://app.example', upstreamRs: 42 }
const app = await build({ gateway: options, server: { logger: { level: 'warn', redact: [...REDACT_PATHS], serializers: { req: serializeRequest } } } })
await app.ready()
const metadata = await app.inject('/.well-known/oauth-authorization-server/gw')
const health = await app.inject('/gw/healthz')
let refused = ''
try {
  await build({ gateway: { ...options, upstreamRs: 'not a url' } })
} catch (err) {
  if (err instanceof ConfigError) refused = err.name
}
console.log(JSON.stringify({ metadata: metadata.statusCode, issuer: (metadata.json() as { issuer: string }).issuer, health: health.statusCode, refused }))
await app.close()
`)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2023',
      lib: ['ES2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      types: ['node'],
      strict: true,
      verbatimModuleSyntax: true,
      skipLibCheck: false,
      rootDir: 'host',
      outDir: 'out'
    },
    include: ['host']
  }, null, 2))
  const tsc = await run([process.execPath, 'node_modules/typescript/bin/tsc', '-p', '.'], app)
  t.equal(tsc.code, 0, `tsc: ${tsc.stdout}${tsc.stderr}`)
  t.comment(`tsc (skipLibCheck false: the package's .d.ts files are checked too): ${tsc.ms} ms`)

  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const options = {
    publicUrl: 'https://app.example',
    upstreamRs: github.resourceUrl,
    upstreamAuthorizeEndpoint: github.authorizeEndpoint,
    upstreamTokenEndpoint: github.tokenEndpoint,
    upstreamClientId: github.clientId,
    upstreamClientSecret: github.clientSecret,
    upstreamScopes: ['repo'],
    secret: SECRET,
    username: 'host_user',
    password: 'a-host-password-for-this-test'
  }
  const main = await run([process.execPath, 'out/main.js'], app, { ...userEnv(), GATEWAY_OPTIONS: JSON.stringify(options) }, 60_000)
  t.equal(main.code, 0, main.stderr)
  t.strictSame(JSON.parse(main.stdout.trim().split('\n').at(-1) ?? '{}'), {
    metadata: 200,
    issuer: 'https://app.example/gw',
    health: 200,
    refused: 'ConfigError'
  }, 'registered under /gw: its discovery document at the host root, its health under /gw, bad options refused')
})
