/**
 * Asks for a key in a modal dialog (keyboard: Tab, Enter to save, Escape to cancel) and keeps
 * it in the browser's storage. Save is the form's only submit button, so Enter saves; saving an
 * empty key forgets the stored one.
 */
import type { KeyStore } from './api.js';
import { byId } from './dom.js';

/** Resolves true when a key was saved (or cleared), false when the person cancelled. */
export function askForKey(keys: KeyStore, reason: string): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>('key-dialog');
  const input = byId<HTMLInputElement>('key-input');
  const cancel = byId<HTMLButtonElement>('key-cancel');
  const form = dialog.querySelector('form')!;
  byId('key-reason').textContent = reason;
  input.value = keys.get() ?? '';
  return new Promise((resolve) => {
    const onSubmit = (event: SubmitEvent) => {
      event.preventDefault();
      keys.set(input.value.trim() || null);
      dialog.close('saved');
    };
    const onCancel = () => dialog.close('cancelled');
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', () => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      resolve(dialog.returnValue === 'saved');
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
}
