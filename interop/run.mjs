// `npm run interop`: the real MCP clients that coding agents ship (pinned in clients.json), each driven through
// the whole sign-in against the gateway and the project's fakes, with a throwaway HOME and a scripted browser,
// then kept connected through a phase of short-lived tokens. Only loopback: no model, no real GitHub.
//
//   node interop/run.mjs [--quick] [--minutes N] [--token-seconds N] [--every N] [--only a,b] [--serial]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { launchBrowser } from './browser.mjs'
import { CACHE, ensureClient } from './install.mjs'
import { runPhase } from './phase.mjs'

const PINS = JSON.parse(readFileSync(new URL('clients.json', import.meta.url), 'utf8'))

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    minutes: { type: 'string' },
    'token-seconds': { type: 'string' },
    every: { type: 'string' },
    only: { type: 'string' },
    serial: { type: 'boolean', default: false }
  }
})
// The short-token phase: the fake GitHub's tokens live `tokenSeconds` (the gateway's own keep its defaults), and the
// client stays connected for `minutes`, checked every `every` seconds, so each upstream token is renewed several times.
const tokenSeconds = Number(opts['token-seconds'] ?? (opts.quick ? 20 : 120))
const minutes = Number(opts.minutes ?? (opts.quick ? 1 : 6))
const every = Number(opts.every ?? (opts.quick ? 10 : 30))
const names = opts.only === undefined ? Object.keys(PINS) : opts.only.split(',')
for (const name of names) if (PINS[name] === undefined) throw new Error(`unknown client ${name}; known: ${Object.keys(PINS).join(', ')}`)

const runDir = join(CACHE, 'runs', new Date().toISOString().replaceAll(':', '-'))
mkdirSync(runDir, { recursive: true })
console.log(`interop: ${names.join(', ')}; short tokens ${tokenSeconds} s for ${minutes} min, checked every ${every} s; logs in ${runDir}`)

const found = await launchBrowser()
const { browser } = found
console.log(`interop: Chromium: ${found.what}`)
let callbackPort = 47000 + (process.pid % 1000) * 10

/** One client through both phases: a sign-in at the gateway's defaults, then the short-token phase. */
async function runClient (name) {
  const pin = PINS[name]
  const client = await import(`./clients/${name}.mjs`)
  const dir = join(runDir, name)
  rmSync(dir, { recursive: true, force: true })
  const result = { name, version: pin.version, storesTokensIn: client.storesTokensIn, phases: [] }
  try {
    const bin = await ensureClient(name, pin)
    const common = { name, bin, client, browser, say: (line) => console.log(`[${name}] ${line}`) }
    result.phases.push(await runPhase({ ...common, phase: 'sign-in', dir: join(dir, 'sign-in'), callbackPort: callbackPort++ }))
    result.phases.push(await runPhase({
      ...common,
      phase: 'short tokens',
      dir: join(dir, 'short-tokens'),
      callbackPort: callbackPort++,
      tokenSeconds,
      durationMs: minutes * 60_000,
      everyMs: every * 1000
    }))
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err)
    console.log(`[${name}] ${result.error}`)
  }
  result.pass = result.error === undefined && result.phases.length === 2 && result.phases.every((p) => p.pass)
  return result
}

const results = []
if (opts.serial) {
  for (const name of names) results.push(await runClient(name))
} else {
  results.push(...await Promise.all(names.map(runClient)))
}
await found.close()
writeFileSync(join(runDir, 'results.json'), JSON.stringify(results, null, 2))
printTable(results)
const passed = results.filter((r) => r.pass).length
console.log(`interop: ${passed} passed, ${results.length - passed} failed`)
process.exitCode = passed === results.length ? 0 : 1

function printTable (results) {
  const sum = (r, key) => r.phases.reduce((n, p) => n + (p.figures?.[key] ?? 0), 0)
  const rows = [['client', 'version', 'signed in', 'client id', 'tools', 'short tokens: checks ok', 'sign-ins', 'refreshes', 'upstream refreshes', 'revocations', 'duration', 'result']]
  for (const r of results) {
    const [signIn, short] = r.phases
    rows.push([
      r.name,
      r.version,
      signIn === undefined ? '-' : signIn.signedIn ? 'yes' : 'NO',
      // How the gateway knew the client: CIMD (its metadata document's URL) or DCR (registered at /register).
      [...new Set(r.phases.map((p) => p.figures?.identifiedBy ?? '-'))].join(', ') || '-',
      [signIn?.tools === undefined ? '' : `${signIn.tools.length} listed`, signIn?.called === true ? 'echo called' : ''].filter(Boolean).join(', ') || 'status only',
      short === undefined ? '-' : `${short.checksOk}/${short.checks}`,
      String(sum(r, 'signIns')),
      String(sum(r, 'refreshes')),
      String(sum(r, 'upstreamRefreshes')),
      String(sum(r, 'revocations')),
      `${Math.round(r.phases.reduce((n, p) => n + p.seconds, 0))} s`,
      r.pass ? 'PASS' : 'FAIL'
    ])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  console.log('')
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
  for (const r of results) {
    const problems = [r.error, ...r.phases.flatMap((p) => p.problems.map((problem) => `${p.phase}: ${problem}`))].filter(Boolean)
    for (const problem of problems) console.log(`  ${r.name}: ${problem}`)
  }
  console.log('')
}
