import { UpstreamError } from './upstream-as/errors.js'
import { send } from './upstream-as/http.js'
import type { UpstreamClientCredentials } from './upstream-as/registration.js'

/*
 * Who the person is upstream, asked right after the upstream code exchange with the token just obtained: for
 * GitHub, `GET /user` (and `GET /user/orgs` when organisations are restricted) on the REST API. What the
 * operator's allow-lists are checked against, and what the grant keeps (for the account page, tool policy and
 * audit to come).
 */

export interface UpstreamIdentity {
  /** The upstream's user name (GitHub's `login`), as the upstream spells it. */
  login: string
  /** The upstream's stable user id: a login can be renamed, an id cannot. */
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

/** GET `userEndpoint` (and `userEndpoint`/orgs with `withOrgs`) with the upstream token: an UpstreamError otherwise. */
export async function fetchGithubIdentity (
  userEndpoint: string,
  accessToken: string,
  { withOrgs, timeoutMs }: { withOrgs: boolean, timeoutMs: number }
): Promise<UpstreamIdentity> {
  const user = Object(await getJson(userEndpoint, accessToken, timeoutMs)) as { login?: unknown, id?: unknown }
  const { login, id } = user
  if (typeof login !== 'string' || login === '' || (typeof id !== 'number' && typeof id !== 'string')) {
    throw new UpstreamError('bad_response', 'upstream user endpoint answered without a login and an id')
  }
  if (!withOrgs) return { login, id: String(id) }
  const orgs = await getJson(`${userEndpoint}/orgs?per_page=${ORGS_PER_PAGE}`, accessToken, timeoutMs)
  const list = Array.isArray(orgs) ? orgs : []
  return {
    login,
    id: String(id),
    orgs: list.flatMap((org: unknown) => {
      const name = (org as { login?: unknown } | null)?.login
      return typeof name === 'string' ? [name.toLowerCase()] : []
    })
  }
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
