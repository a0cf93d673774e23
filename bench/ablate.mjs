// `node bench/ablate.mjs` (after `npm run build`): what each suspected cost of the gateway's /mcp path
// is worth, measured. Copies dist/ into node_modules/.cache/ (so package imports still resolve),
// applies one change per copy to the compiled JS, and runs every copy side by side with the real
// build and the reference proxy (small POST, 10 connections). The app's sources are never touched:
// these are experiments to size suggestions, not fixes. A patch whose anchor is gone (the code
// changed) is reported and its variant skipped. Takes about 1.5 minutes.
//   node bench/ablate.mjs [--large]   (--large: the 100 KB response instead of the small one)
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { log, round, scenario, setUpstream, settings, spawn, startGateway, stopAll, table } from './harness.mjs'

const LARGE = process.argv.includes('--large')
const root = fileURLToPath(new URL('..', import.meta.url))
const cacheDir = `${root}node_modules/.cache/mcp-gateway-bench-ablate`

/** Each patch: a file of dist/, an anchor (string or RegExp) and its replacement. */
const PATCHES = {
  // node:stream pipeline() makes an AbortController per call and aborts it when done (a DOMException
  // with a stack trace per response). pipe() plus a close listener keeps the disconnect semantics.
  pipe: [{
    file: 'routes/mcp/index.js',
    find: /pipeline\(upstream\.body, reply\.raw, \(err\) => \{[\s\S]*?\n {8}\}\);/,
    replace: "upstream.body.on('error', () => {}); reply.raw.once('close', () => { if (!upstream.body.readableEnded) upstream.body.destroy() }); upstream.body.pipe(reply.raw);"
  }],
  // An EventEmitter is a valid undici signal and costs a fraction of an AbortController.
  'emitter-signal': [{
    file: 'routes/mcp/index.js',
    find: 'const aborter = new AbortController();',
    replace: "const aborter = (() => { const signal = new __EventEmitter(); signal.aborted = false; return { signal, abort () { if (!signal.aborted) { signal.aborted = true; signal.emit('abort') } } } })();"
  }, {
    file: 'routes/mcp/index.js',
    find: /^/,
    replace: "import { EventEmitter as __EventEmitter } from 'node:events';\n"
  }],
  // An in-process cache of validated tokens (pitfall 13): no hash, no store reads, no AES-GCM per
  // request. Here without revocation, so an upper bound of the saving.
  'auth-cache': [{
    file: 'routes/mcp/index.js',
    find: /(const sessions = new SessionStore\([^\n]*\n)/,
    replace: '$1' + [
      'const __auth = new Map();',
      'const __cachedAuth = async (token) => { const hit = __auth.get(token); if (hit !== undefined && hit.until > Date.now()) return hit.found; const found = await grants.authenticate(token); if (found !== undefined) __auth.set(token, { found, until: Math.min(found.access.expiresAt, Date.now() + 30000) }); return found };',
      'const __upstreamTokens = new WeakMap();',
      'const __upstreamToken = (g) => { let t = __upstreamTokens.get(g); if (t === undefined) { t = grants.upstreamAccessToken(g); __upstreamTokens.set(g, t) } return t };',
      'const __claims = new Set();',
      'const __claim = async (sid, gid) => { const k = sid + " " + gid; if (__claims.has(k)) return true; const ok = await sessions.claim(sid, gid); if (ok) __claims.add(k); return ok };\n'
    ].join('\n')
  }, { file: 'routes/mcp/index.js', find: 'grants.authenticate(match[1])', replace: '__cachedAuth(match[1])' },
  { file: 'routes/mcp/index.js', find: 'grants.upstreamAccessToken(g)', replace: '__upstreamToken(g)' },
  { file: 'routes/mcp/index.js', find: 'sessions.claim(sessionId, grant.id)', replace: '__claim(sessionId, grant.id)' }],
  // @fastify/cors runs its delegator and re-normalises the policy on every request, Origin or not.
  // Upper bound: no CORS plugin at all.
  'no-cors': [{ file: 'app.js', find: 'await app.register(cors);', replace: '/* ablated: cors */' }]
}

const VARIANTS = {
  'gw:pipe': ['pipe'],
  'gw:emitter': ['emitter-signal'],
  'gw:authcache': ['auth-cache'],
  'gw:nocors': ['no-cors'],
  'gw:all4': ['pipe', 'emitter-signal', 'auth-cache', 'no-cors']
}

function build (name, patchNames) {
  const dir = `${cacheDir}/${name.replace(/[^a-z0-9]+/gi, '-')}/dist`
  rmSync(dir, { recursive: true, force: true })
  cpSync(`${root}dist`, dir, { recursive: true })
  for (const patchName of patchNames) {
    for (const p of PATCHES[patchName]) {
      const path = `${dir}/${p.file}`
      const text = readFileSync(path, 'utf8')
      const found = typeof p.find === 'string' ? text.includes(p.find) : p.find.test(text)
      if (!found) throw new Error(`patch ${patchName}: anchor not found in dist/${p.file} (the code changed)`)
      writeFileSync(path, typeof p.find === 'string' ? text.replace(p.find, () => p.replace) : text.replace(p.find, p.replace))
    }
  }
  return `${dir}/app.js`
}

async function main () {
  if (!existsSync(`${root}dist/app.js`)) throw new Error('run `npm run build` first')
  const upstreamToken = `gho_${randomBytes(27).toString('base64url')}`
  const upstreamProc = await spawn('upstream.mjs', { UPSTREAM_TOKEN: upstreamToken })
  setUpstream(upstreamProc)
  const upstreamOrigin = `http://127.0.0.1:${upstreamProc.info.port}`
  const refToken = `ref_${randomBytes(32).toString('base64url')}`
  const refProc = await spawn('reference.mjs', { UPSTREAM_ORIGIN: upstreamOrigin, UPSTREAM_TOKEN: upstreamToken, CLIENT_TOKEN: refToken })
  const targets = [
    { name: 'reference', origin: `http://127.0.0.1:${refProc.info.port}`, token: refToken, proc: refProc },
    { name: 'gateway', ...await startGateway(upstreamOrigin, upstreamToken) }
  ]
  const skipped = {}
  for (const [name, patches] of Object.entries(VARIANTS)) {
    let app
    try {
      app = build(name, patches)
    } catch (err) {
      skipped[name] = err.message
      log(`${name} skipped: ${err.message}`)
      continue
    }
    targets.push({ name, ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_APP: app } }) })
  }
  settings.reps = 3
  const s = await scenario(LARGE ? '100 KB POST, 10 conns' : 'small POST, 10 conns', targets, { connections: 10, ...(LARGE ? { path: '/mcp?size=100k' } : {}) })
  await stopAll()
  rmSync(cacheDir, { recursive: true, force: true })

  const base = s.targets.gateway
  const rows = [['variant', 'req/s', 'CPU µs/req', 'CPU saved µs/req', 'req/s vs gateway', 'req/s vs reference']]
  for (const [name, t] of Object.entries(s.targets)) {
    rows.push([name, t.rps, t.cpuUsPerReq, round(base.cpuUsPerReq - t.cpuUsPerReq, 1), `${(t.rps / base.rps).toFixed(2)}x`, `${(t.rps / s.targets.reference.rps).toFixed(2)}x`])
  }
  process.stdout.write(`\nAblation (medians of ${settings.reps} x ${settings.duration} s, ${s.label})\n${table(rows)}\n`)
  for (const [name, why] of Object.entries(skipped)) process.stdout.write(`skipped ${name}: ${why}\n`)
  writeFileSync(fileURLToPath(new URL(LARGE ? 'ablation-large.json' : 'ablation.json', import.meta.url)), `${JSON.stringify({ date: new Date().toISOString(), scenario: s, skipped, variants: VARIANTS }, null, 2)}\n`)
}

main().catch(async (err) => {
  log(`ablation failed: ${err.stack ?? err}`)
  await stopAll()
  rmSync(cacheDir, { recursive: true, force: true })
  process.exit(1)
})
