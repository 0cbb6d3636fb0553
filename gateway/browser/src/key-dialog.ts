/**
 * Asks for a key in a modal dialog (keyboard: Tab, Enter to save, Escape to cancel) and keeps
 * it in the browser's storage.
 */
import type { KeyStore } from './api.js';
import { byId } from './dom.js';

/** Resolves true when a key was saved, false when the person cancelled. */
export function askForKey(keys: KeyStore, reason: string): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>('key-dialog');
  const input = byId<HTMLInputElement>('key-input');
  byId('key-reason').textContent = reason;
  input.value = keys.get() ?? '';
  return new Promise((resolve) => {
    const form = dialog.querySelector('form')!;
    const onSubmit = (event: SubmitEvent) => {
      event.preventDefault();
      const submitter = event.submitter as HTMLButtonElement | null;
      const saved = submitter?.value !== 'cancel' && input.value.trim() !== '';
      if (saved) keys.set(input.value.trim());
      dialog.close(saved ? 'saved' : 'cancel');
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('close', () => {
      form.removeEventListener('submit', onSubmit);
      resolve(dialog.returnValue === 'saved');
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
}
