/** Calls to the admin API (StrongroomAdmin.<Operation>) over loopback, SigV4-signed like any AWS client. */
import { HttpRequest } from '@smithy/protocol-http';
import { kmsSigner } from './sigv4-signing.ts';

export interface AdminEndpoint {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** The raw answer: status and parsed JSON body. */
export async function adminRequest(target: AdminEndpoint, operation: string, input: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(target.endpoint);
  const body = JSON.stringify(input);
  const request = new HttpRequest({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: {
      host: url.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `StrongroomAdmin.${operation}`,
    },
    body,
  });
  const signed = await kmsSigner({ region: target.region, credentials: target.credentials }).sign(request);
  const response = await fetch(target.endpoint, { method: 'POST', headers: signed.headers as Record<string, string>, body });
  return { status: response.status, body: JSON.parse(await response.text()) as Record<string, unknown> };
}

/** A call that must succeed; its JSON answer. */
export async function adminCall<T = Record<string, unknown>>(target: AdminEndpoint, operation: string, input: object): Promise<T> {
  const { status, body } = await adminRequest(target, operation, input);
  if (status !== 200) throw new Error(`${operation}: ${status} ${JSON.stringify(body)}`);
  return body as T;
}
