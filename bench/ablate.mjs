// `node bench/ablate.mjs` (after `npm run build`): what each suspected cost of the gateway's /mcp path
// is worth, measured. Copies dist/ into node_modules/.cache/ (so package imports still resolve),
// applies one change per copy to the compiled JS, and runs every copy side by side with the real
// build and the reference proxy (small POST, 10 connections). The app's sources are never touched:
// these are experiments to size suggestions, not fixes. A patch whose anchor is gone (the code
// changed) is reported and its variant skipped. Takes about 2 minutes (--paired: about 3.5).
//   node bench/ablate.mjs [--large] [--paired] [--instructions]
//   --large: the 100 KB response instead of the small one; --paired: each variant loaded at the same time
//   as the reference, ratios per run (both see the same machine, which sequential runs do not);
//   --instructions: each patch alone, counted in instructions per request by bench/instructions.mjs
//   (callgrind: the same count whatever the machine does; about 3 minutes per variant)
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { load, log, median, round, scenario, settings, startGateway, startUpstreamAndReference, stopAll, table } from './harness.mjs'

const LARGE = process.argv.includes('--large')
// --paired: each variant loaded at the same time as the reference, so both see the same machine.
const PAIRED = process.argv.includes('--paired')
const INSTRUCTIONS = process.argv.includes('--instructions')
const root = fileURLToPath(new URL('..', import.meta.url))
const cacheDir = `${root}node_modules/.cache/mcp-gateway-bench-ablate`

const MCP = 'routes/mcp/index.js'
/** Each patch: a file of dist/, an anchor (string or RegExp) and its replacement. */
const PATCHES = {
  // Upper bound of the metrics: none at all (--metrics-path off).
  'no-metrics': [{ file: 'app.js', find: 'path: options.metricsPath', replace: 'path: false' }],
  // The proxy's own event (latency histogram): no performance.now() or emit per request.
  'no-proxy-event': [{ file: MCP, find: "events.emit('proxy_response', { method: req.method, seconds: (performance.now() - started) / 1000 });", replace: '' }],
  // No upstream-expiry check.
  'no-fresh': [{ file: MCP, find: 'grant = await grants.freshUpstream(grant, req.log);', replace: '' }],
  // No CORS hook on /mcp.
  'no-cors': [{ file: MCP, find: 'await app.register(cors, {', replace: 'false && await app.register(cors, {' }],
  // No session-ownership check.
  'no-session-check': [{ file: MCP, find: "typeof sessionId === 'string' && !(sessions.mayUseFromMemory(sessionId, auth.grant.id) ?? await sessions.mayUse(sessionId, auth.grant.id))", replace: 'false' }],
  // No client-leave listener (and so no upstream abort).
  'no-close': [{ file: MCP, find: "reply.raw.on('close', () => {", replace: "false && reply.raw.on('close', () => {" }],
  // Small answers streamed like large ones instead of sent whole.
  'stream-small': [{ file: MCP, find: "Number(upstream.headers['content-length']) <= WHOLE_BODY_MAX", replace: 'false' }],
  // The bearer check answered from a process-wide memo: no hash, no cache lookup, no await (an upper bound).
  'auth-memo': [{ file: MCP, find: 'const found = grants.authenticateFromMemory(match[1]) ?? await grants.authenticate(match[1]);', replace: 'const found = globalThis.__benchAuth ??= await grants.authenticate(match[1]);' }]
}

const EVERYTHING = ['no-metrics', 'no-proxy-event', 'no-fresh', 'no-cors', 'no-session-check', 'no-close']
const VARIANTS = {
  'gw:copy': [],
  'gw:nometrics': ['no-metrics'],
  'gw:streamsmall': ['stream-small'],
  'gw:authmemo': ['auth-memo'],
  'gw:bare': EVERYTHING,
  'gw:bare+auth': [...EVERYTHING, 'auth-memo']
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
  if (INSTRUCTIONS) return countInstructions()
  const { upstreamOrigin, upstreamToken, reference } = await startUpstreamAndReference()
  const targets = [reference, { name: 'gateway', ...await startGateway(upstreamOrigin, upstreamToken) }]
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
  if (PAIRED) {
    await paired(targets, skipped)
    return
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

/** Each patch alone, and all of them together, under callgrind (bench/instructions.mjs): a difference of 1% shows. */
function countInstructions () {
  const variants = { ...Object.fromEntries(Object.keys(PATCHES).map((name) => [name, [name]])), 'bare+auth': [...EVERYTHING, 'auth-memo'] }
  const apps = []
  for (const [name, patches] of Object.entries(variants)) {
    try {
      apps.push('--app', `${name}=${build(name, patches)}`)
    } catch (err) {
      log(`${name} skipped: ${err.message}`)
    }
  }
  try {
    execFileSync(process.execPath, [fileURLToPath(new URL('instructions.mjs', import.meta.url)), ...apps], { stdio: 'inherit' })
  } finally {
    rmSync(cacheDir, { recursive: true, force: true })
  }
}

/** Every target but the reference, 5 times 3 s each, loaded together with the reference: medians of the per-run ratios. */
async function paired (targets, skipped) {
  const [reference, ...others] = targets
  const opts = { connections: 10, ...(LARGE ? { path: '/mcp?size=100k' } : {}) }
  for (const t of targets) await load(t, { ...opts, duration: settings.warmup })
  const rows = [['variant', 'CPU ÷ reference, each run', 'median', 'req/s ÷ reference (median)', 'reference µs/req']]
  const results = {}
  for (const t of others) {
    const runs = []
    for (let i = 0; i < 5; i++) {
      const [r, g] = await Promise.all([load(reference, { ...opts, duration: 3 }), load(t, { ...opts, duration: 3 })])
      runs.push({ cpu: g.cpuUsPerReq / r.cpuUsPerReq, rps: g.rps / r.rps, referenceCpu: r.cpuUsPerReq })
    }
    results[t.name] = runs
    log(`${t.name}: ${runs.map((x) => x.cpu.toFixed(2)).join(' ')}`)
    rows.push([t.name, runs.map((x) => x.cpu.toFixed(2)).join(' '), median(runs.map((x) => x.cpu)).toFixed(2), median(runs.map((x) => x.rps)).toFixed(2), runs.map((x) => x.referenceCpu.toFixed(0)).join(' ')])
  }
  await stopAll()
  rmSync(cacheDir, { recursive: true, force: true })
  process.stdout.write(`\nPaired ablation (each variant and the reference loaded together, 5 x 3 s, ${LARGE ? '100 KB' : 'small'} POST, 10 conns)\n${table(rows)}\n`)
  for (const [name, why] of Object.entries(skipped)) process.stdout.write(`skipped ${name}: ${why}\n`)
  writeFileSync(fileURLToPath(new URL('ablation-paired.json', import.meta.url)), `${JSON.stringify({ date: new Date().toISOString(), results, skipped, variants: VARIANTS }, null, 2)}\n`)
}

main().catch(async (err) => {
  log(`ablation failed: ${err.stack ?? err}`)
  await stopAll()
  rmSync(cacheDir, { recursive: true, force: true })
  process.exit(1)
})
