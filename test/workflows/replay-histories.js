#!/usr/bin/env node
/**
 * Replays Temporal history JSON files against a workflow bundle, in a plain node process:
 *   node test/workflows/replay-histories.js <bundle.js> <history.json>...
 * Exit 0 when all replay, 1 with the error otherwise. Used by replay.test.ts.
 *
 * Why a separate process: the installed @temporalio/common and @temporalio/proto each carry their
 * own copy of protobufjs 8 (npm could not hoist it over grpc's protobufjs 7), so the SDK's
 * historyFromJSON fails with "type must be a Type" (an instanceof across the two copies). Here we
 * point common's protojson module at proto's copy through require.cache before loading the SDK,
 * which jest's module registry does not allow.
 */
const fs = require('node:fs');
const path = require('node:path');

const from = (pkg) => path.dirname(require.resolve(`${pkg}/package.json`));
const commonProtojson = require.resolve('protobufjs/ext/protojson', { paths: [from('@temporalio/common')] });
const protoProtojson = require.resolve('protobufjs/ext/protojson', { paths: [from('@temporalio/proto')] });
if (commonProtojson !== protoProtojson) {
  require(protoProtojson);
  require.cache[commonProtojson] = require.cache[protoProtojson];
}

const { Worker } = require('@temporalio/worker');
const { Runtime, DefaultLogger } = require('@temporalio/worker');
const { historyFromJSON } = require('@temporalio/common/lib/proto-utils');

(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const [bundleFile, ...files] = process.argv.slice(2);
  const code = fs.readFileSync(bundleFile, 'utf8');
  for (const f of files) {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(f, 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: { code } }, history, path.basename(f));
    process.stdout.write(`replayed ${path.basename(f)}: ${history.events.length} events\n`);
  }
})().catch((e) => {
  process.stderr.write(`replay failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
