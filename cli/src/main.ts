/**
 * `bamba`: one command line for the whole project. Each subcommand lives in its own file and
 * calls into the package that owns the work.
 */
import { runBatchCommand } from './commands/batch.js';
import { runGatewayCommand } from './commands/gateway.js';
import { runGpuNodeCommand } from './commands/gpu-node.js';
import { runModelCommand } from './commands/model.js';
import { runStartCommand } from './commands/start.js';
import { runWorkersCommand } from './commands/workers.js';

const USAGE = `usage: bamba <command> [options]

commands:
  start        the whole stack locally: private Redis, gpu-node on the tiny model, gateway
  gateway      the HTTP gateway of a region (environment: see README)
  gpu-node     a worker node running the engine (environment: see README)
  workers      GPU-less background workers: batches (environment: see README)
  batch        submit a JSONL file as a batch, follow it, fetch its results (bamba batch for usage)
  model tiny   generate a random-weight granitehybrid GGUF (see: bamba model tiny --help)
`;

const commands: Record<string, (args: string[]) => Promise<number>> = {
  model: runModelCommand,
  start: runStartCommand,
  gateway: runGatewayCommand,
  'gpu-node': runGpuNodeCommand,
  workers: runWorkersCommand,
  batch: runBatchCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`bamba: unknown command '${name}'\n${USAGE}`);
    return 2;
  }
  return command(rest);
}

// Exit as soon as the command is done: a service has stopped cleanly by then, and a leftover
// handle (an IPC channel to `bamba start`, a client socket) must not keep the process alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bamba: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
