import { execFile } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { arch, platform, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium, type Browser, type LaunchOptions } from 'playwright-core'

/*
 * The Chromium that the browser tests drive, found on this machine or brought by npm, never downloaded:
 * playwright-core has no browser of its own, and nothing here fetches one.
 */

/** Where a browser may come from, in the order they are tried. */
export const SOURCES = ['path', 'debian', 'installed', 'bundled'] as const
export type Source = typeof SOURCES[number]

/** A Chromium of the user's choice, tried first. */
export const PATH_VARIABLE = 'CHROMIUM_PATH'
/** Restricts the lookup to one source (one of SOURCES), to test that source on a machine that has the others. */
export const ONLY_VARIABLE = 'MCP_GATEWAY_TEST_BROWSER'
export const DEBIAN_CHROMIUM = '/usr/bin/chromium'
/**
 * Installed browsers that playwright-core finds by channel: Google Chrome, then Playwright's own
 * Chromium if someone installed it.
 */
export const CHANNELS = ['chrome', 'chromium'] as const

// As root on the CI machines: no sandbox, and nothing that phones home through the closed network.
// playwright-core adds --headless and a fresh, temporary --user-data-dir itself.
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

const message = (err: unknown): string => err instanceof Error ? err.message : String(err)

/**
 * Whether playwright-core's launch failed because a channel's browser is not installed (one that is there
 * but fails to start is an error).
 */
export function isNotInstalled (err: unknown): boolean {
  return /is not found at|Executable doesn't exist at/.test(message(err))
}

/** What a dynamically linked Chromium says when the machine lacks one of its libraries. */
const MISSING_LIBRARY = /error while loading shared libraries/

/**
 * @sparticuz/chromium's Chromium, unpacked from its npm tarball: the binary, and Amazon Linux's NSS libraries
 * for machines without their own.
 */
export interface Bundled { executablePath: string, libraryPath: string, remove: () => Promise<void> }

/** The machine, as the lookup sees it: the real one in launchTestBrowser, a fake in the lookup's own tests. */
export interface Machine {
  env: Record<string, string | undefined>
  platform: string
  arch: string
  isExecutable: (path: string) => boolean
  launch: (options: LaunchOptions) => Promise<Browser>
  unpackBundled: () => Promise<Bundled>
}

export interface Found {
  browser: Browser
  source: Source
  /** The executable or channel, for the test's log. */
  what: string
  /** Closes the browser and removes what was unpacked for it. */
  close: () => Promise<void>
}

export function howToGetOne (tried: string[]): string {
  return `no Chromium for the browser tests (tried: ${tried.join('; ')}). Set ${PATH_VARIABLE} to a Chrome or ` +
    'Chromium executable, or install one: Debian\'s (apt-get install chromium), Google Chrome, or Playwright\'s ' +
    '(npx playwright install chromium). On Linux x64, `npm ci` brings one in @sparticuz/chromium.'
}

/**
 * Finds a Chromium and launches it: $CHROMIUM_PATH, Debian's /usr/bin/chromium, an installed Chrome or
 * Chromium (by playwright-core channel), then @sparticuz/chromium's (Linux x64 only). Throws, with how
 * to get a browser, when there is none: the browser tests fail without one, they never skip.
 */
export async function findBrowser (machine: Machine): Promise<Found> {
  const only = machine.env[ONLY_VARIABLE] ?? ''
  if (only !== '' && !(SOURCES as readonly string[]).includes(only)) {
    throw new Error(`${ONLY_VARIABLE}=${only}: expected one of ${SOURCES.join(', ')}, or unset for all in that order`)
  }
  const tries = (source: Source): boolean => only === '' || only === source
  const launch = async (options: LaunchOptions) => await machine.launch({ args: CHROMIUM_ARGS, ...options })
  const tried: string[] = []

  const chosen = machine.env[PATH_VARIABLE] ?? ''
  if (tries('path')) {
    // A path the user set is what they want: if it is wrong, say so rather than test another browser.
    if (chosen !== '') {
      if (!machine.isExecutable(chosen)) throw new Error(`${PATH_VARIABLE}=${chosen} is not an executable file`)
      const browser = await launch({ executablePath: chosen })
      return { browser, source: 'path', what: chosen, close: async () => { await browser.close() } }
    }
    tried.push(`${PATH_VARIABLE} is not set`)
  }

  if (tries('debian')) {
    if (machine.isExecutable(DEBIAN_CHROMIUM)) {
      const browser = await launch({ executablePath: DEBIAN_CHROMIUM })
      return { browser, source: 'debian', what: DEBIAN_CHROMIUM, close: async () => { await browser.close() } }
    }
    tried.push(`no ${DEBIAN_CHROMIUM}`)
  }

  if (tries('installed')) {
    for (const channel of CHANNELS) {
      try {
        const browser = await launch({ channel })
        return { browser, source: 'installed', what: `channel ${channel}`, close: async () => { await browser.close() } }
      } catch (err) {
        if (!isNotInstalled(err)) throw err
        tried.push(`no ${channel} channel`)
      }
    }
  }

  if (tries('bundled')) {
    if (machine.platform === 'linux' && machine.arch === 'x64') {
      const bundled = await machine.unpackBundled()
      let what = bundled.executablePath
      try {
        const browser = await launch({ executablePath: bundled.executablePath }).catch(async (err: unknown) => {
          // Built for Amazon Linux, it links NSS dynamically: the machine's own when it has them (the
          // shipped ones need glibc 2.34, the binary 2.25), else the ones the package ships.
          if (!MISSING_LIBRARY.test(message(err))) throw err
          const { LD_LIBRARY_PATH: current } = machine.env
          const env = { ...machine.env, LD_LIBRARY_PATH: current === undefined || current === '' ? bundled.libraryPath : `${bundled.libraryPath}:${current}` }
          what += ', with the NSS libraries it ships'
          return await launch({ executablePath: bundled.executablePath, env })
        })
        return { browser, source: 'bundled', what, close: async () => { await browser.close(); await bundled.remove() } }
      } catch (err) {
        await bundled.remove()
        throw err
      }
    }
    tried.push(`no bundled Chromium for ${machine.platform} ${machine.arch} (@sparticuz/chromium is Linux x64 only)`)
  }

  throw new Error(howToGetOne(tried))
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Unpacks @sparticuz/chromium's brotli files (about 200 MB, 2 to 3 s) into a fresh folder. Its own
 * executablePath() writes to the OS temp folder and reuses any /tmp/chromium it finds there, whatever its
 * version or state; run in a child process whose TMPDIR is a folder of this run's, it writes nowhere
 * else. AWS_EXECUTION_ENV makes it unpack Amazon Linux's NSS libraries too, as it does on Lambda.
 */
async function unpackBundled (): Promise<Bundled> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-chromium-'))
  const remove = async () => { await rm(dir, { recursive: true, force: true }) }
  try {
    const script = "const { default: chromium } = await import('@sparticuz/chromium'); process.stdout.write(await chromium.executablePath())"
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '--eval', script], {
      cwd: REPO_ROOT,
      env: { ...process.env, TMPDIR: dir, AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x' }
    })
    return { executablePath: stdout.trim(), libraryPath: join(dir, 'al2023', 'lib'), remove }
  } catch (err) {
    await remove()
    throw new Error(`could not unpack @sparticuz/chromium (is it installed? \`npm ci\` brings it): ${message(err)}`)
  }
}

function isExecutable (path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** findBrowser on this machine. */
export async function launchTestBrowser (): Promise<Found> {
  return await findBrowser({
    env: process.env,
    platform: platform(),
    arch: arch(),
    isExecutable,
    launch: async (options) => await chromium.launch(options),
    unpackBundled
  })
}
