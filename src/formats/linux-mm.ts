/**
 * What VMCOREINFO says about the kernel's memory map (docs/dump-levels.md §2): where the sparse
 * memory sections are, the size and fields of `struct page`, and the flag bits and page types
 * makedumpfile's dump levels are decided from. Only what the rules read; a kernel that lacks
 * a field the requested level needs is named by the field.
 */
import { VmcoreinfoText } from './vmcoreinfo.js';

/** makedumpfile's dump-level bits (`-d N`, N = their sum). */
export const DumpLevelBit = {
  zero: 1,
  cache: 2,
  cachePrivate: 4,
  user: 8,
  free: 16,
} as const;
export const MAX_DUMP_LEVEL = 31;

/** The levels that need `struct page` (every bit but zero pages). */
export const STRUCT_PAGE_LEVELS = DumpLevelBit.cache | DumpLevelBit.cachePrivate | DumpLevelBit.user | DumpLevelBit.free;

export interface SparseMemoryLayout {
  /** SYMBOL(mem_section): the root array (CONFIG_SPARSEMEM_EXTREME: a pointer per root). */
  readonly rootsAddress: bigint;
  /** LENGTH(mem_section): NR_SECTION_ROOTS. */
  readonly roots: number;
  /** SIZE(mem_section) and OFFSET(mem_section.section_mem_map). */
  readonly sectionSize: number;
  readonly sectionMemMapOffset: number;
  /** NUMBER(SECTION_SIZE_BITS), with the page size: pages per section. */
  readonly sectionSizeBits: number;
}

export interface StructPageLayout {
  readonly size: number;
  readonly flags: number;
  readonly mapping: number;
  /** Absent on kernels without them; the rules that read them then do what makedumpfile does. */
  readonly mapcount?: number;
  readonly private?: number;
  readonly compoundHead?: number;
  readonly compoundOrder?: number;
  readonly compoundDtor?: number;
}

/** Flag bit numbers and page-type values (NUMBER()s); undefined where the kernel gives none. */
export interface PageFlagNumbers {
  readonly lru: number;
  readonly private: number;
  readonly swapCache?: number;
  readonly swapBacked?: number;
  readonly slab?: number;
  readonly hwpoison?: number;
  /** NUMBER(PG_head_mask): the head bit as a mask. */
  readonly headMask?: bigint;
  readonly buddyMapcount?: number;
  readonly offlineMapcount?: number;
  readonly hugetlbDtor?: number;
  /** SYMBOL(free_huge_page): the destructor of kernels before the numbered ones. */
  readonly freeHugePage?: bigint;
}

export interface LinuxMemoryMap {
  readonly pageSize: number;
  readonly sections: SparseMemoryLayout;
  readonly page: StructPageLayout;
  readonly numbers: PageFlagNumbers;
}

export type LinuxMemoryMapResult =
  { readonly kind: 'known'; readonly map: LinuxMemoryMap } | { readonly kind: 'unknown'; readonly missing: readonly string[] };

const small = (value: bigint | undefined): number | undefined => (value === undefined ? undefined : Number(value));

/**
 * The memory map a dump level `level` needs, or what is missing. Free pages need the buddy's
 * page type and page.private (makedumpfile's page_is_buddy_v3; older kernels' free lists are not
 * walked here).
 */
export function linuxMemoryMapOf(desc: Uint8Array, level: number): LinuxMemoryMapResult {
  const info = VmcoreinfoText.of(desc);
  const missing: string[] = [];
  const need = <T>(key: string, value: T | undefined): T | undefined => {
    if (value === undefined) missing.push(key);
    return value;
  };
  const decimal = (key: string): number | undefined => small(info.decimal(key));
  const pageSize = need('PAGESIZE', decimal('PAGESIZE'));
  const rootsAddress = need('SYMBOL(mem_section)', info.hex('SYMBOL(mem_section)'));
  const roots = need('LENGTH(mem_section)', decimal('LENGTH(mem_section)'));
  const sectionSize = need('SIZE(mem_section)', decimal('SIZE(mem_section)'));
  const sectionMemMapOffset = need('OFFSET(mem_section.section_mem_map)', decimal('OFFSET(mem_section.section_mem_map)'));
  const sectionSizeBits = need('NUMBER(SECTION_SIZE_BITS)', decimal('NUMBER(SECTION_SIZE_BITS)'));
  const size = need('SIZE(page)', decimal('SIZE(page)'));
  const flags = need('OFFSET(page.flags)', decimal('OFFSET(page.flags)'));
  const mapping = need('OFFSET(page.mapping)', decimal('OFFSET(page.mapping)'));
  const lru = need('NUMBER(PG_lru)', decimal('NUMBER(PG_lru)'));
  const privateBit = need('NUMBER(PG_private)', decimal('NUMBER(PG_private)'));
  const numbers = {
    swapCache: decimal('NUMBER(PG_swapcache)'),
    swapBacked: decimal('NUMBER(PG_swapbacked)'),
    slab: decimal('NUMBER(PG_slab)'),
    hwpoison: decimal('NUMBER(PG_hwpoison)'),
    headMask: info.decimal('NUMBER(PG_head_mask)'),
    buddyMapcount: decimal('NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)'),
    offlineMapcount: decimal('NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)'),
    hugetlbDtor: decimal('NUMBER(HUGETLB_PAGE_DTOR)'),
    freeHugePage: info.hex('SYMBOL(free_huge_page)'),
  };
  const page = {
    mapcount: decimal('OFFSET(page._mapcount)'),
    private: decimal('OFFSET(page.private)'),
    compoundHead: decimal('OFFSET(page.compound_head)'),
    compoundOrder: decimal('OFFSET(page.compound_order)'),
    compoundDtor: decimal('OFFSET(page.compound_dtor)'),
  };
  if ((level & DumpLevelBit.free) !== 0) {
    need('NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)', numbers.buddyMapcount);
    need('OFFSET(page._mapcount)', page.mapcount);
    need('OFFSET(page.private)', page.private);
  }
  if (missing.length > 0) return { kind: 'unknown', missing };
  return {
    kind: 'known',
    map: {
      pageSize: pageSize!,
      sections: {
        rootsAddress: rootsAddress!,
        roots: roots!,
        sectionSize: sectionSize!,
        sectionMemMapOffset: sectionMemMapOffset!,
        sectionSizeBits: sectionSizeBits!,
      },
      page: dropUndefined({ size: size!, flags: flags!, mapping: mapping!, ...page }),
      numbers: dropUndefined({ lru: lru!, private: privateBit!, ...numbers }),
    },
  };
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
