// The host reports a failed call by throwing an Error whose `payload` is the WIT error record.
// These give it a message naming the code, as the user sees it in a log or a response.

/** Rethrows a host error as an Error saying what went wrong (`error.code` keeps the code). */
export function hostCall(call) {
  try {
    return call();
  } catch (error) {
    throw hostError(error);
  }
}

export function hostError(error) {
  const payload = error?.payload;
  if (!payload || typeof payload.code !== "string") return error;
  const wrapped = new Error(`${payload.code}: ${payload.message}`);
  wrapped.code = payload.code;
  if (payload.sqliteCode !== undefined) wrapped.sqliteCode = payload.sqliteCode;
  return wrapped;
}
