/*
 * Bare-metal paging test guests (GNU as, Multiboot 1, QEMU -kernel): each builds page tables for
 * one x86 paging mode, turns paging on, stamps pages, prints READY on debugcon and halts, so that
 * QEMU's paging=true dump and vmdump --paging can be compared on the same paused state.
 *   MODE=1  32-bit paging: 4 KiB pages (identity + an alias), 4 MiB PSE pages, a higher-half alias
 *   MODE=2  PAE: 4 KiB pages, 2 MiB pages with NX (EFER.NXE), a higher-half 2 MiB alias
 *   MODE=3  4-level: 4 KiB and 2 MiB identity pages, a 1 GiB page aliasing physical 0, a
 *           kernel-style higher half at 0xffffffff80000000 sharing the low PD (needs -cpu max)
 *   MODE=4  5-level (LA57): the MODE=3 tables under PML5[0] and again under PML5[1], i.e. at
 *           addresses above 2^47 (needs -cpu max)
 * Built by build.sh into out/paging32.elf, pagingpae.elf, paging4.elf, paging5.elf.
 */
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003
        .section .text
        .code32
        .globl _start
        .align 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

_start:
        cli
        mov     $stack_top, %esp
        /* stamp 0x200000-0x20ffff: u32 0x504d4456 then the page address */
        mov     $0x200000, %edi
1:      movl    $0x504d4456, (%edi)
        mov     %edi, 4(%edi)
        add     $4096, %edi
        cmp     $0x210000, %edi
        jb      1b
.if MODE == 1
        /* PD[0] -> PT: PTE i -> i * 4 KiB (identity, first 4 MiB); PTE 1023 -> 0x200000 (alias) */
        mov     $pt, %eax
        or      $3, %eax
        mov     %eax, pd
        xor     %ecx, %ecx
2:      mov     %ecx, %eax
        shl     $12, %eax
        or      $3, %eax
        mov     %eax, pt(,%ecx,4)
        inc     %ecx
        cmp     $1023, %ecx
        jb      2b
        movl    $0x200003, pt + 1023 * 4
        /* PD[1], PD[2]: 4 MiB pages at 0x800000 and 0xC00000 (contiguous: one mapping) */
        movl    $0x800083, pd + 1 * 4
        movl    $0xC00083, pd + 2 * 4
        /* PD[768]: 4 MiB page at 0 (higher-half alias 0xC0000000) */
        movl    $0x000083, pd + 768 * 4
        mov     %cr4, %eax
        or      $0x10, %eax                 /* PSE */
        mov     %eax, %cr4
        mov     $pd, %eax
        mov     %eax, %cr3
.elseif MODE == 2
        /* PAE: PDPT[0] -> PD0; PD0[0] -> PT (identity 4 KiB, first 2 MiB); PD0[1] -> 2 MiB at 0x200000 (NX);
           PDPT[3] -> PD3; PD3[0] -> 2 MiB at 0 (higher-half alias 0xC0000000) */
        mov     $0xC0000080, %ecx           /* EFER.NXE so bit 63 is NX, not reserved */
        rdmsr
        or      $0x800, %eax
        wrmsr
        mov     $pd0, %eax
        or      $1, %eax
        mov     %eax, pdpt
        mov     $pd3, %eax
        or      $1, %eax
        mov     %eax, pdpt + 3 * 8
        mov     $pt, %eax
        or      $3, %eax
        mov     %eax, pd0
        movl    $0x200083, pd0 + 8
        movl    $0x80000000, pd0 + 8 + 4    /* NX */
        movl    $0x000083, pd3
        xor     %ecx, %ecx
2:      mov     %ecx, %eax
        shl     $12, %eax
        or      $3, %eax
        mov     %eax, pt(,%ecx,8)
        inc     %ecx
        cmp     $512, %ecx
        jb      2b
        mov     %cr4, %eax
        or      $0x20, %eax                 /* PAE */
        mov     %eax, %cr4
        mov     $pdpt, %eax
        mov     %eax, %cr3
.else
        /* PD0: [0] -> PT (4 KiB identity, first 2 MiB), [1..511] -> 2 MiB identity pages */
        mov     $pt, %eax
        or      $3, %eax
        mov     %eax, pd0
        mov     $1, %ecx
2:      mov     %ecx, %eax
        shl     $21, %eax
        or      $0x83, %eax
        mov     %eax, pd0(,%ecx,8)
        inc     %ecx
        cmp     $512, %ecx
        jb      2b
        xor     %ecx, %ecx
3:      mov     %ecx, %eax
        shl     $12, %eax
        or      $3, %eax
        mov     %eax, pt(,%ecx,8)
        inc     %ecx
        cmp     $512, %ecx
        jb      3b
        /* PDPT0[0] -> PD0; PDPT0[1] -> 1 GiB page at physical 0 (alias); PDPTHI[510] -> PD0 (0xffffffff80000000) */
        mov     $pd0, %eax
        or      $3, %eax
        mov     %eax, pdpt0
        mov     %eax, pdpthi + 510 * 8
        movl    $0x83, pdpt0 + 8
        /* PML4[0] -> PDPT0, PML4[511] -> PDPTHI */
        mov     $pdpt0, %eax
        or      $3, %eax
        mov     %eax, pml4
        mov     $pdpthi, %eax
        or      $3, %eax
        mov     %eax, pml4 + 511 * 8
        mov     %cr4, %eax
        or      $0x20, %eax                 /* PAE */
.if MODE == 4
        or      $0x1000, %eax               /* LA57: PML5[0] and PML5[1] -> PML4 */
        mov     $pml4, %ebx
        or      $3, %ebx
        mov     %ebx, pml5
        mov     %ebx, pml5 + 8
        mov     %eax, %cr4
        mov     $pml5, %eax
.else
        mov     %eax, %cr4
        mov     $pml4, %eax
.endif
        mov     %eax, %cr3
        mov     $0xC0000080, %ecx           /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
.endif
        mov     %cr0, %eax
        or      $0x80000000, %eax           /* PG */
        mov     %eax, %cr0
.if MODE >= 3
        lgdt    gdt64_pointer
        ljmp    $0x08, $long_mode
        .code64
long_mode:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %ss
.endif
        mov     $0xe9, %dx
        mov     $ready_text, %esi
3:      lodsb
        test    %al, %al
        jz      4f
        outb    %al, %dx
        jmp     3b
4:      hlt
        jmp     4b

        .code32
        .section .rodata
.if MODE >= 3
        .align 16
gdt64:
        .quad 0
        .quad 0x00AF9A000000FFFF
        .quad 0x00CF92000000FFFF
gdt64_pointer:
        .word gdt64_pointer - gdt64 - 1
        .long gdt64
.endif
ready_text:
        .asciz "VMDUMP-TINY-READY\n"

        .section .bss
        .align 4096
.if MODE == 1
pd:     .skip 4096
pt:     .skip 4096
.elseif MODE == 2
pdpt:   .skip 4096
pd0:    .skip 4096
pd3:    .skip 4096
pt:     .skip 4096
.else
pml5:   .skip 4096
pml4:   .skip 4096
pdpt0:  .skip 4096
pdpthi: .skip 4096
pd0:    .skip 4096
pt:     .skip 4096
.endif
        .skip 16384
stack_top:
