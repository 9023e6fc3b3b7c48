// Types of open-do's `cloudflare:workers` (the package @open-do/workers): the Durable Object
// API of Cloudflare, as far as open-do provides it (docs/javascript.md).

export interface DurableObjectId {
  toString(): string;
  equals(other: DurableObjectId): boolean;
  readonly name?: string;
}

export interface DurableObjectListOptions {
  start?: string;
  startAfter?: string;
  end?: string;
  prefix?: string;
  reverse?: boolean;
  limit?: number;
}

export interface SqlStorageCursor<T = Record<string, SqlStorageValue>> extends Iterable<T> {
  next(): { done?: false; value: T } | { done: true; value?: never };
  toArray(): T[];
  one(): T;
  raw<U extends SqlStorageValue[]>(): IterableIterator<U> & { toArray(): U[] };
  readonly columnNames: string[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
}

export type SqlStorageValue = ArrayBuffer | string | number | bigint | null;

export interface SqlStatement {
  bind(...bindings: unknown[]): SqlStatement;
  all<T = Record<string, SqlStorageValue>>(): { success: true; results: T[]; meta: SqlMeta };
  first<T = Record<string, SqlStorageValue>>(): T | null;
  first<T = SqlStorageValue>(column: string): T | null;
  run<T = Record<string, SqlStorageValue>>(): { success: true; results: T[]; meta: SqlMeta };
  raw<T = SqlStorageValue[]>(options?: { columnNames?: boolean }): T[];
}

export interface SqlMeta {
  rows_read: number;
  rows_written: number;
  changes: number;
}

export interface SqlStorage {
  exec<T = Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): SqlStorageCursor<T>;
  prepare(query: string): SqlStatement;
  readonly databaseSize: number;
}

export interface DurableObjectTransaction {
  get<T = unknown>(key: string): Promise<T | undefined>;
  get<T = unknown>(keys: string[]): Promise<Map<string, T>>;
  put<T>(key: string, value: T): Promise<void>;
  put<T>(entries: Record<string, T>): Promise<void>;
  delete(key: string): Promise<boolean>;
  delete(keys: string[]): Promise<number>;
  list<T = unknown>(options?: DurableObjectListOptions): Promise<Map<string, T>>;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number | Date): Promise<void>;
  deleteAlarm(): Promise<void>;
  rollback(): void;
}

/** `ctx.storage.kv`: the synchronous KV API, one key at a time. */
export interface SyncKvStorage {
  get<T = unknown>(key: string): T | undefined;
  put<T>(key: string, value: T): void;
  delete(key: string): boolean;
  list<T = unknown>(options?: DurableObjectListOptions): Iterable<[string, T]>;
}

export interface DurableObjectStorage extends Omit<DurableObjectTransaction, "rollback"> {
  readonly kv: SyncKvStorage;
  deleteAll(): Promise<void>;
  transactionSync<T>(closure: () => T): T;
  transaction<T>(closure: (txn: DurableObjectTransaction) => Promise<T>): Promise<T>;
  sync(): Promise<void>;
  readonly sql: SqlStorage;
}

export declare class WebSocket {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly readyState: number;
  send(message: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  serializeAttachment(value: unknown): void;
  deserializeAttachment(): any;
  accept(): void;
}

export declare class WebSocketPair {
  0: WebSocket;
  1: WebSocket;
}

export declare class WebSocketRequestResponsePair {
  constructor(request: string, response: string);
  readonly request: string;
  readonly response: string;
}

export interface DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  blockConcurrencyWhile<T>(callback: () => Promise<T> | T): Promise<T>;
  waitUntil(promise: Promise<unknown>): void;
  acceptWebSocket(ws: WebSocket, tags?: string[]): void;
  getWebSockets(tag?: string): WebSocket[];
  getTags(ws: WebSocket): string[];
  setWebSocketAutoResponse(pair?: WebSocketRequestResponsePair | null): void;
  getWebSocketAutoResponse(): WebSocketRequestResponsePair | null;
  getWebSocketAutoResponseTimestamp(ws: WebSocket): Date | null;
}

export interface DurableObjectStubBase {
  readonly id: DurableObjectId;
  readonly name?: string;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

/** A stub: `fetch`, and any other method is a call of the object's method of that name (RPC). */
export type DurableObjectStub = DurableObjectStubBase & {
  [method: string]: (...args: any[]) => Promise<any>;
};

export interface DurableObjectNamespace {
  idFromName(name: string): DurableObjectId;
  newUniqueId(): DurableObjectId;
  idFromString(id: string): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub;
  getByName(name: string): DurableObjectStub;
}

export interface AlarmInvocationInfo {
  readonly retryCount: number;
  readonly isRetry: boolean;
}

export declare abstract class DurableObject<Env = Record<string, DurableObjectNamespace | string | undefined>> {
  constructor(ctx: DurableObjectState, env: Env);
  protected ctx: DurableObjectState;
  protected env: Env;
  protected storage: DurableObjectStorage;
  fetch?(request: Request): Response | Promise<Response>;
  alarm?(alarmInfo: AlarmInvocationInfo): void | Promise<void>;
  webSocketMessage?(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void>;
  webSocketClose?(ws: WebSocket, code: number, reason: string, wasClean: boolean): void | Promise<void>;
  webSocketError?(ws: WebSocket, error: unknown): void | Promise<void>;
}

/** The `ctx` of a front's request: the request ends when what `waitUntil` got settles. */
export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

/** A Worker, `export default { fetch }`: the project's front when the file is its `[front]`. */
export interface ExportedHandler<Env = Record<string, DurableObjectNamespace | string | undefined>> {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response>;
}

export declare abstract class WorkerEntrypoint<Env = unknown> {
  constructor(ctx: ExecutionContext, env: Env);
  protected ctx: ExecutionContext;
  protected env: Env;
  fetch?(request: Request): Response | Promise<Response>;
}

/** The bytes open-do stores for a value (JSON text for JSON-shaped values). */
export declare function encode(value: unknown): Uint8Array;
/** The value stored as `bytes`. */
export declare function decode(bytes: Uint8Array): unknown;

declare global {
  interface ResponseInit {
    webSocket?: WebSocket | null;
  }
  var WebSocketPair: typeof import("./index.js").WebSocketPair;
  var WebSocketRequestResponsePair: typeof import("./index.js").WebSocketRequestResponsePair;
}
