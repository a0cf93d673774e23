/**
 * Resolving gateway options, from the plugin's options or from the command line: the schema, then what it cannot
 * say (URLs, origins, headers, scopes, secrets, the store), then the warnings about a risky but valid choice.
 */
import { randomBytes } from 'node:crypto'
import { isHostPattern } from '../client-metadata-document.js'
import { HTTP_TOKEN } from '../http-token.js'
import { isRedirectUriPattern } from '../redirect-uri.js'
import { splitScopeList } from '../scopes.js'
import { parseRedisUrl } from '../stores/redis-url.js'
import { withoutPathTrailingSlashes } from '../url.js'
import { ConfigError, type ResolvedGatewayOptions } from './options.js'
import {
  entriesOf,
  GATEWAY_OWNED_HEADERS,
  HEADER_VALUE,
  headerPairs,
  httpOrigin,
  httpUrl,
  isLoopbackHost,
  ownedRule,
  splitList
} from './parsers.js'
import {
  DEFAULT_PASSWORD,
  DEFAULT_STORE,
  DEFAULT_USERNAME,
  GATEWAY_SETTINGS,
  MAX_LIST,
  MIN_SECRET_LENGTH,
  ruleOf,
  SCOPE_TOKEN,
  type GatewayKey
} from './settings.js'
import { Problems, runSchema, validateGateway } from './validate.js'

// What Fastify itself puts into a plugin's options object: not typos, so no warning about them.
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

const SCOPE_TOKEN_RE = new RegExp(SCOPE_TOKEN)
const UPSTREAM_NAME = /^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$/
const EMAIL = /^[^\s@,]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+$/
const DOMAIN = /^[a-z0-9-]+(?:\.[a-z0-9-]+)+$/
const GITHUB_USER_ENDPOINT = 'https://api.github.com/user'
const GITHUB_HOSTS = new Set(['github.com', 'api.githubcopilot.com'])

/** GitHub's user endpoint when any configured upstream URL is GitHub's, else undefined. */
function githubUserEndpoint (urls: Array<string | undefined>): string | undefined {
  const github = urls.some((url) => url !== undefined && GITHUB_HOSTS.has(new URL(url).hostname.toLowerCase()))
  return github ? GITHUB_USER_ENDPOINT : undefined
}

const isMemoryStore = (value: string): boolean => value.toLowerCase() === DEFAULT_STORE

export interface Resolution {
  options: ResolvedGatewayOptions
  warnings: string[]
}

/** Validates gateway options; adds every problem to `problems` and returns options only when there is none. */
export function resolveGateway (
  input: Record<string, unknown>,
  problems: Problems,
  label: (key: string) => string
): Resolution | undefined {
  const before = problems.size
  const warnings: string[] = []
  const value = runSchema(validateGateway, GATEWAY_SETTINGS, input, problems)

  const url = (key: GatewayKey, allowQuery: boolean, strip: boolean): string | undefined => {
    const raw = value[key]
    if (typeof raw !== 'string' || problems.has(key)) return undefined
    if (httpUrl(raw, allowQuery) === undefined) {
      problems.add(key, ruleOf(GATEWAY_SETTINGS[key]))
      return undefined
    }
    return strip ? withoutPathTrailingSlashes(raw) : raw
  }
  const publicUrl = url('publicUrl', false, true)
  const upstreamRs = url('upstreamRs', true, true)
  // Issuer identifiers and endpoints are compared or called exactly as configured: no slash stripping.
  const upstreamAs = url('upstreamAs', true, false)
  const upstreamAuthorizeEndpoint = url('upstreamAuthorizeEndpoint', true, false)
  const upstreamTokenEndpoint = url('upstreamTokenEndpoint', true, false)
  const loginOidcIssuer = url('loginOidcIssuer', false, false)
  const upstreamUserEndpoint = url('upstreamUserEndpoint', true, true) ??
    githubUserEndpoint([upstreamRs, upstreamAs, upstreamAuthorizeEndpoint, upstreamTokenEndpoint])

  let upstreamScopes: string[] | undefined
  const scopes = value.upstreamScopes
  if (typeof scopes === 'string' && !problems.has('upstreamScopes')) {
    upstreamScopes = splitScopeList(scopes)
    if (!upstreamScopes.every((scope) => SCOPE_TOKEN_RE.test(scope))) {
      problems.add('upstreamScopes', ruleOf(GATEWAY_SETTINGS.upstreamScopes))
    }
  } else if (Array.isArray(scopes)) {
    upstreamScopes = scopes as string[]
  }
  if (upstreamScopes?.length === 0) upstreamScopes = undefined

  let secrets: string[] = []
  const secret = value.secret
  if (typeof secret === 'string' && !problems.has('secret')) {
    secrets = splitList(secret, /,/)
    if (secrets.length === 0 || secrets.some((s) => s.length < MIN_SECRET_LENGTH)) {
      problems.add('secret', ruleOf(GATEWAY_SETTINGS.secret))
    }
  } else if (Array.isArray(secret)) {
    secrets = secret as string[]
  }

  let allowedOrigins: string[] = []
  if (!problems.has('allowedOrigins')) {
    const origins = entriesOf(value.allowedOrigins, /[\s,]+/).map(httpOrigin)
    if (origins.length > MAX_LIST || origins.includes(undefined)) {
      problems.add('allowedOrigins', ruleOf(GATEWAY_SETTINGS.allowedOrigins))
    } else {
      allowedOrigins = [...new Set(origins as string[])]
    }
  }

  // Header names are case-insensitive: kept lowercase, so that the proxy compares them as they are.
  const upstreamHeaders = new Map<string, string>()
  const pairs = problems.has('upstreamHeaders') ? [] : headerPairs(value.upstreamHeaders)
  if (pairs === undefined || pairs.length > MAX_LIST) {
    problems.add('upstreamHeaders', ruleOf(GATEWAY_SETTINGS.upstreamHeaders))
  } else {
    for (const [name, headerValue] of pairs) {
      const lower = name.toLowerCase()
      // Only names that passed the token check are named back, never a value (a pinned header may be a secret).
      if (!HTTP_TOKEN.test(name) || !HEADER_VALUE.test(headerValue)) {
        problems.add('upstreamHeaders', ruleOf(GATEWAY_SETTINGS.upstreamHeaders))
      } else if (GATEWAY_OWNED_HEADERS.has(lower)) {
        problems.add('upstreamHeaders', ownedRule(lower, 'pin'))
      } else if (upstreamHeaders.has(lower)) {
        problems.add('upstreamHeaders', `must not set ${lower} twice`)
      }
      upstreamHeaders.set(lower, headerValue)
    }
  }

  let forwardHeaders: string[] = []
  if (!problems.has('forwardHeaders')) {
    const names = entriesOf(value.forwardHeaders, /[\s,]+/)
    const owned = names.find((name) => GATEWAY_OWNED_HEADERS.has(name.toLowerCase()))
    if (names.length > MAX_LIST || !names.every((name) => HTTP_TOKEN.test(name))) {
      problems.add('forwardHeaders', ruleOf(GATEWAY_SETTINGS.forwardHeaders))
    } else if (owned !== undefined) {
      problems.add('forwardHeaders', ownedRule(owned.toLowerCase(), 'forward'))
    } else {
      forwardHeaders = [...new Set(names.map((name) => name.toLowerCase()))]
    }
  }

  // Lists of entries each checked on its own: the whole setting is refused when one entry is bad. Names are
  // compared lowercase; URIs keep their case (a path is case-sensitive).
  const checkedList = (key: GatewayKey, accept: (entry: string) => boolean, lowercase = true): string[] => {
    if (problems.has(key)) return []
    const entries = [...new Set(entriesOf(value[key], /[\s,]+/).map((entry) => lowercase ? entry.toLowerCase() : entry))]
    if (entries.length > MAX_LIST || !entries.every(accept)) problems.add(key, ruleOf(GATEWAY_SETTINGS[key]))
    return entries
  }
  const clientRegistration = checkedList('clientRegistration', (method) => method === 'dcr' || method === 'cimd')
  if (clientRegistration.length === 0) problems.add('clientRegistration', ruleOf(GATEWAY_SETTINGS.clientRegistration))
  const cimdAllowedHosts = checkedList('cimdAllowedHosts', isHostPattern)
  // GitHub's logins and org names: letters, digits and single hyphens; any case, compared lowercase.
  const upstreamAllowedUsers = checkedList('upstreamAllowedUsers', (name) => UPSTREAM_NAME.test(name))
  const upstreamAllowedOrgs = checkedList('upstreamAllowedOrgs', (name) => UPSTREAM_NAME.test(name))
  const loginAllowedEmails = checkedList('loginAllowedEmails', (email) => EMAIL.test(email))
  const loginAllowedDomains = checkedList('loginAllowedDomains', (domain) => DOMAIN.test(domain))
  if (loginOidcIssuer !== undefined) {
    if (value.loginOidcClientId === undefined) problems.add('loginOidcClientId', 'is required with single sign-on')
    // A public provider (Google, Microsoft) vouches for anyone's address: who may come in must be said.
    if (loginAllowedEmails.length === 0 && loginAllowedDomains.length === 0 && !problems.has('loginAllowedEmails') &&
      !problems.has('loginAllowedDomains')) {
      problems.add('loginAllowedEmails', 'or loginAllowedDomains is required with single sign-on')
    }
  }
  if ((upstreamAllowedUsers.length > 0 || upstreamAllowedOrgs.length > 0) && upstreamUserEndpoint === undefined &&
    !problems.has('upstreamUserEndpoint')) {
    problems.add('upstreamUserEndpoint', 'is required with upstream allow-lists when the upstream is not GitHub\'s')
  }
  const redirectUriAllow = checkedList('redirectUriAllow', isRedirectUriPattern, false)

  let store = DEFAULT_STORE
  const storeValue = value.store
  if (typeof storeValue === 'string' && !problems.has('store')) {
    if (isMemoryStore(storeValue)) {
      store = DEFAULT_STORE
    } else if (parseRedisUrl(storeValue) !== undefined) {
      store = storeValue
    } else {
      problems.add('store', ruleOf(GATEWAY_SETTINGS.store))
    }
  }
  // Checked even when the URL is bad: any string but memory means to persist, so both problems are named at once.
  // On the input as given: a number or a boolean the schema turned into a string is just a bad store.
  const givenStore = input.store
  if (typeof givenStore === 'string' && givenStore !== '' && !isMemoryStore(givenStore) && secrets.length === 0) {
    problems.add(
      'secret',
      `is required with a persistent ${label('store').split(' ')[0] as string} (tokens must survive restarts and work on every replica)`
    )
  }

  for (const key of Object.keys(input)) {
    if (!(key in GATEWAY_SETTINGS) && !FASTIFY_REGISTER_KEYS.has(key)) warnings.push(`unknown option "${key}" ignored`)
  }
  if (problems.size > before) return undefined

  const secretGenerated = secrets.length === 0
  if (secretGenerated) {
    secrets = [randomBytes(32).toString('base64url')]
    warnings.push(
      `no ${label('secret')} set: a random secret was generated, so tokens, codes and cookies will not survive a restart (and will not work across instances)`
    )
  }
  if (upstreamAuthorizeEndpoint !== undefined && upstreamTokenEndpoint !== undefined && upstreamScopes === undefined) {
    warnings.push(
      `both upstream endpoints are set but ${label('upstreamScopes')} is not: GitHub then grants only public, read-only access`
    )
  }
  if (value.upstreamClientSecret !== undefined && value.upstreamClientId === undefined) {
    warnings.push(
      `${label('upstreamClientSecret')} is ignored without ${label('upstreamClientId')}: the gateway registers itself upstream`
    )
  }
  // Checked above: publicUrl parses, or there was a problem and we returned.
  const publicHost = (httpUrl(publicUrl as string, false) as URL).hostname
  if ((publicUrl as string).toLowerCase().startsWith('http:') && !isLoopbackHost(publicHost)) {
    warnings.push(
      `${label('publicUrl')} is plain http on a non-loopback host: OAuth 2.1 requires https there (terminate TLS in front of the gateway)`
    )
  }

  // Everything the schema checked and the code above did not resolve is taken as it is.
  const { secret: _secret, ...checked } = value
  return {
    warnings,
    options: {
      ...checked,
      publicUrl,
      upstreamRs,
      upstreamAs,
      // Present even when unset, as every optional upstream setting is.
      upstreamClientId: value.upstreamClientId,
      upstreamClientSecret: value.upstreamClientSecret,
      usersFile: value.usersFile,
      loginOidcIssuer,
      loginOidcClientId: value.loginOidcClientId,
      loginOidcClientSecret: value.loginOidcClientSecret,
      loginAllowedEmails,
      loginAllowedDomains,
      upstreamAuthorizeEndpoint,
      upstreamTokenEndpoint,
      upstreamUserEndpoint,
      upstreamAllowedUsers,
      upstreamAllowedOrgs,
      upstreamScopes,
      secrets,
      secretGenerated,
      allowedOrigins,
      // fromEntries defines properties, so even a `__proto__` header name stays a plain key.
      upstreamHeaders: Object.fromEntries(upstreamHeaders),
      forwardHeaders,
      clientRegistration,
      cimdAllowedHosts,
      redirectUriAllow,
      store,
      metricsPath: value.metricsPath === 'off' || value.metricsPath === false ? false : value.metricsPath
    } as ResolvedGatewayOptions
  }
}

/** Whether screen 1 takes the one account's password (no users file, no single sign-on), and it is the default. */
export const usesDefaultPassword = (options: ResolvedGatewayOptions): boolean =>
  options.usersFile === undefined && options.loginOidcIssuer === undefined && options.password === DEFAULT_PASSWORD
const isLoopbackUrl = (url: string): boolean => isLoopbackHost(new URL(url).hostname)

/**
 * Validates what an embedding app passes to the gateway plugin. Throws a `ConfigError` naming every bad option.
 * No listening host is known here, so default credentials only warn.
 */
export function parseGatewayOptions (input: unknown): { options: ResolvedGatewayOptions, warnings: string[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(['gateway options must be an object'])
  }
  const problems = new Problems((key) => key)
  const resolved = resolveGateway(input as Record<string, unknown>, problems, (key) => key)
  if (resolved === undefined) throw new ConfigError(problems.list())
  if (usesDefaultPassword(resolved.options)) {
    if (!isLoopbackUrl(resolved.options.publicUrl)) {
      const { host } = new URL(resolved.options.publicUrl)
      throw new ConfigError([
        `password: the published default credentials (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}) are refused for publicUrl ${host}, which other machines can reach: set username and password`
      ])
    }
    resolved.warnings.push(
      `username and password are the published defaults (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}): fine for a try-out on this machine, never anywhere else; set username and password`
    )
  }
  return resolved
}
