import type { FlowRecord } from '../../lib/flows.js'

/**
 * What the authorize chain throws instead of answering from a helper: the scope's error handler renders
 * or redirects, so no caller has to remember to stop after a helper has already sent the answer.
 */

/** An error page: its status and its text, escaped when the page is rendered. */
export class PageError extends Error {
  readonly status: number
  readonly title: string

  constructor (status: number, title: string, message: string) {
    super(message)
    this.name = 'PageError'
    this.status = status
    this.title = title
  }
}

/**
 * Where the client's answer goes, and what it must echo. Only a redirect URI matched against the client's
 * registration belongs here (the one of a flow was matched before the flow was stored): before that check
 * an error is a page, never a redirect (RFC 6749 §4.1.2.1).
 */
export type ClientReturn = Pick<FlowRecord, 'redirectUri' | 'state'>

/**
 * An error response to the client (RFC 6749 §4.1.2.1), sent by redirecting the browser to its validated redirect URI.
 */
export class ClientRedirectError extends Error {
  readonly back: ClientReturn
  /** The RFC 6749 §4.1.2.1 error code, e.g. invalid_request or access_denied. */
  readonly error: string
  readonly description: string
  /** 303 after a form post, so the browser follows with a GET. */
  readonly redirectStatus: 302 | 303

  constructor (back: ClientReturn, error: string, description: string, redirectStatus: 302 | 303 = 302) {
    super(`${error}: ${description}`)
    this.name = 'ClientRedirectError'
    this.back = back
    this.error = error
    this.description = description
    this.redirectStatus = redirectStatus
  }
}
