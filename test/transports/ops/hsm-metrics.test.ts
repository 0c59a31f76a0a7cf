/** strongroom_hsm_member_up (transports/ops/hsm-metrics.ts): its series, and how several processes' values combine. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregatorRegistry, Registry } from 'prom-client';
import { registerHsmMemberGauge, type HsmClusterMembers } from '../../../src/transports/ops/hsm-metrics.ts';

function processRegistry(clusters: HsmClusterMembers[] | (() => Promise<HsmClusterMembers[]>)): Registry {
  const registry = new Registry();
  registerHsmMemberGauge(registry, typeof clusters === 'function' ? clusters : async () => clusters);
  return registry;
}

describe('strongroom_hsm_member_up', () => {
  it('has one series per member, 1 in service and 0 out, and drops members no longer reported', async () => {
    let clusters: HsmClusterMembers[] = [{ clusterId: 'cluster-a', members: [{ name: 'm1', up: true }, { name: 'm2', up: false }] }];
    const registry = processRegistry(async () => clusters);
    let text = await registry.metrics();
    assert.match(text, /^strongroom_hsm_member_up\{cluster_id="cluster-a",member="m1"\} 1$/m);
    assert.match(text, /^strongroom_hsm_member_up\{cluster_id="cluster-a",member="m2"\} 0$/m);
    clusters = [];
    text = await registry.metrics();
    assert.doesNotMatch(text, /member="m1"/);
  });

  it('reports nothing, rather than failing the scrape, when the clusters cannot be read', async () => {
    const text = await processRegistry(() => Promise.reject(new Error('closed'))).metrics();
    assert.match(text, /^# TYPE strongroom_hsm_member_up gauge$/m);
    assert.doesNotMatch(text, /^strongroom_hsm_member_up\{/m);
  });

  it('over several processes, a member is up only where every process connected to it has it in service', async () => {
    const a = processRegistry([{ clusterId: 'c', members: [{ name: 'm1', up: true }, { name: 'm2', up: true }] }]);
    const b = processRegistry([{ clusterId: 'c', members: [{ name: 'm1', up: true }, { name: 'm2', up: false }] }]);
    const text = await AggregatorRegistry.aggregate([await a.getMetricsAsJSON(), await b.getMetricsAsJSON()]).metrics();
    assert.match(text, /^strongroom_hsm_member_up\{cluster_id="c",member="m1"\} 1$/m);
    assert.match(text, /^strongroom_hsm_member_up\{cluster_id="c",member="m2"\} 0$/m);
  });
});
