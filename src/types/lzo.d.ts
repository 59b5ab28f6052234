/** The lzo package (minilzo's lzo1x_1 compressor, the one QEMU and makedumpfile use) ships no types. */
declare module 'lzo' {
  const lzo: {
    compress(input: Uint8Array): Buffer;
    decompress(input: Uint8Array, length: number): Buffer;
  };
  export default lzo;
}
