// The clients under test, installed from npm at their pinned versions (clients.json) into a cache folder
// outside the repository, one folder per client and version, reused while it holds the client's binary.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

export const CACHE = process.env.INTEROP_CACHE ?? join(homedir(), '.cache', 'mcp-oauth-gateway-interop')

/** The path of `pin`'s binary, installing it first when the cache does not have it. */
export async function ensureClient (name, pin) {
  const prefix = join(CACHE, `${name}@${pin.version}`)
  const bin = join(prefix, 'node_modules', '.bin', pin.bin)
  if (existsSync(bin)) return bin
  mkdirSync(prefix, { recursive: true })
  const log = join(prefix, 'install.log')
  // No install scripts: every client here runs from its package files as installed (the native binaries come in
  // optional dependencies), and a script is code that could fetch from anywhere.
  const args = ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--ignore-scripts', '--save-exact', `${pin.package}@${pin.version}`]
  const out = openSync(log, 'w')
  const code = await new Promise((resolve) => spawn('npm', args, { stdio: ['ignore', out, out] }).once('exit', resolve))
  if (code !== 0 || !existsSync(bin)) throw new Error(`npm ${args.join(' ')} failed (exit ${code}); see ${log}`)
  return bin
}
