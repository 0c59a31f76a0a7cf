/**
 * The AWS KMS API model (botocore's service-2.json, Apache-2.0, see model/LICENSE-botocore.txt):
 * the contract for every request and response shape the kms-json transport speaks.
 *
 * Loaded once, synchronously, when this module is first imported: the transport cannot serve a
 * single request without it, so a missing or corrupt model must fail at startup, not per request.
 */
import { readFileSync } from 'node:fs';

/** A reference from a structure member, list, or map to the shape it holds. */
export interface ShapeRef {
  readonly shape: string;
  readonly deprecated?: boolean;
}

interface ShapeCommon {
  /** botocore's marker for values that must never be logged or echoed (plaintext, passwords). */
  readonly sensitive?: boolean;
}

export interface StringShape extends ShapeCommon {
  readonly type: 'string';
  readonly min?: number;
  readonly max?: number;
  /** Java regular-expression syntax, as in the Smithy model. */
  readonly pattern?: string;
  readonly enum?: readonly string[];
}

export interface NumberShape extends ShapeCommon {
  readonly type: 'integer' | 'long';
  readonly min?: number;
  readonly max?: number;
}

export interface BooleanShape extends ShapeCommon {
  readonly type: 'boolean';
}

export interface BlobShape extends ShapeCommon {
  readonly type: 'blob';
  /** Bounds on the decoded byte length. */
  readonly min?: number;
  readonly max?: number;
}

export interface TimestampShape extends ShapeCommon {
  readonly type: 'timestamp';
}

export interface ListShape extends ShapeCommon {
  readonly type: 'list';
  readonly member: ShapeRef;
  readonly min?: number;
  readonly max?: number;
}

export interface MapShape extends ShapeCommon {
  readonly type: 'map';
  readonly key: ShapeRef;
  readonly value: ShapeRef;
  readonly min?: number;
  readonly max?: number;
}

export interface StructureShape extends ShapeCommon {
  readonly type: 'structure';
  readonly members: Readonly<Record<string, ShapeRef>>;
  readonly required?: readonly string[];
  readonly exception?: boolean;
}

export type Shape =
  | StringShape
  | NumberShape
  | BooleanShape
  | BlobShape
  | TimestampShape
  | ListShape
  | MapShape
  | StructureShape;

interface OperationModel {
  readonly name: string;
  readonly input?: ShapeRef;
  readonly output?: ShapeRef;
  readonly errors?: readonly ShapeRef[];
}

interface ServiceModel {
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly operations: Readonly<Record<string, OperationModel>>;
  readonly shapes: Readonly<Record<string, Shape>>;
}

const MODEL_URL = new URL('./model/kms-service-2.json', import.meta.url);

const serviceModel = JSON.parse(readFileSync(MODEL_URL, 'utf8')) as ServiceModel;

const OPERATION_NAMES: readonly string[] = Object.freeze(Object.keys(serviceModel.operations));

export function operationNames(): string[] {
  return [...OPERATION_NAMES];
}

/** The name of the operation's input structure shape; throws for an operation the model lacks. */
export function inputShapeOf(operation: string): string | undefined {
  if (!Object.hasOwn(serviceModel.operations, operation)) {
    throw new Error(`operation ${operation} is not in the KMS model`);
  }
  return serviceModel.operations[operation].input?.shape;
}

/** The shape of that name; throws for a name the model lacks (a bug in the caller, not a request). */
export function shape(name: string): Shape {
  if (!Object.hasOwn(serviceModel.shapes, name)) {
    throw new Error(`shape ${name} is not in the KMS model`);
  }
  return serviceModel.shapes[name];
}
