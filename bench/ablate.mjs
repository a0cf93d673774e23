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
  // Upper bound of the metrics: none at all (--metrics-path off).
  'no-metrics': [{ file: 'app.js', find: 'path: options.metricsPath', replace: 'path: false' }],
  // The proxy's own event (latency histogram): no performance.now() or emit per request.
  'no-proxy-event': [{ file: 'routes/mcp/index.js', find: "events.emit('proxy_response', { method: req.method, seconds: (performance.now() - started) / 1000 });", replace: '' }],
  // freshUpstream() awaited only when the upstream token is near its expiry (a sync check first).
  'sync-fresh': [{
    file: 'routes/mcp/index.js',
    find: 'grant = await grants.freshUpstream(grant, req.log);',
    replace: 'if (grant.grant.upstreamExpiresAt !== undefined) grant = await grants.freshUpstream(grant, req.log);'
  }]
}

const VARIANTS = {
  'gw:nometrics': ['no-metrics'],
  'gw:noevent': ['no-proxy-event'],
  'gw:syncfresh': ['sync-fresh'],
  'gw:all': ['no-metrics', 'no-proxy-event', 'sync-fresh']
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
