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
 *
 * --initial-heap-size=96 (MB): the milter's live heap is ~12 MB, and V8
 * sized its old-generation limit from that, so the ArrayBuffer traffic of a
 * large message (~110 MB through the event loop) kept starting incremental
 * marking: ~2 mark-compacts per 25 MB message, ~40 ms of the event loop's
 * ~120 ms for it. With this floor: ~60 ms per large message (64 MB: 78 ms,
 * 128 MB: 64 ms), small-message p99 under 25 MB messages 18-21 -> 15-20 ms,
 * gateway 100 KB sign+encrypt 185 -> 198 msgs/s (10 KB 259 -> 251, noise);
 * it costs resident memory: peak of `serve` under back-to-back 25 MB
 * messages ~300 -> ~345 MB (baseline ~130 -> ~150 MB).
 */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--initial-heap-size=96'];
