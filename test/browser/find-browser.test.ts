import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, LaunchOptions } from 'playwright-core'
import t from 'tap'
import type { Machine } from '../helpers/browser.js'

// playwright-core reads where its own browsers live when it loads: an empty folder makes its
// 'chromium' channel certainly not installed, for the one check against the real library below.
const emptyBrowsers = await mkdtemp(join(tmpdir(), 'no-playwright-browsers-'))
process.env.PLAYWRIGHT_BROWSERS_PATH = emptyBrowsers
t.teardown(() => rm(emptyBrowsers, { recursive: true, force: true }))
const { chromium } = await import('playwright-core')
const { CHROMIUM_ARGS, DEBIAN_CHROMIUM, findBrowser, isNotInstalled } = await import('../helpers/browser.js')

/*
 * The order in which test/helpers/browser.ts looks for a Chromium, on a fake machine that records what
 * it was asked: which files were checked, what was launched with which options, whether the bundled
 * Chromium was unpacked, launched and removed.
 */

interface Log {
  checked: string[]
  launched: LaunchOptions[]
  closed: number
  unpacked: number
  removed: number
}

interface Fake {
  env?: Record<string, string | undefined>
  platform?: string
  arch?: string
  executables?: string[]
  /** Channels playwright-core finds. */
  channels?: string[]
  /** Makes the launch of these executables or channels fail (after the files are found). */
  fails?: Record<string, string>
}

const NOT_FOUND = (channel: string) => `browserType.launch: Chromium distribution '${channel}' is not found at /opt/google/chrome/chrome`
const BUNDLED = '/tmp/unpacked/chromium'
const BUNDLED_LIBS = '/tmp/unpacked/al2023/lib'

function fakeMachine (fake: Fake): { machine: Machine, log: Log } {
  const log: Log = { checked: [], launched: [], closed: 0, unpacked: 0, removed: 0 }
  const browser = { close: async () => { log.closed++ }, version: () => '1.0' } as unknown as Browser
  const machine: Machine = {
    env: fake.env ?? {},
    platform: fake.platform ?? 'linux',
    arch: fake.arch ?? 'x64',
    isExecutable: (path) => {
      log.checked.push(path)
      return (fake.executables ?? []).includes(path)
    },
    launch: async (options) => {
      log.launched.push(options)
      const what = options.channel ?? options.executablePath ?? ''
      const failure = fake.fails?.[what]
      if (failure !== undefined) throw new Error(failure)
      if (options.channel !== undefined && !(fake.channels ?? []).includes(options.channel)) {
        throw new Error(NOT_FOUND(options.channel))
      }
      return browser
    },
    unpackBundled: async () => {
      log.unpacked++
      return { executablePath: BUNDLED, libraryPath: BUNDLED_LIBS, remove: async () => { log.removed++ } }
    }
  }
  return { machine, log }
}

const what = (log: Log) => log.launched.map((o) => o.channel ?? o.executablePath)

t.test('a bare Linux x64 machine: each source in turn, then the bundled Chromium', async (t) => {
  const { machine, log } = fakeMachine({})
  const found = await findBrowser(machine)
  t.equal(found.source, 'bundled')
  t.equal(found.what, BUNDLED)
  t.same(log.checked, [DEBIAN_CHROMIUM], 'Debian\'s path was looked at')
  t.same(what(log), ['chrome', 'chromium', BUNDLED], 'Chrome, then Playwright\'s Chromium, then the bundled one')
  t.ok(log.launched.every((o) => o.args === CHROMIUM_ARGS), 'every launch has the CI machines\' arguments')
  t.equal(log.launched.at(-1)?.env, undefined, 'the machine\'s own libraries first')
  t.equal(log.removed, 0)
  await found.close()
  t.same([log.closed, log.removed], [1, 1], 'closing it removes what was unpacked')
})

t.test('CHROMIUM_PATH comes first, and nothing else is looked at', async (t) => {
  const { machine, log } = fakeMachine({ env: { CHROMIUM_PATH: '/opt/mine/chrome' }, executables: ['/opt/mine/chrome', DEBIAN_CHROMIUM], channels: ['chrome'] })
  const found = await findBrowser(machine)
  t.same([found.source, found.what], ['path', '/opt/mine/chrome'])
  t.same(log.checked, ['/opt/mine/chrome'])
  t.same(what(log), ['/opt/mine/chrome'])
  t.equal(log.unpacked, 0)
})

t.test('a CHROMIUM_PATH that is not there fails, rather than testing another browser', async (t) => {
  const { machine, log } = fakeMachine({ env: { CHROMIUM_PATH: '/opt/typo/chrome' }, executables: [DEBIAN_CHROMIUM] })
  await t.rejects(findBrowser(machine), /CHROMIUM_PATH=\/opt\/typo\/chrome is not an executable file/)
  t.same(log.launched, [])
})

t.test('an empty CHROMIUM_PATH is unset: Debian\'s Chromium is next', async (t) => {
  const { machine, log } = fakeMachine({ env: { CHROMIUM_PATH: '' }, executables: [DEBIAN_CHROMIUM], channels: ['chrome'] })
  const found = await findBrowser(machine)
  t.same([found.source, found.what], ['debian', DEBIAN_CHROMIUM])
  t.same(what(log), [DEBIAN_CHROMIUM], 'no channel tried')
  t.equal(log.unpacked, 0)
})

t.test('a browser that is there but does not start is an error, not a reason to try the next', async (t) => {
  const debian = fakeMachine({ executables: [DEBIAN_CHROMIUM], fails: { [DEBIAN_CHROMIUM]: 'crashed at start' } })
  await t.rejects(findBrowser(debian.machine), /crashed at start/)
  t.same(what(debian.log), [DEBIAN_CHROMIUM])

  const chrome = fakeMachine({ channels: ['chrome'], fails: { chrome: 'Target page, context or browser has been closed' } })
  await t.rejects(findBrowser(chrome.machine), /has been closed/)
  t.same(what(chrome.log), ['chrome'])
  t.equal(chrome.log.unpacked, 0)
})

t.test('an installed Chromium is found by channel', async (t) => {
  const { machine, log } = fakeMachine({ channels: ['chromium'] })
  const found = await findBrowser(machine)
  t.same([found.source, found.what], ['installed', 'channel chromium'])
  t.same(what(log), ['chrome', 'chromium'])
  t.equal(log.unpacked, 0)
})

t.test('MCP_GATEWAY_TEST_BROWSER=bundled skips the machine\'s browsers', async (t) => {
  const { machine, log } = fakeMachine({
    env: { MCP_GATEWAY_TEST_BROWSER: 'bundled', CHROMIUM_PATH: '/opt/mine/chrome' },
    executables: ['/opt/mine/chrome', DEBIAN_CHROMIUM],
    channels: ['chrome', 'chromium']
  })
  const found = await findBrowser(machine)
  t.equal(found.source, 'bundled')
  t.same(log.checked, [], 'no file looked at')
  t.same(what(log), [BUNDLED])
})

t.test('MCP_GATEWAY_TEST_BROWSER names one source; that one missing fails', async (t) => {
  const { machine, log } = fakeMachine({ env: { MCP_GATEWAY_TEST_BROWSER: 'debian' }, channels: ['chrome'] })
  await t.rejects(findBrowser(machine), { message: /^no Chromium for the browser tests \(tried: no \/usr\/bin\/chromium\)/ })
  t.same(log.launched, [])
  t.equal(log.unpacked, 0)

  await t.rejects(findBrowser(fakeMachine({ env: { MCP_GATEWAY_TEST_BROWSER: 'firefox' } }).machine),
    /MCP_GATEWAY_TEST_BROWSER=firefox: expected one of path, debian, installed, bundled/)
})

t.test('no browser at all, off Linux x64: fails, saying how to get one', async (t) => {
  const { machine, log } = fakeMachine({ platform: 'darwin', arch: 'arm64' })
  const err = await findBrowser(machine).then(() => undefined, (e: unknown) => e as Error)
  t.ok(err instanceof Error)
  t.match(err?.message, 'tried: CHROMIUM_PATH is not set; no /usr/bin/chromium; no chrome channel; no chromium channel; no bundled Chromium for darwin arm64')
  t.match(err?.message, 'Set CHROMIUM_PATH to a Chrome or Chromium executable')
  t.match(err?.message, 'apt-get install chromium')
  t.match(err?.message, 'npx playwright install chromium')
  t.equal(log.unpacked, 0, 'the Linux build is not unpacked')
})

t.test('the bundled Chromium gets the libraries it ships only when the machine lacks its own', async (t) => {
  const missing = `browserType.launch: Failed to launch: ${BUNDLED}: error while loading shared libraries: libnss3.so: cannot open shared object file`
  let first = true
  const { machine, log } = fakeMachine({ env: { MCP_GATEWAY_TEST_BROWSER: 'bundled', LD_LIBRARY_PATH: '/usr/local/lib' } })
  const launch = machine.launch
  machine.launch = async (options) => {
    if (first) {
      first = false
      log.launched.push(options)
      throw new Error(missing)
    }
    return await launch(options)
  }
  const found = await findBrowser(machine)
  t.same([found.source, found.what], ['bundled', `${BUNDLED}, with the NSS libraries it ships`])
  t.same(what(log), [BUNDLED, BUNDLED])
  t.equal(log.launched[0]?.env, undefined)
  t.match(log.launched[1]?.env, { LD_LIBRARY_PATH: `${BUNDLED_LIBS}:/usr/local/lib`, MCP_GATEWAY_TEST_BROWSER: 'bundled' }, 'its libraries first, the environment kept')
})

t.test('a bundled Chromium that does not start is removed, and the error told', async (t) => {
  const { machine, log } = fakeMachine({ env: { MCP_GATEWAY_TEST_BROWSER: 'bundled' }, fails: { [BUNDLED]: 'Failed to launch: spawn EACCES' } })
  await t.rejects(findBrowser(machine), /spawn EACCES/)
  t.same([log.unpacked, log.removed], [1, 1])
})

t.test('playwright-core\'s own words for a channel that is not installed are recognised', async (t) => {
  const err = await chromium.launch({ channel: 'chromium' }).then(async (b) => { await b.close() }, (e: unknown) => e)
  t.ok(err instanceof Error, 'no Chromium in an empty PLAYWRIGHT_BROWSERS_PATH')
  t.ok(isNotInstalled(err), String(err).split('\n')[0] ?? '')
  t.notOk(isNotInstalled(new Error('browserType.launch: Failed to launch: Error: spawn /opt/x EACCES')))
})
