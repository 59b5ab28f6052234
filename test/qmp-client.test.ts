/**
 * The QMP client against a scripted peer on a real unix socket: replies are matched to their
 * commands by id, so an answer that arrives after its command timed out is not taken as the
 * next command's answer.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient } from '../src/sources/qmp/qmp-client.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A QMP peer that greets, accepts qmp_capabilities, and answers other commands through `answer`. */
async function scriptedPeer(
  answer: (command: { execute: string; id?: unknown }, reply: (message: object) => void) => void,
): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdump-qmp-'));
  const socketPath = path.join(dir, 'qmp.sock');
  const server = net.createServer((socket) => {
    socket.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let buffer = '';
    socket.on('data', (data) => {
      buffer += data.toString();
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const command = JSON.parse(buffer.slice(0, newline)) as { execute: string; id?: unknown };
        buffer = buffer.slice(newline + 1);
        const reply = (message: object): void => {
          socket.write(`${JSON.stringify(message)}\n`);
        };
        if (command.execute === 'qmp_capabilities') reply({ return: {}, id: command.id });
        else answer(command, reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  cleanups.push(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return socketPath;
}

describe('QMP client', () => {
  it('sends an id with every command and drops a late reply to a command that timed out', async () => {
    const seen: unknown[] = [];
    let late: (() => void) | undefined;
    const socketPath = await scriptedPeer((command, reply) => {
      seen.push(command.id);
      if (command.execute === 'slow') late = () => reply({ return: 'slow answer', id: command.id });
      else {
        late?.(); // the slow command's answer arrives first, after its command gave up
        reply({ return: `${command.execute} answer`, id: command.id });
      }
    });
    const qmp = await QmpClient.connect({ path: socketPath });
    try {
      await expect(qmp.execute('slow', undefined, { timeoutMs: 200 })).rejects.toThrow(/slow got no answer/);
      await expect(qmp.execute('query-status')).resolves.toBe('query-status answer');
      expect(seen).toHaveLength(2);
      expect(new Set(seen).size).toBe(2);
      expect(seen.every((id) => typeof id === 'number')).toBe(true);
    } finally {
      qmp.close();
    }
  });

  it('takes a reply without an id as the answer of the one command in flight', async () => {
    const socketPath = await scriptedPeer((command, reply) => reply({ return: command.execute }));
    const qmp = await QmpClient.connect({ path: socketPath });
    try {
      await expect(qmp.execute('query-status')).resolves.toBe('query-status');
    } finally {
      qmp.close();
    }
  });
});
