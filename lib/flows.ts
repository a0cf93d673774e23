import type { Clock } from './clock.js'
import { hashSecret, randomToken, safeEqual } from './crypto.js'
import { StoreFullError } from './stores/errors.js'
import type { Store } from './stores/types.js'

/** An authorization in progress, from GET /authorize to the upstream callback. */
export interface FlowRecord {
  id: string
  /** SHA-256 of the browser cookie that started the flow: only that browser may continue it. */
  browserHash: string
  /** Per-flow CSRF token for the login and consent forms. */
  csrf: string
  clientId: string
  redirectUri: string
  state?: string
  codeChallenge: string
  resource: string
  scope: string
  /** Set once the user has signed in to the gateway. */
  userId?: string
  /** Set once the user approved this client: the upstream leg may start only after that. */
  approved?: boolean
  expiresAt: number
}

export type NewFlow = Omit<FlowRecord, 'id' | 'browserHash' | 'csrf' | 'expiresAt'>

/**
 * Where a flow's browser is sent away and comes back: the upstream's authorize page (screen 2), or the single
 * sign-on provider's (screen 1, lib/login-sso.ts).
 */
export type Leg = 'upstream' | 'sso'

/** The `state` handed to the other side: single use, bound to one flow, with that leg's PKCE verifier (and nonce). */
export interface LegState {
  flowId: string
  verifier: string
  /** The OpenID Connect nonce, on the single sign-on leg. */
  nonce?: string
}

/**
 * Flow state with a hard lifetime (the flow TTL, counted from /authorize, never extended), bound to
 * the browser that began it. The upstream `state` is created only after consent (MCP security best
 * practices, confused deputy) and is consumed atomically at the callback. Anyone can start a flow, so
 * flows and upstream states are each bounded (`maxPending` live at once): past it a new sign-in is
 * refused with StoreFullError, and no other state is touched.
 */
export class FlowStore {
  readonly #store: Store
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #maxPending: number

  constructor (deps: { store: Store, clock: Clock, ttlMs: number, maxPending: number }) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#ttlMs = deps.ttlMs
    this.#maxPending = deps.maxPending
  }

  async create (browser: string, flow: NewFlow): Promise<FlowRecord> {
    const record: FlowRecord = {
      ...flow,
      id: randomToken().slice(0, 32),
      browserHash: hashSecret(browser),
      csrf: randomToken(),
      expiresAt: this.#clock.now() + this.#ttlMs
    }
    if (!await this.#store.add(flowKey(record.id), record, this.#ttlMs, this.#maxPending)) {
      throw new StoreFullError('flow')
    }
    return record
  }

  /** The flow, if it exists and belongs to this browser; `reason` says which check failed. */
  async load (
    flowId: string,
    browser: string | undefined
  ): Promise<{ flow: FlowRecord } | { reason: 'expired' | 'wrong_browser' }> {
    const flow = await this.#store.get<FlowRecord>(flowKey(flowId))
    if (flow === undefined || flow.expiresAt <= this.#clock.now()) return { reason: 'expired' }
    if (browser === undefined || !safeEqual(hashSecret(browser), flow.browserHash)) return { reason: 'wrong_browser' }
    return { flow }
  }

  async save (flow: FlowRecord): Promise<void> {
    const left = flow.expiresAt - this.#clock.now()
    if (left > 0) await this.#store.set(flowKey(flow.id), flow, left)
  }

  async finish (flowId: string): Promise<void> {
    await this.#store.delete(flowKey(flowId))
  }

  checkCsrf (flow: FlowRecord, csrf: string): boolean {
    return safeEqual(csrf, flow.csrf)
  }

  /** A fresh state for a leg of the flow: the upstream's only once approved, the sign-on provider's at sign-in. */
  async beginLeg (leg: Leg, flow: FlowRecord, secrets: Omit<LegState, 'flowId'>): Promise<string> {
    const state = randomToken()
    const record: LegState = { flowId: flow.id, ...secrets }
    const ttlMs = Math.max(1, flow.expiresAt - this.#clock.now())
    if (!await this.#store.add(legKey(leg, state), record, ttlMs, this.#maxPending)) {
      throw new StoreFullError(`${leg}-state`)
    }
    return state
  }

  /** Reads a leg's state without using it up: the browser must be checked first. */
  async peekLeg (leg: Leg, state: string): Promise<LegState | undefined> {
    return await this.#store.get<LegState>(legKey(leg, state))
  }

  /** Uses a leg's state up; undefined when another request already did. */
  async takeLeg (leg: Leg, state: string): Promise<LegState | undefined> {
    return await this.#store.take<LegState>(legKey(leg, state))
  }
}

const flowKey = (id: string) => `flow:${id}`
const legKey = (leg: Leg, state: string) => `${leg}-state:${hashSecret(state)}`
