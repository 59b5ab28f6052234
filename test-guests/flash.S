/*
 * Bare-metal guests that boot from pflash (GNU as; a 64 KiB raw flash image for
 * `-drive if=pflash`), so the flash is a ROM device at 0xFFFF0000-0xFFFFFFFF and not RAM. From
 * the reset vector: protected mode, page tables in RAM that map the flash (identity, so the code
 * runs on) and a flash page at a higher-half address, paging on, READY on debugcon, halt. QEMU's
 * paging=true dump writes the flash mappings with no bytes in the file (docs/elf-vmcore.md §4).
 *   MODE=1  32-bit paging: a 4 MiB PSE page at 0, the flash by 4 KiB pages, 0xC0800000 -> RAM
 *           0x200000-0x201fff and 0xC0803000 -> flash 0xFFFFF000
 *   MODE=3  4-level: 2 MiB pages at 0 and 0x200000, the flash by 4 KiB pages,
 *           0xffffffff80800000 -> RAM 0x200000-0x201fff and 0xffffffff80803000 -> flash 0xFFFFF000
 * Built by build.sh (linked at 0xFFFF0000, objcopy'd to binary) into flash32.bin and flash4.bin.
 */
        .set TABLES, 0x10000
        .set FLASH, 0xFFFF0000
        .section .text
        .code16
start16:
        cli
        cld
        lgdtl   %cs:gdt_pointer - start16
        mov     %cr0, %eax
        or      $1, %eax                    /* PE */
        mov     %eax, %cr0
        ljmpl   $0x08, $start32

        .code32
start32:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x80000, %esp
        /* zero the eight table pages */
        mov     $TABLES, %edi
        xor     %eax, %eax
        mov     $(8 * 4096 / 4), %ecx
        rep stosl
.if MODE == 1
        .set PD, TABLES
        .set PT_FLASH, TABLES + 0x1000
        .set PT_HIGH, TABLES + 0x2000
        movl    $0x83, PD                                   /* 4 MiB page at 0 */
        movl    $(PT_FLASH + 3), PD + 1023 * 4              /* 0xFFC00000 */
        movl    $(PT_HIGH + 3), PD + 770 * 4                /* 0xC0800000 */
        xor     %ecx, %ecx
1:      mov     %ecx, %eax
        shl     $12, %eax
        add     $(FLASH + 3), %eax
        mov     %eax, (PT_FLASH + 1008 * 4)(,%ecx,4)
        inc     %ecx
        cmp     $16, %ecx
        jb      1b
        movl    $0x200003, PT_HIGH
        movl    $0x201003, PT_HIGH + 4
        movl    $0xFFFFF003, PT_HIGH + 3 * 4
        mov     %cr4, %eax
        or      $0x10, %eax                 /* PSE */
        mov     %eax, %cr4
        mov     $PD, %eax
        mov     %eax, %cr3
        mov     %cr0, %eax
        or      $0x80000000, %eax           /* PG */
        mov     %eax, %cr0
        call    ready
.else
        .set PML4, TABLES
        .set PDPT0, TABLES + 0x1000
        .set PD0, TABLES + 0x2000
        .set PD3, TABLES + 0x3000
        .set PT_FLASH, TABLES + 0x4000
        .set PDPT_HIGH, TABLES + 0x5000
        .set PD_HIGH, TABLES + 0x6000
        .set PT_HIGH, TABLES + 0x7000
        movl    $(PDPT0 + 3), PML4
        movl    $(PDPT_HIGH + 3), PML4 + 511 * 8
        movl    $(PD0 + 3), PDPT0
        movl    $(PD3 + 3), PDPT0 + 3 * 8                   /* 0xC0000000 */
        movl    $0x83, PD0                                  /* 2 MiB pages at 0 and 0x200000 */
        movl    $0x200083, PD0 + 8
        movl    $(PT_FLASH + 3), PD3 + 511 * 8              /* 0xFFE00000 */
        xor     %ecx, %ecx
1:      mov     %ecx, %eax
        shl     $12, %eax
        add     $(FLASH + 3), %eax
        mov     %eax, (PT_FLASH + 496 * 8)(,%ecx,8)
        inc     %ecx
        cmp     $16, %ecx
        jb      1b
        movl    $(PD_HIGH + 3), PDPT_HIGH + 510 * 8         /* 0xffffffff80000000 */
        movl    $(PT_HIGH + 3), PD_HIGH + 4 * 8             /* 0xffffffff80800000 */
        movl    $0x200003, PT_HIGH
        movl    $0x201003, PT_HIGH + 8
        movl    $0xFFFFF003, PT_HIGH + 3 * 8
        mov     %cr4, %eax
        or      $0x20, %eax                 /* PAE */
        mov     %eax, %cr4
        mov     $PML4, %eax
        mov     %eax, %cr3
        mov     $0xC0000080, %ecx           /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80000000, %eax           /* PG */
        mov     %eax, %cr0
        ljmp    $0x18, $long_mode
        .code64
long_mode:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %ss
        call    ready
.endif
2:      hlt
        jmp     2b

ready:
        mov     $0xe9, %dx
        mov     $ready_text, %esi
3:      lodsb
        test    %al, %al
        jz      4f
        outb    %al, %dx
        jmp     3b
4:      ret

        .align 16
gdt:
        .quad 0
        .quad 0x00CF9A000000FFFF            /* 0x08: 32-bit code */
        .quad 0x00CF92000000FFFF            /* 0x10: data */
        .quad 0x00AF9A000000FFFF            /* 0x18: 64-bit code */
gdt_pointer:
        .word gdt_pointer - gdt - 1
        .long gdt
ready_text:
        .asciz "VMDUMP-TINY-READY\n"

        /* The reset vector: CS base 0xFFFF0000, IP 0xFFF0. */
        .code16
        .org 0xFFF0
        jmp     start16
        .org 0x10000
