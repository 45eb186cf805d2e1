// The HTTP cache conformance suite (http-tests/cache-tests) driven through its own modules, for
// `cadenza bench conformance`. Nothing here judges a result: the suite's code does.
//
//   node cache_tests.mjs origin SUITE          its test origin, bound to 127.0.0.1 (port from
//                                              npm_config_port; 0 picks a free one)
//   node cache_tests.mjs client SUITE BASE ID...  run the named tests through the cache at BASE,
//                                              print their results as the suite's cli.mjs does
//   node cache_tests.mjs score SUITE RESULTS   score a results file with determineTestResult:
//                                              {"test id": {"category", "kind", "group"}}
import http from 'node:http'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [command, suite, ...rest] = process.argv.slice(2)
const load = file => import(pathToFileURL(path.join(suite, file)).href)

if (command === 'origin') {
  // The suite's server listens on every interface; a benchmark's origin stays on loopback.
  const listen = http.Server.prototype.listen
  http.Server.prototype.listen = function (port, ...args) {
    return listen.call(this, port, '127.0.0.1', ...args)
  }
  await load('test-engine/server/server.mjs')
} else if (command === 'client') {
  // The same calls as the suite's cli.mjs, which can only run all tests or one verbosely.
  const [base, ...ids] = rest
  const { runTests, getResults } = await load('test-engine/client/runner.mjs')
  const { default: testSuites } = await load('tests/index.mjs')
  const wanted = new Set(ids)
  const selected = testSuites.map(s => ({ ...s, tests: s.tests.filter(t => wanted.has(t.id)) }))
  await runTests(selected, false, base)
  console.log(JSON.stringify(getResults(), null, 2))
} else if (command === 'score') {
  const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')
  const { default: testSuites } = await load('tests/index.mjs')
  const results = JSON.parse(readFileSync(rest[0], 'utf8'))
  const names = new Map(Object.entries(resultTypes).map(([name, type]) => [type, name]))
  const scores = {}
  for (const group of testSuites) {
    for (const test of group.tests) {
      const category = names.get(determineTestResult(testSuites, test.id, results))
      scores[test.id] = { category, kind: test.kind ?? 'required', group: group.id }
    }
  }
  console.log(JSON.stringify(scores))
} else {
  console.error(`usage: node cache_tests.mjs origin|client|score SUITE ...; not ${command}`)
  process.exit(2)
}
