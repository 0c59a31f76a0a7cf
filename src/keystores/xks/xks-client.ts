import { request as httpsRequest, Agent } from 'node:https';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../../crypto/node-sha256.ts';

/**
 * A client of the XKS Proxy API (aws/aws-kms-xksproxy-api-spec, docs/xks-proxy.md): JSON over
 * HTTPS, SigV4 with service `kms-xks-proxy`. The key store names one endpoint host (AWS's
 * XksProxyUriEndpoint); that host may stand for several addresses (redundant links to one proxy
 * fleet, as DNS gives several A records): each call goes to the address that answered last, and a
 * failed or slow one is skipped for the next, within the call's overall budget of 250 ms (the
 * spec's KMS timeout), so one link down costs no request. Errors the proxy itself answers (a JSON
 * errorName) are not retried elsewhere: every proxy of the fleet would say the same. TLS checks
 * the proxy's certificate against the endpoint's host name, whichever address served.
 */

export const XKS_TIMEOUT_MS = 250;
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface XksAddress {
  host: string;
  port: number;
}

export interface XksClientOptions {
  /** The endpoint's host name: the Host header, TLS server name and certificate identity. */
  hostname: string;
  /** Where that host is reached: one or more addresses, tried in turn. */
  addresses: readonly XksAddress[];
  /** The path prefix, ending in /kms/xks/v1. */
  uriPath: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** PEM CA certificates to trust for the proxy's TLS certificate, beyond Node's defaults. */
  ca?: string | Buffer;
  /** Client certificate and key for mutual TLS, when the proxy asks for one. */
  clientCertificate?: { cert: string | Buffer; key: string | Buffer };
  /** Per-call budget across all endpoints (default 250 ms). */
  timeoutMs?: number;
}

/** What went wrong talking to the proxy, in the spec's terms. */
export class XksProxyError extends Error {
  constructor(
    /** 'unreachable' (network, TLS, timeout), 'invalid-response', or the proxy's own errorName. */
    readonly kind: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'XksProxyError';
  }
}

export interface XksRequestMetadata {
  awsPrincipalArn: string;
  kmsOperation: string;
  kmsRequestId: string;
  kmsKeyArn?: string;
}

export class XksClient {
  private readonly signer: SignatureV4;
  private readonly agent: Agent;
  private readonly endpoints: readonly XksAddress[];
  private preferred = 0;
  private readonly timeoutMs: number;

  constructor(private readonly options: XksClientOptions) {
    this.endpoints = options.addresses;
    if (this.endpoints.length === 0) throw new Error('an XKS client needs at least one address');
    this.signer = new SignatureV4({
      service: 'kms-xks-proxy',
      region: options.region,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      sha256: NodeSha256,
    });
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 64,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.clientCertificate ? options.clientCertificate : {}),
      minVersion: 'TLSv1.2',
    });
    this.timeoutMs = options.timeoutMs ?? XKS_TIMEOUT_MS;
  }

  /**
   * POSTs to `<uriPath>/<operationPath>`, trying the addresses in turn. The request is signed once
   * (the signature covers the host name, not the address). The budget is the spec's 250 ms: a
   * slow address gets its share of what is left, so a hung link cannot eat it all; an address
   * that fails fast (refused, reset) still leaves each next one at least an equal share, so one
   * link down costs no request. The whole call is bounded by twice the budget.
   */
  async call(operationPath: string, body: object): Promise<Record<string, unknown>> {
    const payload = JSON.stringify(body);
    const path = `${this.options.uriPath}/${operationPath}`;
    const signed = await this.signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'https:',
        hostname: this.options.hostname,
        path,
        headers: { host: this.options.hostname, 'content-type': 'application/json' },
        body: payload,
      }),
    );
    const headers = { ...signed.headers, 'content-length': String(Buffer.byteLength(payload)) };
    const count = this.endpoints.length;
    const started = performance.now();
    let lastError: XksProxyError | undefined;
    const first = this.preferred; // other calls may move `preferred` meanwhile
    for (let attempt = 0; attempt < count; attempt++) {
      const index = (first + attempt) % count;
      const remaining = this.timeoutMs - (performance.now() - started);
      const left = count - attempt;
      const share = left > 1 ? Math.max(remaining / left, Math.min(remaining, 60)) : remaining;
      const budget = Math.max(share, this.timeoutMs / count);
      try {
        const result = await this.post(this.endpoints[index], path, headers, payload, budget);
        this.preferred = index;
        return result;
      } catch (error) {
        if (!(error instanceof XksProxyError) || error.kind !== 'unreachable') throw error;
        lastError = error;
        // The next call starts with the next address rather than waiting on this one again.
        if (this.preferred === index) this.preferred = (index + 1) % this.endpoints.length;
      }
    }
    throw lastError ?? new XksProxyError('unreachable', 'the XKS proxy did not answer within 250 ms');
  }

  private post(
    endpoint: XksAddress,
    path: string,
    headers: Record<string, string>,
    payload: string,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          agent: this.agent,
          method: 'POST',
          host: endpoint.host,
          port: endpoint.port,
          path,
          headers,
          servername: this.options.hostname,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy(new XksProxyError('invalid-response', 'the XKS proxy response is too large'));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            clearTimeout(timer);
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              reject(new XksProxyError('invalid-response', `the XKS proxy answered HTTP ${res.statusCode} without JSON`, res.statusCode));
              return;
            }
            if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
              reject(new XksProxyError('invalid-response', 'the XKS proxy answered with something other than a JSON object', res.statusCode));
              return;
            }
            const object = parsed as Record<string, unknown>;
            if (res.statusCode !== 200) {
              const name = typeof object.errorName === 'string' ? object.errorName : 'invalid-response';
              reject(new XksProxyError(name, `the XKS proxy answered ${name} (HTTP ${res.statusCode})`, res.statusCode));
              return;
            }
            resolve(object);
          });
          res.on('error', (error) => fail(error));
        },
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error instanceof XksProxyError ? error : new XksProxyError('unreachable', `the XKS proxy could not be reached: ${error.message}`));
      };
      const timer = setTimeout(() => req.destroy(new XksProxyError('unreachable', 'the XKS proxy did not answer in time')), timeoutMs);
      req.on('error', fail);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
