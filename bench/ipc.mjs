// A tiny request/reply protocol over the fork() IPC channel, shared by the bench driver and its children.
import { fork } from 'node:child_process'
import v8 from 'node:v8'
import { PerformanceObserver, constants } from 'node:perf_hooks'

/**
 * Child side: answers { id, cmd, args } with { id, result } or { id, error }. Adds cpu (with the mark-compacts and GC
 * pauses so far), mem and exit.
 */
export function serve (handlers) {
  // Mark-compacts (V8's full collections) so far, and the main thread's collection pauses (ms): what the
  // 100 KB scenario's CPU follows (bench/HISTORY.md).
  let markCompacts = 0
  let gcMs = 0
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration
      if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) markCompacts++
    }
  }).observe({ entryTypes: ['gc'] })
  const all = {
    cpu: () => ({ ...process.cpuUsage(), markCompacts, gcMs }),
    mem: async () => {
      // Run with --expose-gc: full collections, a pause for the freed pages to go back, another
      // collection, so the figure is live memory, not garbage.
      if (typeof globalThis.gc === 'function') {
        globalThis.gc()
        await new Promise((resolve) => setTimeout(resolve, 150))
        globalThis.gc()
      }
      // heapPhysical: the pages of V8's heap that are resident, so RSS outside the heap can be told apart.
      return { ...process.memoryUsage(), heapPhysical: v8.getHeapStatistics().total_physical_size }
    },
    exit: () => { setImmediate(() => process.exit(0)); return true },
    ...handlers
  }
  process.on('message', async (msg) => {
    if (msg === null || typeof msg !== 'object' || typeof msg.cmd !== 'string') return
    try {
      const handler = all[msg.cmd]
      if (handler === undefined) throw new Error(`unknown command ${msg.cmd}`)
      process.send({ id: msg.id, result: await handler(msg.args ?? {}) })
    } catch (err) {
      process.send({ id: msg.id, error: err instanceof Error ? err.message : String(err) })
    }
  })
  // The driver is gone: nothing to measure any more.
  process.on('disconnect', () => process.exit(0))
}

/** Tells the driver the child is listening. */
export function ready (info) {
  process.send({ ready: true, ...info })
}

/**
 * Parent side: forks `file`, waits for its ready message, returns { pid, info, call, stop }. `wrapper`: a
 * command that runs Node (e.g. `['valgrind', '--tool=callgrind']`); it keeps the process and the IPC channel.
 */
export async function start (file, { env = {}, execArgv = [], wrapper = [], timeoutMs = 30_000 } = {}) {
  const nodeArgv = ['--expose-gc', ...execArgv]
  const child = fork(file, [], {
    env: { ...process.env, ...env },
    ...(wrapper.length === 0
      ? { execArgv: nodeArgv }
      : { execPath: wrapper[0], execArgv: [...wrapper.slice(1), process.execPath, ...nodeArgv] }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const pending = new Map()
  let next = 0
  const info = await new Promise((resolve, reject) => {
    // A child that is not ready in time is ended: left running, its IPC channel would keep the driver alive.
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${file} did not start within ${timeoutMs} ms`)) }, timeoutMs)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${file} exited with ${code} before it was ready`)) })
    child.on('message', (msg) => {
      if (msg?.ready === true) { clearTimeout(timer); resolve(msg); return }
      const waiter = pending.get(msg?.id)
      if (waiter === undefined) return
      pending.delete(msg.id)
      if (msg.error !== undefined) waiter.reject(new Error(msg.error))
      else waiter.resolve(msg.result)
    })
  })
  child.removeAllListeners('exit')
  child.on('exit', () => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${file} exited`))
    pending.clear()
  })
  const call = (cmd, args = {}, ms = 60_000) => new Promise((resolve, reject) => {
    const id = ++next
    const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${file}: ${cmd} timed out`)) }, ms)
    pending.set(id, {
      resolve: (v) => { clearTimeout(timer); resolve(v) },
      reject: (e) => { clearTimeout(timer); reject(e) }
    })
    child.send({ id, cmd, args })
  })
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    await call('exit', {}, 2000).catch(() => {})
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
  return { pid: child.pid, info, call, stop, child }
}
