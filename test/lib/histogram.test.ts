import { Histogram, Registry } from 'prom-client'
import t from 'tap'
import { LabelledHistogram } from '../../lib/histogram.js'

/*
 * lib/histogram.ts writes what prom-client writes for the same observations: checked line for line
 * against prom-client itself, which the rest of /metrics comes from.
 */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

async function both (observations: Array<[string, number]>, help = 'Time to the upstream\'s headers, seconds'): Promise<{ ours: string, theirs: string }> {
  const registry = new Registry()
  const theirs = new Histogram({ name: 'mcp_proxy_duration_seconds', help, labelNames: ['method'], buckets: BUCKETS, registers: [registry] })
  const ours = new LabelledHistogram({ name: 'mcp_proxy_duration_seconds', help, labelName: 'method', buckets: BUCKETS })
  for (const [method, value] of observations) {
    theirs.observe({ method }, value)
    ours.observe(method, value)
  }
  return { ours: ours.exposition(), theirs: await registry.metrics() }
}

t.test('the same text as prom-client: every bucket edge, above the last bound, several label values', async (t) => {
  const observations: Array<[string, number]> = []
  // Exactly on a bound counts in that bucket (le is "less than or equal").
  for (const bound of BUCKETS) observations.push(['POST', bound])
  observations.push(['POST', 0], ['POST', 0.0051], ['POST', 301], ['GET', 1e6], ['DELETE', 0.02])
  let seed = 7
  for (let i = 0; i < 500; i++) {
    seed = (seed * 48271) % 2147483647
    observations.push([['POST', 'GET', 'DELETE'][i % 3] as string, (seed / 2147483647) * 400])
  }
  const { ours, theirs } = await both(observations)
  t.equal(ours, theirs)
})

t.test('nothing observed: only HELP and TYPE, as prom-client', async (t) => {
  const { ours, theirs } = await both([])
  t.equal(ours, theirs)
})

t.test('help text and label values are escaped as the exposition format requires', async (t) => {
  const { ours, theirs } = await both([['PO"ST\\x\ny', 0.2]], 'a \\ b\nc')
  t.equal(ours, theirs)
  t.match(ours, /method="PO\\"ST\\\\x\\ny"/)
})

t.test('buckets given out of order are sorted', async (t) => {
  const histogram = new LabelledHistogram({ name: 'h', help: 'h', labelName: 'l', buckets: [1, 0.1] })
  histogram.observe('a', 0.5)
  t.match(histogram.exposition(), /h_bucket\{le="0.1",l="a"\} 0\nh_bucket\{le="1",l="a"\} 1\n/)
})
