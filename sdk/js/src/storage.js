// `ctx.storage`: key-value storage, the alarm, transactions and SQL (Cloudflare's
// DurableObjectStorage). Methods that are asynchronous at Cloudflare return promises here too,
// settled at once: every call is a synchronous call into the object's own database.
import * as kv from "opendo:durable-object/kv@0.1.0";
import * as alarms from "opendo:durable-object/alarms@0.1.0";
import * as transaction from "opendo:durable-object/transaction@0.1.0";
import { decode, encode } from "./encoding.js";
import { hostCall } from "./errors.js";
import { SqlStorage } from "./sql.js";

const MAX_BATCH = 128;

// The first failure of a promise-returning method called inside `transactionSync`: such calls
// are rarely awaited there, so the transaction fails with it instead of committing without it.
let syncTransaction = null;

function settle(work) {
  try {
    return Promise.resolve(work());
  } catch (error) {
    if (syncTransaction !== null) syncTransaction.failure ??= error;
    return Promise.reject(error);
  }
}

function checkKey(key) {
  if (typeof key !== "string") throw new TypeError(`a key must be a string, not ${typeof key}`);
  return key;
}

function checkBatch(keys, what) {
  if (keys.length > MAX_BATCH) throw new RangeError(`${what}: at most ${MAX_BATCH} keys at once, got ${keys.length}`);
  keys.forEach(checkKey);
}

function entriesToMap(entries) {
  return new Map(entries.map(([key, value]) => [key, decode(value)]));
}

function alarmTime(time) {
  const ms = time instanceof Date ? time.getTime() : time;
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new TypeError("setAlarm takes a Date or milliseconds since the epoch");
  return BigInt(Math.trunc(ms));
}

function getSync(keys) {
  if (Array.isArray(keys)) {
    checkBatch(keys, "get");
    return entriesToMap(hostCall(() => kv.getMany(keys)));
  }
  const value = hostCall(() => kv.get(checkKey(keys)));
  return value === undefined ? undefined : decode(value);
}

function putSync(keyOrEntries, value) {
  if (typeof keyOrEntries === "string") {
    if (value === undefined) throw new TypeError("put: the value is undefined (use delete to remove a key)");
    hostCall(() => kv.put(keyOrEntries, encode(value)));
    return;
  }
  if (keyOrEntries === null || typeof keyOrEntries !== "object") throw new TypeError("put takes a key and a value, or an object of entries");
  const entries = Object.entries(keyOrEntries);
  checkBatch(entries.map(([key]) => key), "put");
  hostCall(() => kv.putMany(entries.map(([key, v]) => [key, encode(v)])));
}

function deleteSync(keys) {
  if (Array.isArray(keys)) {
    checkBatch(keys, "delete");
    return hostCall(() => kv.deleteMany(keys));
  }
  return hostCall(() => kv.delete(checkKey(keys)));
}

function listSync(options = {}) {
  const bound = (name) => {
    const value = options[name];
    if (value === undefined) return undefined;
    return checkKey(value);
  };
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new RangeError("list: limit must be a positive integer");
  }
  return entriesToMap(
    hostCall(() =>
      kv.list({
        start: bound("start"),
        startAfter: bound("startAfter"),
        end: bound("end"),
        prefix: bound("prefix"),
        reverse: Boolean(options.reverse),
        limit: options.limit,
      }),
    ),
  );
}

function inTransaction(work) {
  const txn = hostCall(() => transaction.begin());
  const outer = syncTransaction;
  const state = { failure: undefined };
  syncTransaction = state;
  let result;
  try {
    result = work();
    if (state.failure !== undefined) throw state.failure;
  } catch (error) {
    hostCall(() => txn.rollback());
    throw error;
  } finally {
    syncTransaction = outer;
  }
  hostCall(() => txn.commit());
  return result;
}

/**
 * `ctx.storage.kv`: Cloudflare's synchronous KV API, one key at a time, on the same keys and
 * values as `ctx.storage.get`/`put`. A failure throws at once.
 */
export class SyncKvStorage {
  get(key) {
    return getSync(checkKey(key));
  }

  put(key, value) {
    putSync(checkKey(key), value);
  }

  delete(key) {
    return deleteSync(checkKey(key));
  }

  /** The entries in key order (see `ctx.storage.list` for the options), as an iterable. */
  list(options) {
    return listSync(options).entries();
  }
}

/** The storage a transaction callback gets: the same methods, plus `rollback()`. */
class Transaction {
  #rolledBack = false;

  get rolledBack() {
    return this.#rolledBack;
  }

  rollback() {
    this.#rolledBack = true;
  }
}
for (const name of ["get", "put", "delete", "list", "getAlarm", "setAlarm", "deleteAlarm"]) {
  Transaction.prototype[name] = function (...args) {
    return DurableObjectStorage.prototype[name].apply(this, args);
  };
}

export class DurableObjectStorage {
  constructor() {
    this.sql = new SqlStorage();
    this.kv = new SyncKvStorage();
  }

  get(keys) {
    return settle(() => getSync(keys));
  }

  put(keyOrEntries, value) {
    return settle(() => putSync(keyOrEntries, value));
  }

  delete(keys) {
    return settle(() => deleteSync(keys));
  }

  list(options) {
    return settle(() => listSync(options));
  }

  /** Deletes everything the object stored (keys and SQL tables) and its alarm, as Cloudflare does. */
  deleteAll() {
    return settle(() => hostCall(() => kv.deleteAll()));
  }

  getAlarm() {
    return settle(() => {
      const time = hostCall(() => alarms.getAlarm());
      return time === undefined ? null : Number(time);
    });
  }

  setAlarm(time) {
    return settle(() => hostCall(() => alarms.setAlarm(alarmTime(time))));
  }

  deleteAlarm() {
    return settle(() => hostCall(() => alarms.deleteAlarm()));
  }

  /** Runs `work` in a transaction: its writes are kept if it returns, undone if it throws. */
  transactionSync(work) {
    return inTransaction(work);
  }

  /**
   * Runs `work(txn)` in a transaction, awaited: undone if it throws (or rejects), or if it
   * calls `txn.rollback()`.
   */
  async transaction(work) {
    const txn = hostCall(() => transaction.begin());
    const view = new Transaction();
    let result;
    try {
      result = await work(view);
    } catch (error) {
      hostCall(() => txn.rollback());
      throw error;
    }
    hostCall(() => (view.rolledBack ? txn.rollback() : txn.commit()));
    return result;
  }

  /** Writes are already durable when the event's response leaves. */
  sync() {
    return Promise.resolve();
  }
}
