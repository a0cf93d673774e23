/** One request the MCP SDK made through a recording fetch, and the answer it got. */
export interface Exchange {
  method: string
  url: URL
  headers: Headers
  body: string
  status: number
  /** The answer's body; '' unless bodies are read (an event stream's never ends). */
  responseBody: string
}

export type FetchFn = (url: string | URL, init?: RequestInit) => Promise<Response>

/** The SDK's fetch, recorded: every request it makes and, with `readBodies`, every answer it reads. */
export function recordingFetch ({ readBodies }: { readBodies: boolean }): { fetchFn: FetchFn, log: Exchange[] } {
  const log: Exchange[] = []
  const fetchFn: FetchFn = async (url, init) => {
    const res = await fetch(url, init)
    log.push({
      method: init?.method ?? 'GET',
      url: new URL(url),
      headers: new Headers(init?.headers),
      body: init?.body === undefined || init.body === null ? '' : String(init.body),
      status: res.status,
      responseBody: readBodies ? await res.clone().text() : ''
    })
    return res
  }
  return { fetchFn, log }
}
