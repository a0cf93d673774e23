/**
 * What the configuration resolves to: the gateway options the plugin runs with, the listener's settings, and the
 * one error every bad value ends in.
 */
import type { Static } from 'typebox'
import type { GatewayOptionsSchema } from './schema.js'
import type { LOG_LEVELS } from './settings.js'

/** What an embedding app passes to the gateway plugin, before it is checked. */
export type GatewayOptions = Static<typeof GatewayOptionsSchema>

export interface ResolvedGatewayOptions {
  publicUrl: string
  upstreamRs: string
  upstreamAs: string | undefined
  upstreamClientId: string | undefined
  upstreamClientSecret: string | undefined
  upstreamAuthorizeEndpoint: string | undefined
  upstreamTokenEndpoint: string | undefined
  upstreamScopes: string[] | undefined
  username: string
  password: string
  /** The users file of personal accounts, replacing username/password; undefined: the one account. */
  usersFile: string | undefined
  /** Single sign-on for screen 1 (lib/login-sso.ts); undefined: none. */
  loginOidcIssuer: string | undefined
  loginOidcClientId: string | undefined
  loginOidcClientSecret: string | undefined
  /** Lowercase addresses, and domains, whose verified addresses may sign in by single sign-on. */
  loginAllowedEmails: string[]
  loginAllowedDomains: string[]
  mcpScope: string
  /** The first signs and encrypts; all verify and decrypt, so a new secret can be put first and old ones kept. */
  secrets: string[]
  /** True when no secret was configured and a random one was made: nothing issued survives a restart. */
  secretGenerated: boolean
  codeTtl: number
  flowTtl: number
  accessTokenTtl: number
  refreshTokenTtl: number
  clientTtl: number
  refreshGrace: number
  upstreamTimeout: number
  /** Where who signed in upstream is asked (GitHub's /user); undefined: not asked. */
  upstreamUserEndpoint: string | undefined
  /** Lowercase upstream user names allowed to sign in; empty: anyone. */
  upstreamAllowedUsers: string[]
  /** Lowercase upstream organisations whose members may sign in; empty: any. */
  upstreamAllowedOrgs: string[]
  /** Normalised serialized origins (`https://app.example`), deduplicated; the proxy adds the publicUrl's own. */
  allowedOrigins: string[]
  /** Pinned on every proxied request. Names are lowercase RFC 9110 tokens, never one the gateway owns. */
  upstreamHeaders: Record<string, string>
  /** Lowercase names of extra client request headers to forward, deduplicated, never one the gateway owns. */
  forwardHeaders: string[]
  disableGetStream: boolean
  /** How clients identify themselves: RFC 7591 registration, Client ID Metadata Document URLs, or both. */
  clientRegistration: Array<'dcr' | 'cimd'>
  /** Lowercase host names and `*.`-prefixed suffixes; empty: any public host. */
  cimdAllowedHosts: string[]
  /** Fetch client metadata documents from non-public addresses too (tests, intranets). */
  cimdAllowPrivate: boolean
  /** `loopback`, exact URIs and `*`-ended prefixes every client redirect URI must match; empty: no restriction. */
  redirectUriAllow: string[]
  /** Client metadata documents cached at once, across replicas; past it documents are used uncached. */
  maxClientDocuments: number
  /** Client metadata documents fetched at once by one process; more sign-ins are refused (503). */
  maxClientDocumentFetches: number
  /** Milliseconds /mcp waits for the upstream's response headers; a started stream never times out. */
  proxyTimeout: number
  /** Bytes. */
  maxBodySize: number
  /**
   * `'memory'`, or a Redis URL (`redis://`, `redis-sentinel://`, `redis-cluster://`, each also TLS) exactly as configured. It may carry a password: never log it.
   * Anything but `'memory'` comes with configured secrets (`secretGenerated` is false).
   */
  store: string
  /** Prefix of every key in the store: 1 to 64 of `A-Z a-z 0-9 : _ . -`. */
  storePrefix: string
  /**
   * Milliseconds a replica may keep a validated access token in memory before asking the store again, and so
   * the bound on how late a revocation made on another replica takes effect; 0 = no cache.
   */
  tokenCacheTtl: number
  /**
   * Where Prometheus metrics are served on the gateway's own routes, or false (the default):
   * see ServerSettings.metricsPort.
   */
  metricsPath: string | false
  /** Seconds a registration that has not completed a sign-in lives; one that has lives `clientTtl` idle. */
  unusedClientTtl: number
  /** Registrations younger than `unusedClientTtl` at once, across replicas; more are refused (503), none evicted. */
  maxUnusedClients: number
  /** Sign-ins in progress at once, across replicas; more are refused (503), none evicted. */
  maxPendingSignIns: number
  /** Live grants one person may hold at once (the account page's list); more are refused, none evicted. */
  maxGrantsPerUser: number
  /** Requests a minute per address to each sign-in route (/authorize … /upstream/callback) and /account page. */
  rateLimitSignIn: number
  rateLimitRegister: number
  /** Requests a minute per address to each of /token and /revoke. */
  rateLimitToken: number
  /** Failed sign-ins per address in 15 minutes before the address is refused. */
  loginFailuresPerAddress: number
  /** Failed sign-ins for one user name in 15 minutes before each further attempt waits (doubling, up to 15 minutes). */
  loginFailuresPerUser: number
  /** Proxied requests and streams open at once in total; also the upstream connection cap. */
  maxStreams: number
  maxStreamsPerGrant: number
}

export interface ServerSettings {
  port: number
  host: string
  /** `true`, `false`, or comma-separated addresses/CIDRs, handed to Fastify's `trustProxy` as is. */
  trustProxy: boolean | string
  logLevel: typeof LOG_LEVELS[number]
  /** Seconds requests in flight get to finish after SIGTERM/SIGINT before what is left is cut. */
  shutdownGrace: number
  /**
   * Milliseconds to receive a whole request, headers and body (Node's `requestTimeout`); responses and
   * streams are not bounded by it.
   */
  requestTimeout: number
  /** Milliseconds to receive a request's headers. */
  headersTimeout: number
  /** Milliseconds an idle keep-alive connection stays open. */
  keepAliveTimeout: number
  /** Connections open at once; more are refused by the kernel's accept queue, then closed. */
  maxConnections: number
  /** The port of a listener of its own that serves /metrics, or undefined (no such listener). */
  metricsPort: number | undefined
  metricsHost: string
}

/** One bad value or more. The message has one line per bad field and never contains a configured value. */
export class ConfigError extends Error {
  readonly problems: string[]

  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}
