/**
 * 64-bit quantities are bigint throughout (kernel addresses exceed 2^53). Brands keep a
 * guest-physical address from being passed where a file offset is expected.
 */
declare const brand: unique symbol;
type Branded<T, B extends string> = T & { readonly [brand]: B };

/** A guest-physical address. */
export type PhysAddr = Branded<bigint, 'PhysAddr'>;
/** A guest-virtual address. */
export type VirtAddr = Branded<bigint, 'VirtAddr'>;
/** A byte offset in the output file. */
export type FileOffset = Branded<bigint, 'FileOffset'>;

export const physAddr = (value: bigint): PhysAddr => value as PhysAddr;
export const virtAddr = (value: bigint): VirtAddr => value as VirtAddr;
export const fileOffset = (value: bigint): FileOffset => value as FileOffset;

export const U32_MAX = 0xffff_ffffn;
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const FOUR_GIB = 0x1_0000_0000n;

export const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
export const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);
