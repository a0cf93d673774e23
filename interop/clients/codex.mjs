// Codex CLI: `codex mcp login <name>` signs in (callback port and file credential store in config.toml);
// `codex app-server` over stdio is the model-free way to stay connected: a thread keeps its MCP connection, and
// tools are listed and called through the app server's JSON-RPC.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startCommand } from '../spawn.mjs'

export const storesTokensIn = '~/.codex/.credentials.json (mcp_oauth_credentials_store = "file")'

export function configure (ctx) {
  mkdirSync(join(ctx.home, '.codex'), { recursive: true })
  writeFileSync(join(ctx.home, '.codex', 'config.toml'), [
    `mcp_oauth_callback_port = ${ctx.callbackPort}`,
    // The default keyring needs a desktop session; the file store is what a headless machine uses.
    'mcp_oauth_credentials_store = "file"',
    'check_for_update_on_startup = false',
    '[analytics]',
    'enabled = false',
    '[mcp_servers.gateway]',
    `url = "${ctx.mcpUrl}"`,
    ''
  ].join('\n'))
}

export async function login (ctx) {
  // Codex 0.171.0 prefers CIMD when the gateway offers it, with its document at a fixed chatgpt.com URL that this
  // offline harness cannot serve (Claude Code's can be pointed elsewhere, see claude.mjs). Registering (DCR) is what
  // Codex does with a gateway that offers only that; its CIMD sign-in is not tried here.
  const args = ['mcp', 'login', '--oauth-client-registration', 'dcr', ctx.serverName]
  const running = startCommand(ctx.bin, args, ctx.spawnOptions)
  await ctx.signIn(running)
  return await ctx.finish(running, /Successfully logged in/)
}

export function tokensStored (ctx) {
  return existsSync(join(ctx.home, '.codex', '.credentials.json'))
}

/** One app server for the whole phase, with one thread whose MCP connection lives as long as it does. */
export async function connect (ctx) {
  const running = startCommand(ctx.bin, ['app-server'], { ...ctx.spawnOptions, logFile: ctx.spawnOptions.logFile })
  const pending = new Map()
  let next = 0
  createInterface({ input: running.child.stdout }).on('line', (line) => {
    let message
    try { message = JSON.parse(line) } catch { return }
    const waiter = pending.get(message.id)
    if (waiter === undefined) return
    pending.delete(message.id)
    if (message.error !== undefined) waiter.reject(new Error(`${waiter.method}: ${JSON.stringify(message.error)}`))
    else waiter.resolve(message.result)
  })
  const call = (method, params, timeoutMs = 60_000) => new Promise((resolve, reject) => {
    const id = ++next
    const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${method}: no answer within ${timeoutMs / 1000} s`)) }, timeoutMs)
    pending.set(id, {
      method,
      resolve: (v) => { clearTimeout(timer); resolve(v) },
      reject: (e) => { clearTimeout(timer); reject(e) }
    })
    running.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n')
  })
  await call('initialize', { clientInfo: { name: 'mcp-oauth-gateway-interop', title: null, version: '1' }, capabilities: null })
  running.write(JSON.stringify({ jsonrpc: '2.0', method: 'initialized' }) + '\n')
  const { thread } = await call('thread/start', { cwd: ctx.home, ephemeral: true })
  return {
    /** The server's tools as the thread's connection sees them, then a call of echo through it. */
    async check () {
      const { data } = await call('mcpServerStatus/list', { serverName: ctx.serverName, threadId: thread.id, detail: 'toolsAndAuthOnly' })
      const status = data.find((s) => s.name === ctx.serverName)
      if (status === undefined) throw new Error('the server is not in mcpServerStatus/list')
      if (status.toolsError !== null) throw new Error(`tools: ${status.toolsError} (auth ${status.authStatus}, ${status.runtimeStatus})`)
      const tools = Object.keys(status.tools)
      const result = await call('mcpServer/tool/call', { threadId: thread.id, server: ctx.serverName, tool: 'echo', arguments: { text: 'interop' } })
      if (result?.content?.[0]?.text !== 'interop') throw new Error(`echo answered ${JSON.stringify(result).slice(0, 200)}`)
      return { tools, called: true }
    },
    close: () => running.stop()
  }
}
