// open-do's `cloudflare:workers`: what a Durable Object class imports.
import { Response } from "./http.js";
import { WebSocket, WebSocketPair, WebSocketRequestResponsePair } from "./websockets.js";

// Code written for Cloudflare uses these as globals.
globalThis.Response = Response;
globalThis.WebSocketPair = WebSocketPair;
globalThis.WebSocketRequestResponsePair = WebSocketRequestResponsePair;
globalThis.WebSocket ??= WebSocket;

export { DurableObject, DurableObjectState } from "./object.js";
export { DurableObjectId, DurableObjectNamespace, DurableObjectStub } from "./namespaces.js";
export { DurableObjectStorage } from "./storage.js";
export { SqlStorage, SqlStorageCursor, SqlStatement } from "./sql.js";
export { encode, decode } from "./encoding.js";
export { WorkerEntrypoint } from "./entrypoint.js";
export { Response, WebSocket, WebSocketPair, WebSocketRequestResponsePair };
