// Import (under History): Procfiles, process-compose files, PM2 ecosystem files and systemd
// units turned into units by the engine, the same operation as `gitvisor import`. Preview is
// its dry run: the units and every key that did not translate; Import commits them.

import { byId, setText } from '../dom.js';
import { plural } from '../format.js';

function note(n) {
  const at = n.line == null ? n.file : `${n.file}:${n.line}`;
  return `${at}: ${n.key}: ${n.message}`;
}

export function createImportForm(ctx, onImported) {
  const form = byId('import-form');
  const input = byId('import-paths');
  const preview = byId('import-preview');
  const run = byId('import-run');
  const result = byId('import-result');
  const details = byId('import-details');
  const notes = byId('import-notes');
  const units = byId('import-units');
  let busy = false;

  function show(reply) {
    notes.textContent = reply.notes.length ? reply.notes.map(note).join('\n') : '(everything translated)';
    units.textContent = reply.units
      .map((u) => `# ${u.file} (${u.enabled ? 'enabled' : 'not enabled'}), from ${u.source}\n${u.text}`)
      .join('\n');
    details.hidden = false;
  }

  async function go(dryRun) {
    const paths = input.value.split(/\s+/).filter(Boolean);
    if (!paths.length) {
      result.className = 'result-line bad';
      setText(result, 'Name a file to import.');
      input.focus();
      return;
    }
    if (busy) return;
    busy = true;
    preview.disabled = run.disabled = true;
    result.className = 'result-line';
    setText(result, dryRun ? 'Reading…' : 'Importing…');
    try {
      const reply = await ctx.call('import_units', { paths, dryRun });
      show(reply);
      const count = plural(reply.units.length, 'unit');
      result.className = 'result-line ok';
      if (dryRun) {
        setText(result, `Preview: ${count}, ${plural(reply.notes.length, 'key')} not translated as written. Nothing written.`);
      } else {
        const applied = reply.sync && reply.sync.applied ? 'applied' : 'committed';
        setText(result, `${applied}: ${reply.message}`);
        onImported();
      }
    } catch (err) {
      details.hidden = true;
      result.className = 'result-line bad';
      setText(result, ctx.errorMessage(err));
    } finally {
      busy = false;
      preview.disabled = run.disabled = false;
    }
  }

  preview.addEventListener('click', () => go(true));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(false);
  });
}
