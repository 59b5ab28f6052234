/** What QEMU's RAM block and memory region names say about them (docs/qemu-migration-stream.md §6). */

/** Blocks that are not main RAM; everything else is (a memory backend may have any id). */
export function isSpecialBlock(id: string): boolean {
  return (
    id.endsWith('.vram') ||
    id.endsWith('.rom') ||
    id === 'pc.bios' ||
    id === 'isa-bios' ||
    id.startsWith('/rom@') ||
    id.startsWith('system.flash')
  );
}
