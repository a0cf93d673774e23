// The clients under test, installed from npm at their pinned versions (clients.json) into a cache folder
// outside the repository, one folder per client and version, reused while it holds the client's binary.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

export const CACHE = process.env.INTEROP_CACHE ?? join(homedir(), '.cache', 'mcp-oauth-gateway-interop')

/**
 * The path of `pin`'s binary, installing it first when the cache does not have it. A client whose npm `bin` is a
 * stub that its install script replaces (Claude Code, opencode) names its platform package's binary in `native`
 * (`{platform}` and `{arch}` as Node spells them), which the optional dependencies bring without any script.
 */
export async function ensureClient (name, pin) {
  const prefix = join(CACHE, `${name}@${pin.version}`)
  const bin = pin.native === undefined
    ? join(prefix, 'node_modules', '.bin', pin.bin)
    : join(prefix, 'node_modules', pin.native.replace('{platform}', process.platform).replace('{arch}', process.arch))
  if (existsSync(bin)) return bin
  mkdirSync(prefix, { recursive: true })
  const log = join(prefix, 'install.log')
  // No install scripts: a script is code that could fetch from anywhere.
  const args = ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--ignore-scripts', '--save-exact', `${pin.package}@${pin.version}`]
  const out = openSync(log, 'w')
  const code = await new Promise((resolve) => spawn('npm', args, { stdio: ['ignore', out, out] }).once('exit', resolve))
  if (code !== 0 || !existsSync(bin)) throw new Error(`npm ${args.join(' ')} failed (exit ${code}); see ${log}`)
  return bin
}
