import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { FULL_READ_BYTES, ReadPacing } from '../../protocol/read-pacing.js';

/** The three calls ReadPacing makes, on a flag. */
function fakeSocket() {
  let paused = false;
  const socket = {
    isPaused: () => paused,
    pause: () => {
      paused = true;
      return socket;
    },
    resume: () => {
      paused = false;
      return socket;
    },
  };
  return socket as unknown as Socket;
}

describe('read pacing', () => {
  test('a full read pauses reading until the next turn of the event loop; a short one does not', async () => {
    const socket = fakeSocket();
    const pacing = new ReadPacing(socket, 1_000_000, () => false);
    pacing.afterRead(1000, 0);
    assert.equal(socket.isPaused(), false);
    pacing.afterRead(FULL_READ_BYTES, 0);
    assert.equal(socket.isPaused(), true);
    await nextTurn();
    assert.equal(socket.isPaused(), false);
  });

  test('backpressure pauses over the bound and resumes at half of it, not at the next turn', async () => {
    const socket = fakeSocket();
    const pacing = new ReadPacing(socket, 1000, () => false);
    pacing.afterRead(FULL_READ_BYTES, 1500);
    await nextTurn();
    // The turn passed, but 1500 bytes still wait: reading stays paused.
    assert.equal(socket.isPaused(), true);
    pacing.afterTake(800);
    assert.equal(socket.isPaused(), true);
    pacing.afterTake(500);
    assert.equal(socket.isPaused(), false);
  });

  test('a yield that ends while backpressure holds does not resume; nothing is touched once closed', async () => {
    const socket = fakeSocket();
    let closed = false;
    const pacing = new ReadPacing(socket, 1000, () => closed);
    pacing.afterRead(FULL_READ_BYTES, 400);
    pacing.afterRead(100, 1200);
    await nextTurn();
    assert.equal(socket.isPaused(), true);
    closed = true;
    pacing.afterTake(0);
    assert.equal(socket.isPaused(), true);
  });
});
