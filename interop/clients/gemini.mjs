// Gemini CLI: the server in ~/.gemini/settings.json and its callback port in OAUTH_CALLBACK_PORT, then
// `gemini -p '/mcp auth <name>'`, which wants a terminal and a yes; `gemini mcp list` connects and tells whether it
// did. No model is asked (the API key only has to be there).
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCommand, startCommand } from '../spawn.mjs'

export const storesTokensIn = '~/.gemini/mcp-oauth-tokens.json (plain JSON; encrypted with GEMINI_FORCE_ENCRYPTED_FILE_STORAGE=true)'

export const env = ({ callbackPort }) => ({
  // Never sent anywhere: no prompt reaches a model. It is there because the CLI will not start without an auth method.
  GEMINI_API_KEY: 'interop-no-model',
  GEMINI_CLI_NO_RELAUNCH: 'true',
  GEMINI_TELEMETRY_ENABLED: 'false',
  // Its callback port: `oauth.redirectUri` in settings.json is dropped once it has discovered the endpoints.
  OAUTH_CALLBACK_PORT: String(callbackPort)
})

export function configure (ctx) {
  const dir = join(ctx.home, '.gemini')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'settings.json'), JSON.stringify({
    mcpServers: {
      [ctx.serverName]: { httpUrl: ctx.mcpUrl, oauth: { enabled: true } }
    },
    security: { auth: { selectedType: 'gemini-api-key' }, folderTrust: { enabled: false } },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
    general: { disableAutoUpdate: true, disableUpdateNag: true }
  }, null, 2))
}

export async function login (ctx) {
  const running = startCommand(ctx.bin, ['-p', `/mcp auth ${ctx.serverName}`], { ...ctx.spawnOptions, tty: true })
  // It asks before each browser it opens: once when its start-up connection gets the 401, once more for the
  // command itself. Every question is answered yes through the terminal script(1) gives it.
  let answered = 0
  const asking = setInterval(() => {
    const asked = running.output().match(/\[Y\/n\]/gi)?.length ?? 0
    for (; answered < asked; answered++) running.write('y\r')
  }, 200)
  try {
    // Each question opens a sign-in in the browser, until the command is done.
    while (await Promise.race([running.exited.then(() => false), ctx.signIn(running).then(() => true, (err) => {
      if (running.alive()) throw err
      return false
    })]));
    // It exits with 42 after the success, as its -p mode does not support what the command returns afterwards.
    return await ctx.finish(running, /Successfully authenticated/, { anyExitCode: true })
  } finally {
    clearInterval(asking)
  }
}

export function tokensStored (ctx) {
  const dir = join(ctx.home, '.gemini')
  return existsSync(dir) && readdirSync(dir).some((file) => file.startsWith('mcp-oauth-tokens'))
}

/**
 * `gemini mcp list` per check: a new CLI each time, which connects with the stored tokens (refreshing them when
 * they have expired) and prints the server's state. Not `gemini -p '/mcp list'`: in -p mode that is a prompt for
 * the model, not a command.
 */
export async function connect (ctx) {
  return {
    async check () {
      const { code, output } = await runCommand(ctx.bin, ['mcp', 'list'], { ...ctx.spawnOptions, timeoutMs: 90_000 })
      const line = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split('\n').find((l) => l.includes(`${ctx.serverName}:`)) ?? '' // eslint-disable-line no-control-regex
      if (code !== 0 || !/[✓✔]/.test(line) || !/Connected/i.test(line)) throw new Error(`gemini mcp list: ${line.trim() || `exit ${code}`}`)
      return { called: false }
    },
    close: async () => {}
  }
}
