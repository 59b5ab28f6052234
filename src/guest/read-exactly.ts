/** Positional reads that either fill the whole buffer or fail with a short-read error: never silent zeros. */
import * as fs from 'node:fs';
import { VmdumpError, hex } from './errors.js';

export async function readExactly(fd: number, position: bigint, into: Uint8Array, label: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.read(fd, into, done, into.length - done, position + BigInt(done), (error, bytesRead) =>
        error ? reject(error) : resolve(bytesRead),
      ),
    );
    if (n === 0) {
      throw new VmdumpError(
        'short-read',
        `the file ended at offset ${hex(position + BigInt(done))}, ${into.length - done} bytes short`,
        label,
      );
    }
    done += n;
  }
}
