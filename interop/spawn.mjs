// Runs one client command with its output kept in a file, in a process group of its own so that it can be ended
// with everything it started. Clients that insist on a terminal run under script(1), which gives them one.
import { spawn } from 'node:child_process'
import { appendFileSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

const quote = (word) => /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`

/** Starts `command args`; `tty` runs it under `script -qfec`. Returns a handle on the running process. */
export function startCommand (command, args, { env, cwd, tty = false, logFile }) {
  const [file, argv] = tty
    ? ['script', ['-qfec', [command, ...args].map(quote).join(' '), '/dev/null']]
    : [command, args]
  appendFileSync(logFile, `\n$ ${[command, ...args].map(quote).join(' ')}\n`)
  const child = spawn(file, argv, { env, cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk) => {
    output += chunk.toString('utf8')
    appendFileSync(logFile, chunk)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  child.stdin.on('error', () => {})
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  return {
    child,
    exited,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    write: (text) => { child.stdin.write(text) },
    /** Ends the process group (the client and whatever it started), SIGKILL after 5 s. */
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return await exited
      try { process.kill(-child.pid, 'SIGTERM') } catch {}
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, 5000)
      const result = await exited
      clearTimeout(timer)
      return result
    }
  }
}

/** Runs a command to its end (or `timeoutMs`): its exit code (null on timeout) and its output. */
export async function runCommand (command, args, { timeoutMs = 60_000, ...options }) {
  const running = startCommand(command, args, options)
  const code = await Promise.race([running.exited, sleep(timeoutMs, null, { ref: false })])
  if (code === null) await running.stop()
  return { code, output: running.output() }
}

export function resetLog (logFile) { writeFileSync(logFile, '') }
