// The only module that touches the Tauri runtime. Everything else goes through `call` and `on`,
// so the backend surface the window uses stays small and visible in one place.

function runtime() {
  const t = window.__TAURI__;
  if (!t || !t.core || !t.event) {
    throw new Error('The gitvisor runtime is not available: this page only works inside the gitvisor window.');
  }
  return t;
}

/** A one-line message for anything a command or the runtime rejected with. */
export function errorMessage(err) {
  if (err == null) return 'Unknown error';
  if (typeof err === 'string') return err;
  if (typeof err.message === 'string' && err.message) return err.message;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

/**
 * What a command rejected with: the engine's stable `code` (`unknown_service`, `in_progress`,
 * `held`, `service_failed`, `dependency_failed`, `app`...) and its one-line `message`.
 */
export class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CommandError';
    this.code = code;
  }
}

/** The stable code of an error, or `unknown` when it carries none. */
export function errorCode(err) {
  return err && typeof err.code === 'string' ? err.code : 'unknown';
}

/** Another operation holds what this one needs (here, or another holder): trying later works. */
export function isBusy(err) {
  const code = errorCode(err);
  return code === 'in_progress' || code === 'held';
}

/** Invokes a command; rejects with a CommandError carrying the engine's code and message. */
export async function call(cmd, args = {}) {
  try {
    return await runtime().core.invoke(cmd, args);
  } catch (err) {
    throw new CommandError(errorCode(err), errorMessage(err));
  }
}

/** Listens to an app event; `fn` gets the payload. Resolves to the unlisten function. */
export async function on(name, fn) {
  return runtime().event.listen(name, (event) => fn(event.payload));
}
