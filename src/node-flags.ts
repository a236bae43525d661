/**
 * Node options `domsec-milter serve` runs with, wherever it is started: the
 * command's shebang (systemd runs /usr/bin/domsec-milter), `npm start`, the
 * Dockerfile and the test helper. V8 accepts them only on the command line
 * (not in NODE_OPTIONS, and setting them at run time aborts the process), so
 * each of those places spells them out; test/e2e/deploy.test.ts keeps them
 * equal to this list.
 *
 * --single-threaded-gc: V8 otherwise shares each collection with helper
 * threads and the event loop waits for them; on a small host busy with the
 * MTA and our own transform worker those helpers wait for a core, and the
 * pause grows. Measured on 2 cores (bench `large`, 2000 small messages):
 * small-message p99 while 25 MB messages flow 24-26 ms -> 14-18 ms, unloaded
 * 6.7-7.2 -> 5.5-7 ms; the gateway bench's rates stayed within their noise
 * (10 KB sign+encrypt 312 -> 302, 100 KB 213 -> 225 msgs/s).
 */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
