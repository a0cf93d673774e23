import { UpstreamError } from './upstream-as/errors.js'
import { send } from './upstream-as/http.js'
import type { UpstreamClientCredentials } from './upstream-as/registration.js'

/*
 * Who the person is upstream, asked right after the upstream code exchange with the token just obtained: for
 * GitHub, `GET /user` (and `GET /user/orgs` when organisations are restricted) on the REST API; for an OpenID
 * Connect upstream, its userinfo endpoint (OIDC Core §5.3). What the operator's allow-lists are checked against,
 * and what the grant keeps (for the account page, tool policy and audit to come).
 */

export interface UpstreamIdentity {
  /** The upstream's user name (GitHub's `login`; OIDC's `preferred_username`, else `email`, else `sub`). */
  login: string
  /** The upstream's stable user id (GitHub's `id`, OIDC's `sub`): a login can be renamed, an id cannot. */
  id: string
  /** The organisations the user belongs to, lowercase; undefined when not asked for. */
  orgs?: string[]
}

export interface IdentityPolicy {
  /** Upstream user names allowed, lowercase; empty: any. */
  allowedUsers: readonly string[]
  /** Upstream organisations whose members are allowed, lowercase; empty: any. */
  allowedOrgs: readonly string[]
}

/** Whether the policy restricts anyone: then an identity is required, and checked. */
export function restricts (policy: IdentityPolicy): boolean {
  return policy.allowedUsers.length > 0 || policy.allowedOrgs.length > 0
}

/**
 * Whether the person may sign in: with both lists, being in either is enough (a named user, or a member of a
 * named organisation). GitHub's names are case-insensitive.
 */
export function identityAllowed (identity: UpstreamIdentity, policy: IdentityPolicy): boolean {
  if (!restricts(policy)) return true
  const login = identity.login.toLowerCase()
  return policy.allowedUsers.includes(login) ||
    (identity.orgs ?? []).some((org) => policy.allowedOrgs.includes(org))
}

// One page of organisations: a person in more than 100 is checked against the first 100 GitHub lists.
const ORGS_PER_PAGE = 100

/**
 * GET `userEndpoint` (and `userEndpoint`/orgs with `withOrgs`, GitHub's only) with the upstream token: an
 * UpstreamError when it does not say who this is.
 */
export async function fetchUpstreamIdentity (
  userEndpoint: string,
  accessToken: string,
  { withOrgs, timeoutMs }: { withOrgs: boolean, timeoutMs: number }
): Promise<UpstreamIdentity> {
  const user = userOf(await getJson(userEndpoint, accessToken, timeoutMs))
  if (user === undefined) {
    throw new UpstreamError('bad_response', 'upstream user endpoint answered without a login and an id, or a sub')
  }
  const { login, id } = user
  if (!withOrgs) return { login, id }
  const orgs = await getJson(`${userEndpoint}/orgs?per_page=${ORGS_PER_PAGE}`, accessToken, timeoutMs)
  const list = Array.isArray(orgs) ? orgs : []
  return {
    login,
    id,
    orgs: list.flatMap((org: unknown) => {
      const name = (org as { login?: unknown } | null)?.login
      return typeof name === 'string' ? [name.toLowerCase()] : []
    })
  }
}

/** The person in a GitHub user (`login`, `id`) or an OIDC userinfo answer (`sub`); undefined in anything else. */
function userOf (answer: unknown): { login: string, id: string } | undefined {
  const user = Object(answer) as Record<string, unknown>
  const { login, id, sub } = user
  if (typeof login === 'string' && login !== '' && (typeof id === 'number' || typeof id === 'string')) {
    return { login, id: String(id) }
  }
  if (typeof sub !== 'string' || sub === '') return undefined
  const name = [user['preferred_username'], user['email']].find((v): v is string => typeof v === 'string' && v !== '')
  return { login: name ?? sub, id: sub }
}

async function getJson (url: string, accessToken: string, timeoutMs: number): Promise<unknown> {
  const reply = await send(url, {
    method: 'GET',
    headers: {
      authorization: `Bearer ${accessToken}`,
      accept: 'application/vnd.github+json',
      // GitHub's REST API refuses requests without a User-Agent.
      'user-agent': 'mcp-oauth-gateway'
    }
  }, 'upstream user endpoint', { timeoutMs })
  if (reply.status !== 200) {
    const { status } = reply
    throw new UpstreamError('bad_response', `upstream user endpoint answered HTTP ${status}`, { status })
  }
  try {
    return JSON.parse(reply.body) as unknown
  } catch {
    throw new UpstreamError('bad_response', 'upstream user endpoint answered with a body that is not JSON')
  }
}

/**
 * Revokes a GitHub token the gateway will not use (its owner is not allowed): GitHub has no RFC 7009 endpoint,
 * but its REST API deletes an OAuth App's token with the app's own credentials, `DELETE /applications/{client_id}/
 * token`, on the API base the user endpoint is on. False when it cannot be asked (no secret, or an endpoint not
 * shaped like GitHub's) or did not answer 204; an UpstreamError when it cannot be reached.
 */
export async function revokeGithubToken (
  userEndpoint: string,
  client: UpstreamClientCredentials,
  accessToken: string,
  timeoutMs: number
): Promise<boolean> {
  if (!userEndpoint.endsWith('/user') || client.clientSecret === undefined) return false
  const apiBase = userEndpoint.slice(0, -'/user'.length)
  const basic = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')
  const reply = await send(`${apiBase}/applications/${encodeURIComponent(client.clientId)}/token`, {
    method: 'DELETE',
    headers: {
      authorization: `Basic ${basic}`,
      accept: 'application/vnd.github+json',
      'content-type': 'application/json',
      'user-agent': 'mcp-oauth-gateway'
    },
    body: JSON.stringify({ access_token: accessToken })
  }, 'upstream token revocation', { timeoutMs })
  return reply.status === 204
}

/**
 * The gateway's way to revoke a token at a GitHub-shaped upstream, with the gateway's own upstream credentials
 * (revokeGithubToken); undefined when the upstream is not asked who signed in (no user endpoint).
 */
export function githubTokenRevoker (
  userEndpoint: string | undefined,
  upstream: { resolve: () => Promise<{ client: UpstreamClientCredentials }> },
  timeoutMs: number
): ((accessToken: string) => Promise<boolean>) | undefined {
  if (userEndpoint === undefined) return undefined
  return async (accessToken) => {
    const { client } = await upstream.resolve()
    return await revokeGithubToken(userEndpoint, client, accessToken, timeoutMs)
  }
}
