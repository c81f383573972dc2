// Child process for agent/update/install.test.ts: installs ARTIFACT over BINARY and SIGKILLs itself right
// after STEP is durable (power loss at that point, as far as the files are concerned).
import { INSTALL_STEPS, type InstallStep, install, swapPaths } from '../../agent/update/install.ts';

const [binary, artifact, step] = process.argv.slice(2) as [string, string, InstallStep];
if (!INSTALL_STEPS.includes(step)) throw new Error(`unknown step ${step}`);
install(swapPaths(binary), artifact, {
  from: 'A',
  to: 'B',
  afterStep: (s) => {
    if (s === step) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write('not killed\n');
