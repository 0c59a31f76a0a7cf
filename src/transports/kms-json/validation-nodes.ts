/** The compiled form of the KMS model's shapes that validation.ts walks for each request. */

export interface StringNode {
  readonly kind: 'string';
  readonly echo: boolean;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly pattern: RegExp | undefined;
  /** The pattern as the model spells it: that is what AWS prints. */
  readonly patternSource: string | undefined;
  readonly enumValues: ReadonlySet<string> | undefined;
  readonly enumDisplay: string | undefined;
}

export interface NumberNode {
  readonly kind: 'number';
  readonly echo: boolean;
  readonly typeName: 'integer' | 'long';
  readonly lowest: number;
  readonly highest: number;
  readonly min: number | undefined;
  readonly max: number | undefined;
}

export interface BlobNode {
  readonly kind: 'blob';
  readonly echo: boolean;
  readonly min: number | undefined;
  readonly max: number | undefined;
}

export interface BooleanNode {
  readonly kind: 'boolean';
}

export interface TimestampNode {
  readonly kind: 'timestamp';
}

export interface ListNode {
  readonly kind: 'list';
  /** Only a list of echoable scalars is printed, as `[a, b]`. */
  echo: boolean;
  readonly min: number | undefined;
  readonly max: number | undefined;
  member: Node;
}

export interface MapNode {
  readonly kind: 'map';
  readonly echo: boolean;
  readonly min: number | undefined;
  readonly max: number | undefined;
  key: Node;
  value: Node;
}

export interface MemberNode {
  /** PascalCase, as on the wire and in the parsed input. */
  readonly wireName: string;
  /** camelCase, as AWS names the member in validation messages. */
  readonly pathName: string;
  readonly required: boolean;
  readonly node: Node;
}

export interface StructureNode {
  readonly kind: 'structure';
  readonly echo: false;
  readonly members: MemberNode[];
}

export type Node =
  | StringNode
  | NumberNode
  | BlobNode
  | BooleanNode
  | TimestampNode
  | ListNode
  | MapNode
  | StructureNode;
