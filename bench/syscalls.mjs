// `node bench/syscalls.mjs` (after `npm run build`; needs Debian's strace): the system calls each proxy makes
// per request, counted by `strace -c -f` over a fixed number of small POSTs at 10 connections. Unlike CPU time,
// the counts do not depend on what else the machine is doing: equal counts mean a CPU difference is JavaScript.
import { spawn as spawnProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { MCP_HEADERS, RPC_BODY, startGateway, startUpstreamAndReference, stopAll, table } from './harness.mjs'

const REQUESTS = 4000
const root = fileURLToPath(new URL('..', import.meta.url))

const post = (target, amount) => new Promise((resolve, reject) => {
  autocannon({ url: `${target.origin}/mcp`, method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${target.token}` }, body: RPC_BODY, connections: 10, amount },
    (err, result) => { if (err) reject(err); else resolve(result) })
})

/** `strace -c` attached to `pid` while `work` runs: calls per syscall name. */
async function countSyscalls (pid, work) {
  const strace = spawnProcess('strace', ['-c', '-f', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let report = ''
  strace.stderr.on('data', (chunk) => { report += chunk })
  await new Promise((resolve) => setTimeout(resolve, 500)) // attached
  const result = await work()
  const exited = new Promise((resolve) => strace.once('exit', resolve))
  strace.kill('SIGINT')
  await exited
  const calls = {}
  for (const line of report.split('\n')) {
    const fields = line.trim().split(/\s+/)
    // % time, seconds, usecs/call, calls, [errors,] syscall
    if (fields.length >= 5 && /^\d+$/.test(fields[3]) && /^[a-z_0-9]+$/.test(fields.at(-1))) calls[fields.at(-1)] = Number(fields[3])
  }
  return { calls, result }
}

async function main () {
  if (!existsSync(`${root}dist/app.js`)) throw new Error('run `npm run build` first')
  const { upstreamOrigin, upstreamToken, reference } = await startUpstreamAndReference()
  const targets = [reference, { name: 'gateway', ...await startGateway(upstreamOrigin, upstreamToken) }]
  for (const target of targets) await post(target, 2000) // warm: JIT, pool connections
  const counts = {}
  for (const target of targets) {
    const { calls, result } = await countSyscalls(target.proc.pid, () => post(target, REQUESTS))
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${target.name}: ${result.non2xx} non-2xx, ${result.errors} errors`)
    counts[target.name] = calls
  }
  await stopAll()
  const names = [...new Set(Object.values(counts).flatMap((c) => Object.keys(c)))]
    .filter((name) => targets.some((t) => (counts[t.name][name] ?? 0) / REQUESTS >= 0.01))
    .sort((a, b) => (counts.reference[b] ?? 0) - (counts.reference[a] ?? 0))
  const rows = [['syscall', ...targets.map((t) => `${t.name} / request`)]]
  for (const name of names) {
    rows.push([name, ...targets.map((t) => ((counts[t.name][name] ?? 0) / REQUESTS).toFixed(2))])
  }
  process.stdout.write(`\nSystem calls per request (${REQUESTS} small POSTs, 10 connections, strace -c -f)\n${table(rows)}\n`)
}

main().catch(async (err) => {
  process.stderr.write(`syscalls failed: ${err.stack ?? err}\n`)
  await stopAll()
  process.exit(1)
})
