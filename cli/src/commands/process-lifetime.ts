/** Keeps a service running until SIGINT/SIGTERM, then stops it cleanly and exits. */
export function stopOnSignals(stop: () => Promise<void>, name: string): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${name}: ${signal}, stopping\n`);
      const startedMs = Date.now();
      stop().then(
        () => {
          process.stderr.write(`${name}: stopped in ${Date.now() - startedMs} ms\n`);
          resolve(0);
        },
        (error: unknown) => {
          process.stderr.write(`${name}: error while stopping: ${error instanceof Error ? error.message : String(error)}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // Started by `bamba start` with an IPC channel: if that parent dies, stop too.
    if (process.send) process.once('disconnect', () => onSignal('SIGHUP'));
  });
}
