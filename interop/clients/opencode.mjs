// opencode: the server and its fixed callback port (`oauth.callbackPort`) in opencode.json, then
// `opencode mcp auth <name>`; `opencode mcp list` connects to every server and tells whether it did.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCommand, startCommand } from '../spawn.mjs'

export const storesTokensIn = '~/.local/share/opencode/mcp-auth.json'

// Its auto-update, model list and default plugins all come from the internet: off.
export const env = {
  OPENCODE_DISABLE_AUTOUPDATE: '1',
  OPENCODE_DISABLE_MODELS_FETCH: '1',
  OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
  OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
  OPENCODE_DISABLE_SHARE: '1'
}

export function configure (ctx) {
  const dir = join(ctx.home, '.config', 'opencode')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'opencode.json'), JSON.stringify({
    $schema: 'https://opencode.ai/config.json',
    autoupdate: false,
    share: 'disabled',
    mcp: { [ctx.serverName]: { type: 'remote', url: ctx.mcpUrl, oauth: { callbackPort: ctx.callbackPort } } }
  }, null, 2))
}

export async function login (ctx) {
  const running = startCommand(ctx.bin, ['mcp', 'auth', ctx.serverName], ctx.spawnOptions)
  await ctx.signIn(running)
  return await ctx.finish(running)
}

export function tokensStored (ctx) {
  const file = join(ctx.home, '.local', 'share', 'opencode', 'mcp-auth.json')
  if (!existsSync(file)) return false
  return JSON.parse(readFileSync(file, 'utf8'))[ctx.serverName]?.tokens?.accessToken !== undefined
}

/**
 * `opencode mcp list` per check: a new opencode each time, which connects with the stored tokens (refreshing them
 * when they have expired) and says whether it got through. It prints no tools, and its agent's tools can only be
 * seen or called through a model, so the status is all there is without one.
 */
export async function connect (ctx) {
  return {
    async check () {
      const { code, output } = await runCommand(ctx.bin, ['mcp', 'list'], { ...ctx.spawnOptions, timeoutMs: 90_000 })
      const line = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split('\n').find((l) => l.includes(` ${ctx.serverName} `)) ?? '' // eslint-disable-line no-control-regex
      if (code !== 0 || !/✓ \S+ connected/.test(line)) throw new Error(`opencode mcp list: ${line.trim() || `exit ${code}`}`)
      return { called: false }
    },
    close: async () => {}
  }
}
