// `node bench/ablate.mjs` (after `npm run build`): whether each hand-made optimisation of the gateway pays.
// For each candidate, a copy of dist/ with that optimisation reverted (in the temporary directory, deleted
// afterwards) and a copy of the current build, started fresh in each of N pairs with a fresh upstream, measured side
// by side on the scenario(s) where the optimisation should matter; per candidate and figure, the median of the
// per-pair ratios variant ÷ current (or differences, for memory) and their spread. Rule (issue 17): an optimisation
// stays if it is worth ≥ 3% CPU per request or ≥ 1 KB per idle stream in the median of the pairs.
//
//   node bench/ablate.mjs [--pairs N] [--only b1,b2,e] [--quick]
//
// b  the exchange on undici's dispatch (routes/mcp/exchange.ts): b1 without `controller.rawHeaders = null`;
//    b2 the same exchange on undici's public pool.request() (bench/variants/exchange-request.mjs).
// e  the upstream pool rotation (routes/mcp/upstream-pool.ts): one plain Pool, never replaced. Measured after a
//    burst of 1,000 streams whose clients left; both copies run with a 2 s quiet period instead of 30 s, so the
//    rotation happens within the run (the variant never rotates whatever the period).
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { MCP_HEADERS, RPC_BODY, log, pairedRatio, round, scenario, settings, spread, startGateway, startUpstream, stopAll, table } from './harness.mjs'
import { idleKB, idleStreams, openIdleStreams } from './streams.mjs'

const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const PAIRS = argv.includes('--pairs') ? Number(argv[argv.indexOf('--pairs') + 1]) : QUICK ? 1 : 5
const ONLY = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : undefined
if (QUICK) Object.assign(settings, { duration: 1, warmup: 1, reps: 1 })
const IDLE_STREAMS = QUICK ? 200 : 1000
const root = fileURLToPath(new URL('..', import.meta.url))
// Outside the worktree (something cleaned bench/.ablate/ mid-run twice), with node_modules linked so packages resolve.
const cacheDir = join(tmpdir(), `mcp-gateway-ablate-${process.pid}`)
const variantFile = (name) => fileURLToPath(new URL(`variants/${name}`, import.meta.url))

const POOL = 'routes/mcp/upstream-pool.js'
const SHORT_QUIET = { file: POOL, find: 'export const QUIET_PERIOD_MS = 30_000;', replace: 'export const QUIET_PERIOD_MS = 2_000;' }

/**
 * Each candidate: `variant` (patches on a copy of dist/: an anchor and its replacement, or `copy`: a file of
 * bench/variants/ over one of dist/), patches both copies get (`both`), and
 * what is measured.
 */
const CANDIDATES = {
  b1: { what: 'controller.rawHeaders = null', variant: [{ file: 'routes/mcp/exchange.js', find: 'controller.rawHeaders = null;', replace: '' }], measures: ['idle', 'large10+idle'] },
  b2: { what: 'the exchange on undici dispatch (vs pool.request())', variant: [{ file: 'routes/mcp/exchange.js', copy: 'exchange-request.mjs' }], measures: ['small10', 'idle', 'large10'] },
  e: {
    what: 'upstream pool rotation (vs one plain Pool)',
    both: [SHORT_QUIET],
    variant: [
      { file: POOL, find: /acquire\(\) \{[^]*?return this\.#pool;\n {4}\}/, replace: 'acquire() {\n        return this.#pool;\n    }' },
      { file: POOL, find: /release\(pool\) \{[^]*?this\.#inFlight--;\n {4}\}/, replace: 'release(pool) {\n    }' }
    ],
    measures: ['burst', 'large10']
  }
}

function build (name, { patches = [] }) {
  const dir = `${cacheDir}/${name}/dist`
  rmSync(`${cacheDir}/${name}`, { recursive: true, force: true })
  cpSync(`${root}dist`, dir, { recursive: true })
  for (const p of patches) {
    const path = `${dir}/${p.file}`
    if (p.copy !== undefined) {
      cpSync(variantFile(p.copy), path)
      continue
    }
    const text = readFileSync(path, 'utf8')
    const found = typeof p.find === 'string' ? text.includes(p.find) : p.find.test(text)
    if (!found) throw new Error(`${name}: anchor ${p.find} not found in dist/${p.file} (the code changed)`)
    writeFileSync(path, text.replace(p.find, () => p.replace))
  }
  return `${dir}/app.js`
}

const mem = async (t) => t.proc.call('mem')

/** One pair: a fresh upstream, the current build and the variant, each measure side by side. */
async function onePair (candidate, apps, index) {
  const { upstream, upstreamOrigin, upstreamToken } = await startUpstream()
  const start = async (name) => ({
    name,
    ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_APP: apps[name] } })
  })
  // Which starts (and goes) first alternates from pair to pair.
  const names = index % 2 === 0 ? ['current', 'variant'] : ['variant', 'current']
  const targets = {}
  for (const name of names) targets[name] = await start(name)
  const ordered = names.map((name) => targets[name])
  const out = {}
  for (const measure of candidate.measures) {
    if (measure === 'small10' || measure === 'large10') {
      const s = await scenario(`${candidate.key} ${measure}`, ordered, { connections: 10, ...(measure === 'large10' ? { path: '/mcp?size=100k' } : {}) })
      out[`${measure}.cpu`] = pairedRatio(s.targets, 'variant', 'current', 'cpuUsPerReq')
      out[`${measure}.rps`] = pairedRatio(s.targets, 'variant', 'current', 'rps')
    } else if (measure === 'idle') {
      const idle = {}
      for (const t of ordered) idle[t.name] = idleKB(await idleStreams(t, upstream, IDLE_STREAMS))
      out.idleKB = idle.variant - idle.current
    } else if (measure === 'large10+idle') {
      // 100 KB answers while 1,000 idle streams are open through each process.
      const held = []
      for (const t of ordered) held.push(await openIdleStreams(t, upstream, IDLE_STREAMS))
      const s = await scenario(`${candidate.key} 100 KB with idle streams open`, ordered, { connections: 10, path: '/mcp?size=100k' })
      for (const h of held) await h.close()
      out['large10+idle.cpu'] = pairedRatio(s.targets, 'variant', 'current', 'cpuUsPerReq')
      out['large10+idle.rps'] = pairedRatio(s.targets, 'variant', 'current', 'rps')
      out['large10+idle.markCompacts'] = `${s.targets.variant.markCompactsPer1k} vs ${s.targets.current.markCompactsPer1k}`
    } else if (measure === 'burst') {
      // What a burst of streams whose clients left still holds once the quiet period has passed.
      const before = {}
      for (const t of ordered) before[t.name] = await mem(t)
      for (const t of ordered) await idleStreams(t, upstream, IDLE_STREAMS)
      // Two quiet periods, a request in each, so the current build's check runs and replaces its pool.
      for (let i = 0; i < 3; i++) {
        await sleep(2_100)
        for (const t of ordered) await (await fetch(`${t.origin}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${t.token}` }, body: RPC_BODY })).arrayBuffer()
      }
      await sleep(500)
      const kb = {}
      for (const t of ordered) {
        const m = await mem(t)
        const held = (x) => x.heapUsed + x.external + (x.rss - x.heapPhysical)
        kb[t.name] = (held(m) - held(before[t.name])) / IDLE_STREAMS / 1024
      }
      out.burstKB = kb.variant - kb.current
    }
  }
  await stopAll()
  log(`${candidate.key} pair ${index + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, typeof v === 'number' ? round(v, 3) : v])))}`)
  return out
}

const FIGURES = {
  'small10.cpu': 'CPU/request variant ÷ current, small POST 10 conns',
  'small10.rps': 'req/s variant ÷ current, small POST 10 conns',
  'large10.cpu': 'CPU/request variant ÷ current, 100 KB 10 conns',
  'large10.rps': 'req/s variant ÷ current, 100 KB 10 conns',
  idleKB: 'held per idle stream, variant − current (KB)',
  'large10+idle.cpu': 'CPU/request variant ÷ current, 100 KB with 1,000 idle streams open',
  'large10+idle.rps': 'req/s variant ÷ current, 100 KB with 1,000 idle streams open',
  burstKB: 'still held after a burst of streams, per stream, variant − current (KB)'
}

async function main () {
  if (!existsSync(`${root}dist/app.js`)) throw new Error('run `npm run build` first')
  mkdirSync(cacheDir, { recursive: true })
  symlinkSync(`${root}node_modules`, `${cacheDir}/node_modules`)
  const results = { date: new Date().toISOString(), command: `node bench/ablate.mjs ${argv.join(' ')}`.trim(), pairs: PAIRS, settings: { ...settings, idleStreams: IDLE_STREAMS }, candidates: {} }
  // --only: the other candidates' figures of the last run stay in ablation.json, with their own date and command.
  const json = fileURLToPath(new URL('ablation.json', import.meta.url))
  if (ONLY !== undefined && existsSync(json)) {
    const last = JSON.parse(readFileSync(json, 'utf8'))
    for (const [key, c] of Object.entries(last.candidates ?? {})) {
      if (!ONLY.includes(key)) results.candidates[key] = { date: last.date, command: last.command, ...c }
    }
  }
  const rows = [['candidate', 'figure', 'median', 'spread (min–max)', 'per pair', 'pays?']]
  for (const [key, candidate] of Object.entries(CANDIDATES)) {
    if (ONLY !== undefined && !ONLY.includes(key)) continue
    candidate.key = key
    const apps = {
      current: build(`${key}-current`, { patches: candidate.both ?? [] }),
      variant: build(`${key}-variant`, { patches: [...(candidate.both ?? []), ...candidate.variant] })
    }
    const pairs = []
    for (let i = 0; i < PAIRS; i++) {
      // A pair whose processes fail (node_modules is shared with other worktrees) is run again, once.
      pairs.push(await onePair(candidate, apps, i).catch(async (err) => {
        log(`${key} pair ${i + 1} failed, run again: ${err.message}`)
        await stopAll()
        return await onePair(candidate, apps, i)
      }))
    }
    const figures = {}
    for (const figure of Object.keys(pairs[0])) {
      if (typeof pairs[0][figure] !== 'number') { figures[figure] = pairs.map((p) => p[figure]); continue }
      figures[figure] = spread(pairs.map((p) => p[figure]))
      const f = figures[figure]
      // Pays: reverting it costs ≥ 3% CPU per request, or ≥ 1 KB per stream.
      const pays = figure.endsWith('.cpu') ? f.median >= 1.03 : figure.endsWith('KB') ? f.median >= 1 : undefined
      rows.push([`${key}: ${candidate.what}`, FIGURES[figure] ?? figure, round(f.median, 3), `${round(f.min, 3)}–${round(f.max, 3)}`, f.pairs.map((x) => round(x, 3)).join(' '), pays === undefined ? '' : pays ? 'yes' : 'no'])
    }
    results.candidates[key] = {
      date: results.date,
      command: results.command,
      pairs: PAIRS,
      what: candidate.what,
      measures: candidate.measures,
      figures
    }
    writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`)
  }
  rmSync(cacheDir, { recursive: true, force: true })
  process.stdout.write(`\nAblation: ${results.command}, ${PAIRS} fresh pairs (variant and current build side by side), ${results.date}\n${table(rows)}\n`)
}

main().catch(async (err) => {
  log(`ablation failed: ${err.stack ?? err}`)
  await stopAll()
  rmSync(cacheDir, { recursive: true, force: true })
  process.exit(1)
})
