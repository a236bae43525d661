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
 * pause grows.
 *
 * --initial-heap-size=96 (MB): the milter's live heap is small, and V8 sizes
 * its old-generation limit from it, so the ArrayBuffer traffic of a large
 * message kept starting incremental marking (mark-compacts per large
 * message); the floor trades some resident memory for far fewer of them.
 *
 * What each flag was measured to change: docs/NOTES.md, "Node flags".
 */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--initial-heap-size=96'];
