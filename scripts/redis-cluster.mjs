#!/usr/bin/env node
// A three-master Redis Cluster on loopback ports for the tests (tap's `before` in .taprc, and .ci/run).
//   node scripts/redis-cluster.mjs [start|stop]
// `start` returns at once when the cluster already answers cluster_state:ok; otherwise it starts what is
// missing and (re)creates the cluster. Ports: MCP_GATEWAY_TEST_CLUSTER_PORTS (default 7101,7102,7103).
// tap runs this as its `before` program under its coverage loader: what it covers says nothing of the tests.
/* c8 ignore start */
import { execFileSync, spawnSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const HOST = '127.0.0.1'
const PORTS = (process.env.MCP_GATEWAY_TEST_CLUSTER_PORTS ?? '7101,7102,7103')
  .split(',')
  .map((port) => Number(port.trim()))
const DIR = join(tmpdir(), `mcp-gateway-redis-cluster-${PORTS.join('-')}`)
const LOCK = join(DIR, 'start.lock')
// Longer than a start takes (a few seconds): a lock this old was left by a process that died.
const STALE_LOCK_MS = 60_000

/** redis-cli's answer, or undefined when the node does not answer. */
function cli (port, ...args) {
  const result = spawnSync('redis-cli', ['-h', HOST, '-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 })
  return result.status === 0 && !result.stdout.startsWith('Could not connect') ? result.stdout : undefined
}

const answers = (port) => cli(port, 'ping')?.trim() === 'PONG'

/** cluster_state:ok on every node, each knowing all three. */
function clusterOk () {
  return PORTS.every((port) => {
    const info = cli(port, 'cluster', 'info') ?? ''
    return /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${PORTS.length}\\b`).test(info)
  })
}

async function waitFor (check, ms, what) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
    if (check()) return
  }
  throw new Error(`redis cluster: ${what} within ${ms} ms`)
}

function startNode (port) {
  execFileSync('redis-server', [
    '--port', String(port), '--bind', HOST, '--daemonize', 'yes', '--dir', DIR,
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000',
    '--save', '', '--appendonly', 'no',
    '--logfile', join(DIR, `redis-${port}.log`), '--pidfile', join(DIR, `redis-${port}.pid`)
  ], { stdio: 'ignore' })
}

async function createCluster () {
  for (const port of PORTS) if (!answers(port)) startNode(port)
  await waitFor(() => PORTS.every(answers), 10_000, 'nodes did not answer')
  // Nodes restarted with their nodes-<port>.conf rejoin by themselves; give them a moment first.
  if (PORTS.every((port) => /cluster_known_nodes:[2-9]/.test(cli(port, 'cluster', 'info') ?? ''))) {
    try { await waitFor(clusterOk, 6000, 'no rejoin'); return } catch {}
  }
  // Anything half made (a node lost, slots unassigned) is thrown away: this cluster only holds test keys.
  for (const port of PORTS) {
    cli(port, 'flushall')
    cli(port, 'cluster', 'reset', 'hard')
  }
  execFileSync(
    'redis-cli',
    ['--cluster', 'create', ...PORTS.map((port) => `${HOST}:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
    { stdio: 'ignore' }
  )
  await waitFor(clusterOk, 20_000, 'cluster_state did not become ok')
}

/** One starter at a time (parallel `before` scripts, CI and a developer's shell): an exclusive lock file. */
async function withLock (work) {
  mkdirSync(DIR, { recursive: true })
  for (const end = Date.now() + 60_000; ;) {
    try {
      closeSync(openSync(LOCK, 'wx'))
      break
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      if (clusterOk()) return
      try { if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { force: true }) } catch {}
      if (Date.now() > end) throw new Error(`redis cluster: ${LOCK} held for a minute`)
      await sleep(200)
    }
  }
  try {
    if (!clusterOk()) await work()
  } finally {
    rmSync(LOCK, { force: true })
  }
}

const command = process.argv[2] ?? 'start'
if (command === 'start') {
  if (!clusterOk()) await withLock(createCluster)
  console.log(`redis cluster ok on ${PORTS.map((port) => `${HOST}:${port}`).join(',')}`)
} else if (command === 'stop') {
  for (const port of PORTS) cli(port, 'shutdown', 'nosave')
} else {
  console.error('usage: node scripts/redis-cluster.mjs [start|stop]')
  process.exit(2)
}
