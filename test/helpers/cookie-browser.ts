import { request } from 'undici'
import { hiddenField, visitUpstream } from './gateway.js'

/** A browser over real HTTP: follows nothing by itself, keeps the cookies the gateway sets. */
export class CookieBrowser {
  readonly cookies = new Map<string, string>()

  async get (url: string): Promise<{ status: number, location: string | undefined, body: string }> {
    return await this.#send(url, { method: 'GET' })
  }

  async post (
    url: string,
    form: Record<string, string>
  ): Promise<{ status: number, location: string | undefined, body: string }> {
    return await this.#send(url, { method: 'POST', contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(form).toString() })
  }

  async #send (url: string, p: { method: 'GET' | 'POST', contentType?: string, body?: string }): Promise<{ status: number, location: string | undefined, body: string }> {
    const headers: Record<string, string> = {}
    if (this.cookies.size > 0) headers['cookie'] = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    if (p.contentType !== undefined) headers['content-type'] = p.contentType
    const res = await request(url, { method: p.method, headers, body: p.body ?? null })
    const setCookie = res.headers['set-cookie']
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      if (/;\s*max-age=0\b/i.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, pair.slice(eq + 1).trim())
    }
    const location = res.headers.location
    return { status: res.statusCode, location: typeof location === 'string' ? new URL(location, url).href : undefined, body: await res.body.text() }
  }
}

/**
 * A person in a browser from an authorization URL to the client's redirect: screen 1 (login), screen 2
 * (consent), then the fake GitHub, which sends the browser straight back. Returns the client's redirect.
 */
export async function signInThroughBothScreens (origin: string, authorizationUrl: URL): Promise<URL> {
  const browser = new CookieBrowser()
  const authorize = await browser.get(authorizationUrl.href)
  if (authorize.status !== 302 || authorize.location === undefined) throw new Error(`authorize: ${authorize.status} ${authorize.body}`)
  const loginPage = await browser.get(authorize.location)
  const login = await browser.post(`${origin}/login`, loginForm(loginPage.body))
  if (login.status !== 303 || login.location === undefined) throw new Error(`login: ${login.status} ${login.body}`)
  const consentPage = await browser.get(login.location)
  const consent = await browser.post(`${origin}/consent`, {
    flow: hiddenField(consentPage.body, 'flow'),
    csrf: hiddenField(consentPage.body, 'csrf'),
    decision: 'approve'
  })
  if (consent.status !== 303 || consent.location === undefined) throw new Error(`consent: ${consent.status} ${consent.body}`)
  const done = await browser.get(await visitUpstream(consent.location))
  if (done.status !== 302 || done.location === undefined) throw new Error(`callback: ${done.status} ${done.body}`)
  return new URL(done.location)
}

/** The login form of a login page, filled in with the default account's name and password. */
export function loginForm (page: string): Record<string, string> {
  return {
    flow: hiddenField(page, 'flow'),
    csrf: hiddenField(page, 'csrf'),
    username: 'gateway_user',
    password: 'gateway_pass'
  }
}
