/**
 * A compression thread: takes a batch of pages, answers with each page's outcome. Zero pages
 * are recognised by comparison, never compressed. The answer depends only on the page bytes,
 * so the dump is the same whatever the number of threads or their timing.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { KdumpCodec } from '../../formats/kdump/kdump-format.js';
import { compressedBound, loadPageCompressor } from './page-codecs.js';
import { ZERO_PAGE_SIZE, RAW_PAGE_SIZE, type BatchReply, type BatchRequest } from './page-compression.js';

const { codec, pageSize } = workerData as { codec: KdumpCodec; pageSize: number };
const compress = await loadPageCompressor(codec);
const zero = Buffer.alloc(pageSize);
const bound = compressedBound(pageSize);

function compressBatch(request: BatchRequest): Extract<BatchReply, { pages: ArrayBuffer }> {
  const pages = new Uint8Array(request.pages);
  const count = pages.length / pageSize;
  const sizes = new Int32Array(count);
  // The caller sized it (packedCapacity): compressed pages are smaller than pages, plus one bound of room.
  const output = new Uint8Array(request.packed);
  let packed = 0;
  for (let i = 0; i < count; i += 1) {
    const page = pages.subarray(i * pageSize, (i + 1) * pageSize);
    if (zero.equals(page)) {
      sizes[i] = ZERO_PAGE_SIZE;
      continue;
    }
    const length = compress(page, output.subarray(packed, packed + bound));
    sizes[i] = length > 0 ? length : RAW_PAGE_SIZE;
    packed += length;
  }
  return { id: request.id, pages: request.pages, sizes: sizes.buffer, packed: request.packed, packedLength: packed };
}

parentPort!.on('message', (request: BatchRequest) => {
  try {
    const reply = compressBatch(request);
    parentPort!.postMessage(reply, [reply.pages, reply.sizes, reply.packed]);
  } catch (error) {
    parentPort!.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
});
parentPort!.postMessage({ ready: true });
