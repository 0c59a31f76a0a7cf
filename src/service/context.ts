import type { KeyStore } from '../keystores/types.ts';
import type { MetadataStore } from '../storage/types.ts';

/** What every operation runs against. Transport-agnostic: no HTTP here. */
export interface ServiceContext {
  readonly store: MetadataStore;
  readonly keyStore: KeyStore;
  readonly accountId: string;
  readonly region: string;
  readonly partition: string;
  /** The clock; tests move it to make rotations and deletions fall due. */
  readonly now: () => Date;
}

/** Who is calling, as the transport authenticated them. */
export interface Caller {
  readonly principalArn: string;
  readonly accessKeyId: string;
  readonly sourceIp?: string;
}

export type Operation<Input, Output> = (context: ServiceContext, input: Input, caller: Caller) => Promise<Output>;
