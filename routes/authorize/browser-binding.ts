import { fastifyCookie } from '@fastify/cookie'
import type { FastifyRequest } from 'fastify'
import type { ClientRecord } from '../../lib/clients.js'
import type { FlowRecord, Leg, LegState } from '../../lib/flows.js'
import type { GatewayContext } from '../../plugins/context.js'
import { PageError } from './errors.js'

/** A flow that exists, belongs to this browser, and whose client is still registered. */
export interface LoadedFlow {
  flow: FlowRecord
  client: ClientRecord
}

/**
 * Loads the flow named by the request, if it exists, belongs to this browser and (for form posts) the CSRF
 * token matches; otherwise throws a PageError.
 */
export type LoadFlow = (req: FastifyRequest, flowId: string, csrf?: string) => Promise<LoadedFlow>

/**
 * The flow a browser comes back to from a leg (the upstream's page, the sign-on provider's), by the `state` it
 * carries: loaded as any step's, then the state used up, so a second callback finds nothing; a PageError otherwise.
 */
export type ReturnToFlow = (req: FastifyRequest, leg: Leg, state: string | undefined) => Promise<ReturnedFlow>

/** A flow come back from a leg: the flow, its client, and the leg's state (used up now) with its secrets. */
export interface ReturnedFlow extends LoadedFlow {
  state: string
  pending: LegState
}

/**
 * The flow cookie: a random browser id, signed, that /authorize sets and every later step of the chain
 * checks, so a flow link (or a stolen upstream state) is useless in any other browser.
 */
export interface BrowserBinding {
  /** The verified browser id from the request's cookie; undefined when absent or badly signed. */
  browserOf: (req: FastifyRequest) => string | undefined
  /** The Set-Cookie header value that binds the flows of this browser id to the browser. */
  cookieFor: (browser: string) => string
  loadFlow: LoadFlow
  returnToFlow: ReturnToFlow
}

function expiredPage (): PageError {
  return new PageError(
    400,
    'This sign-in has expired',
    'It took too long or was already completed. Start again from your MCP client.'
  )
}

export function createBrowserBinding (deps: {
  flows: GatewayContext['flows']
  clients: GatewayContext['clients']
  /** The first signs, all verify (rotation). */
  secrets: string[]
  /** The cookie lives as long as a flow may. */
  flowTtlSeconds: number
  /** The gateway is served over https: the cookie is then Secure and __Host-. */
  secure: boolean
}): BrowserBinding {
  const { flows, clients, flowTtlSeconds, secure } = deps
  // __Host- (RFC 6265bis): Secure, Path=/, no Domain, so no sibling host can plant or read it.
  const cookieName = secure ? '__Host-mcp-gateway-browser' : 'mcp-gateway-browser'
  // @fastify/cookie's signer only, not the plugin: its decorators would clash with a host app that
  // registered the plugin itself.
  const signer = fastifyCookie.signerFactory(deps.secrets)

  function browserOf (req: FastifyRequest): string | undefined {
    const raw = cookieValue(req.headers.cookie, cookieName)
    if (raw === undefined) return undefined
    const unsigned = signer.unsign(raw)
    return unsigned.valid && unsigned.value !== null ? unsigned.value : undefined
  }

  function cookieFor (browser: string): string {
    const attributes = `Max-Age=${flowTtlSeconds}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`
    // The name is ours and the value is base64url plus the signer's base64: nothing to encode.
    return `${cookieName}=${signer.sign(browser)}; ${attributes}`
  }

  async function loadFlow (req: FastifyRequest, flowId: string, csrf?: string): Promise<LoadedFlow> {
    const loaded = await flows.load(flowId, browserOf(req))
    if ('reason' in loaded) {
      req.log.info({ reason: loaded.reason }, 'authorization flow rejected')
      if (loaded.reason === 'expired') throw expiredPage()
      throw new PageError(
        403,
        'Wrong browser',
        'This sign-in was started in another browser (or cookies are blocked). ' +
          'Start again from your MCP client, in this browser.'
      )
    }
    if (csrf !== undefined && !flows.checkCsrf(loaded.flow, csrf)) {
      req.log.warn({ clientId: loaded.flow.clientId }, 'CSRF token mismatch')
      throw new PageError(
        403,
        'Request refused',
        'The form was not submitted from this sign-in page. Start again from your MCP client.'
      )
    }
    const client = await clients.find(loaded.flow.clientId)
    if (client === undefined) {
      throw new PageError(
        400,
        'Unknown client',
        'This MCP client is no longer registered with the gateway. Start again from your MCP client.'
      )
    }
    return { flow: loaded.flow, client }
  }

  async function returnToFlow (
    req: FastifyRequest,
    leg: Leg,
    state: string | undefined
  ): Promise<ReturnedFlow> {
    if (state === undefined) throw expiredPage()
    const pending = await flows.peekLeg(leg, state)
    if (pending === undefined) throw expiredPage()
    const loaded = await loadFlow(req, pending.flowId)
    // Only now, with the browser checked, is the state used up.
    if (await flows.takeLeg(leg, state) === undefined) throw expiredPage()
    return { ...loaded, state, pending }
  }

  return { browserOf, cookieFor, loadFlow, returnToFlow }
}

/**
 * One cookie's value from a Cookie header (RFC 6265 §5.4: `name=value` pairs separated by `; `). Not
 * @fastify/cookie's parse/serialize: they work only once that plugin is registered (it loads the ESM
 * `cookie` module then), and the gateway uses only its signer so a host's own registration never clashes.
 */
function cookieValue (header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}
