/**
 * Waiting with a limit, for shutdown: a stopping process must not hang on a Redis that is gone.
 */
export async function bounded(work: Promise<unknown>, limitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, limitMs); })]);
  clearTimeout(timer);
}
