// `node bench/instructions.mjs` (after `npm run build`; needs valgrind): CPU per request as machine
// instructions, counted by callgrind in each proxy's process (every thread: JavaScript, JIT, GC, libuv)
// over a fixed number of small POSTs at 10 connections. Unlike CPU time, an instruction count does not move
// with what else the machine is doing, so a few per cent between the proxies can be told from noise.
//   node bench/instructions.mjs [--large] [--app name=path/to/app.js ...]
//   --large: the 100 KB answer instead of the small one.
//   --app: also measure another build of the gateway (a patched copy of dist/, such as bench/ablate.mjs makes);
//   repeatable.
// The proxies run about 50 times slower under valgrind; the upstream and the load generator run natively.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { log, median, MCP_HEADERS, round, RPC_BODY, spawn, startGateway, startReference, stopAll, table } from './harness.mjs'
import { randomBytes } from 'node:crypto'

const LARGE = process.argv.includes('--large')
// 100 KB answers are ten times slower under valgrind: fewer of them.
const WARM = LARGE ? 4000 : 12000
const WINDOW = LARGE ? 2000 : 4000
const WINDOWS = 5
// No background compiler or GC threads, a GC schedule that does not depend on timing: the same work, the same count.
const V8_FLAGS = ['--single-threaded', '--predictable-gc-schedule']
const root = fileURLToPath(new URL('..', import.meta.url))
const outDir = `${root}bench/profiles/callgrind`
const extraApps = Object.fromEntries(process.argv.flatMap((arg, i) => arg === '--app' ? [process.argv[i + 1].split('=')] : []))

const post = (target, amount) => new Promise((resolve, reject) => {
  autocannon({ url: `${target.origin}/mcp${LARGE ? '?size=100k' : ''}`, method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${target.token}` }, body: RPC_BODY, connections: 10, amount, timeout: 120 },
    (err, result) => {
      if (err) reject(err)
      else if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) reject(new Error(`${target.name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`))
      else resolve(result)
    })
})

const control = (pid, flag) => execFileSync('callgrind_control', [flag, String(pid)], { stdio: ['ignore', 'pipe', 'pipe'] })

/** Instructions (callgrind's Ir) the process executed between a zero and the dump that follows it. */
function dumpedInstructions (name, pid) {
  control(pid, '-d')
  const files = readdirSync(outDir).filter((f) => f.startsWith(`${name}.${pid}.`))
  const last = files.sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1))).at(-1)
  const summary = /^summary: (\d+)/m.exec(readFileSync(`${outDir}/${last}`, 'utf8'))
  if (summary === null) throw new Error(`no summary in ${last}`)
  return Number(summary[1])
}

async function measure (target) {
  const pid = target.proc.pid
  log(`${target.name}: warming up (${WARM} requests under callgrind)`)
  await post(target, WARM)
  const perRequest = []
  for (let w = 0; w < WINDOWS; w++) {
    control(pid, '-z')
    await post(target, WINDOW)
    perRequest.push(dumpedInstructions(target.name, pid) / WINDOW)
    log(`${target.name} window ${w + 1}: ${Math.round(perRequest.at(-1)).toLocaleString('en')} instructions/request`)
  }
  await target.proc.stop()
  return perRequest
}

async function main () {
  if (!existsSync(`${root}dist/app.js`)) throw new Error('run `npm run build` first')
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  const callgrind = (name) => ({ wrapper: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${outDir}/${name}.%p`, '--dump-instr=no'], execArgv: V8_FLAGS, timeoutMs: 300_000 })

  const upstreamToken = `gho_${randomBytes(27).toString('base64url')}`
  const upstream = await spawn('upstream.mjs', { UPSTREAM_TOKEN: upstreamToken })
  const upstreamOrigin = `http://127.0.0.1:${upstream.info.port}`
  const results = {}
  // One proxy under valgrind at a time: it takes a whole core.
  results.reference = await measure(await startReference(upstreamOrigin, upstreamToken, callgrind('reference')))
  results.gateway = await measure({ name: 'gateway', ...await startGateway(upstreamOrigin, upstreamToken, callgrind('gateway')) })
  for (const [name, app] of Object.entries(extraApps)) {
    results[name] = await measure({
      name,
      ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_APP: app }, ...callgrind(name) })
    })
  }
  await stopAll()

  const ref = median(results.reference)
  const rows = [['target', ...Array.from({ length: WINDOWS }, (_, w) => `window ${w + 1}`), 'median', 'vs reference']]
  for (const [name, xs] of Object.entries(results)) {
    rows.push([name, ...xs.map((x) => Math.round(x).toLocaleString('en')), Math.round(median(xs)).toLocaleString('en'), `${round(median(xs) / ref, 3)}×`])
  }
  process.stdout.write(`\nInstructions per request (callgrind, ${WINDOW} ${LARGE ? '100 KB' : 'small'} POSTs per window at 10 connections, after ${WARM})\n${table(rows)}\n`)
  writeFileSync(fileURLToPath(new URL(LARGE ? 'instructions-large.json' : 'instructions.json', import.meta.url)), `${JSON.stringify({ date: new Date().toISOString(), answer: LARGE ? '100 KB' : 'small', window: WINDOW, warm: WARM, apps: extraApps, instructionsPerRequest: results }, null, 2)}\n`)
}

main().catch(async (err) => {
  process.stderr.write(`instructions failed: ${err.stack ?? err}\n`)
  await stopAll()
  process.exit(1)
})
