/** GetCallerIdentity on the admin API: the same answer STS's query protocol gives (sessions.ts). */
import type { Caller, ServiceContext } from '../context.ts';
import { getCallerIdentity as callerIdentity } from '../sessions.ts';
import { AdminInput } from './input.ts';

export async function getCallerIdentity(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  AdminInput.of(body);
  return callerIdentity(context, caller);
}
