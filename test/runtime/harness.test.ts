/**
 * The jest Temporal harness itself: one real dev server, the project's search attributes
 * registered, a worker on a unique queue running a bundled workflow with a (mocked) activity.
 */
import * as path from 'node:path';
import { projectSearchAttributes } from '../../worker/temporal-server';
import { closeTestClients, connectTestClient, testNamespace, uniqueId, withTestWorker } from '../support/temporal-server';

afterAll(closeTestClients);

test('a workflow round-trips through the real dev server with a mocked activity', async () => {
  const calls: string[] = [];
  const activities = {
    async shout(s: string) {
      calls.push(s); // mocked activity: records its input
      return s.toUpperCase();
    },
  };
  const stageAttr = projectSearchAttributes().find((a) => /keyword/i.test(a.type))?.name;
  const result = await withTestWorker({ activities, workflowsPath: path.join(__dirname, 'fixtures', 'echo-workflow.ts') }, async ({ client, taskQueue }) => {
    const id = uniqueId('echo');
    const out = await client.workflow.execute('echoWorkflow', { taskQueue, workflowId: id, args: ['hello', stageAttr] });
    const desc = await client.workflow.getHandle(id).describe();
    expect(desc.status.name).toBe('COMPLETED');
    if (stageAttr) expect(desc.searchAttributes[stageAttr]).toEqual(['echo']);
    return out;
  });
  expect(result).toBe('HELLO');
  expect(calls).toEqual(['hello']);
});

test('the project search attributes are registered on the test server', async () => {
  const client = await connectTestClient();
  const res = await client.connection.operatorService.listSearchAttributes({ namespace: testNamespace });
  const registered = Object.keys(res.customAttributes ?? {});
  for (const sa of projectSearchAttributes()) expect(registered).toContain(sa.name);
  // the server answers for the namespace the tests use
  const ns = await client.connection.workflowService.describeNamespace({ namespace: testNamespace });
  expect(ns.namespaceInfo?.name).toBe(testNamespace);
});
