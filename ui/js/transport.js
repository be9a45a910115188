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

/** Invokes a command; rejects with an Error whose message is the engine's one-line error. */
export async function call(cmd, args = {}) {
  try {
    return await runtime().core.invoke(cmd, args);
  } catch (err) {
    throw new Error(errorMessage(err));
  }
}

/** Listens to an app event; `fn` gets the payload. Resolves to the unlisten function. */
export async function on(name, fn) {
  return runtime().event.listen(name, (event) => fn(event.payload));
}
