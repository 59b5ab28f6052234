/*
 * vmdump's tiny bare-metal test guest (GNU as, Multiboot 1, started with QEMU -kernel).
 * It stamps recognisable pages, loads known register values, prints READY on the debugcon
 * port (0xe9) and halts with interrupts off, so a paused VM has a known, stable state.
 *
 * Built twice from this file: LONG_MODE=0 stays in 32-bit protected mode (EM_386 dumps);
 * LONG_MODE=1 builds 2 MiB identity page tables for 0-8 GiB, enters long mode and also
 * stamps pages at 4 GiB (the high-RAM split). QEMU's Multiboot loader takes only ELF32, so
 * both are ELF32 files; the 64-bit code is assembled with .code64.
 *
 * Page stamp at guest-physical P: u32 0x504d4456 ("VDMP" in memory), u32 P low, u32 P high, then
 * u32 words (P + i) for the rest of the page.
 */
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003
        .set STAMP_START, 0x200000
        .set STAMP_END,   0x300000
        .set HIGH_PAGES,  16

        .section .text
        .code32
        .globl _start
        .align 4
multiboot_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

_start:
        cli
        mov     $stack_top, %esp
        mov     $STAMP_START, %edi
        xor     %edx, %edx
stamp_low:
        call    stamp_page32
        add     $4096, %edi
        cmp     $STAMP_END, %edi
        jb      stamp_low
.if LONG_MODE
        jmp     enter_long_mode
.else
        mov     $0x11111111, %eax
        mov     $0x22222222, %ebx
        mov     $0x33333333, %ecx
        mov     $0x44444444, %edx
        mov     $0x55555555, %esi
        mov     $0x66666666, %edi
        mov     $0x77777777, %ebp
        call    say_ready32
        mov     $0x11111111, %eax
        mov     $0x44444444, %edx
halt32:
        hlt
        jmp     halt32
.endif

/* edi = page address (below 4 GiB), edx = high 32 bits; clobbers eax, ecx. */
stamp_page32:
        push    %edi
        movl    $0x504d4456, (%edi)
        mov     %edi, 4(%edi)
        mov     %edx, 8(%edi)
        lea     12(%edi), %ecx
1:      mov     %ecx, (%ecx)
        add     $4, %ecx
        mov     %edi, %eax
        add     $4096, %eax
        cmp     %eax, %ecx
        jb      1b
        pop     %edi
        ret

say_ready32:
        push    %eax
        push    %edx
        push    %esi
        mov     $0xe9, %dx
        mov     $ready_text, %esi
1:      lodsb
        test    %al, %al
        jz      2f
        outb    %al, %dx
        jmp     1b
2:      pop     %esi
        pop     %edx
        pop     %eax
        ret

.if LONG_MODE
enter_long_mode:
        /* PML4[0] -> PDPT; PDPT[0..7] -> PD0..PD7; PDk[i] = (k GiB + i * 2 MiB) | P|RW|PS */
        mov     $pdpt, %eax
        or      $0x3, %eax
        mov     %eax, pml4
        xor     %ecx, %ecx
1:      mov     %ecx, %eax
        shl     $12, %eax
        add     $pds, %eax
        or      $0x3, %eax
        mov     %eax, pdpt(,%ecx,8)
        inc     %ecx
        cmp     $8, %ecx
        jb      1b
        xor     %ecx, %ecx                  /* entry index over all 8 PDs: 4096 entries */
2:      mov     %ecx, %eax
        shl     $21, %eax                   /* low 32 bits of the 2 MiB frame */
        or      $0x83, %eax
        mov     %eax, pds(,%ecx,8)
        mov     %ecx, %eax
        shr     $11, %eax                   /* high bits: index * 2 MiB >> 32 */
        mov     %eax, pds+4(,%ecx,8)
        inc     %ecx
        cmp     $4096, %ecx
        jb      2b
        mov     %cr4, %eax
        or      $0x20, %eax                 /* PAE */
        mov     %eax, %cr4
        mov     $pml4, %eax
        mov     %eax, %cr3
        mov     $0xC0000080, %ecx           /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80000000, %eax           /* PG */
        mov     %eax, %cr0
        lgdt    gdt64_pointer
        ljmp    $0x08, $long_mode

        .code64
long_mode:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        movabs  $0x100000000, %rdi
        mov     $HIGH_PAGES, %r8
3:      call    stamp_page64
        add     $4096, %rdi
        dec     %r8
        jnz     3b
        mov     $0xe9, %dx
        lea     ready_text(%rip), %rsi
4:      lodsb
        test    %al, %al
        jz      5f
        outb    %al, %dx
        jmp     4b
5:      movabs  $0x1111111111111111, %rax
        movabs  $0x2222222222222222, %rbx
        movabs  $0x3333333333333333, %rcx
        movabs  $0x4444444444444444, %rdx
        movabs  $0x5555555555555555, %rsi
        movabs  $0x6666666666666666, %rdi
        movabs  $0x7777777777777777, %rbp
        movabs  $0x8888888888888888, %r8
        movabs  $0x9999999999999999, %r9
        movabs  $0xaaaaaaaaaaaaaaaa, %r10
        movabs  $0xbbbbbbbbbbbbbbbb, %r11
        movabs  $0xcccccccccccccccc, %r12
        movabs  $0xdddddddddddddddd, %r13
        movabs  $0xeeeeeeeeeeeeeeee, %r14
        movabs  $0xffffffffffffffff, %r15
halt64:
        hlt
        jmp     halt64

/* rdi = page address; clobbers rax, rcx. */
stamp_page64:
        movl    $0x504d4456, (%rdi)
        mov     %rdi, 4(%rdi)
        lea     12(%rdi), %rcx
1:      mov     %ecx, (%rcx)
        add     $4, %rcx
        lea     4096(%rdi), %rax
        cmp     %rax, %rcx
        jb      1b
        ret

        .code32
        .section .rodata
        .align 16
gdt64:
        .quad 0
        .quad 0x00AF9A000000FFFF            /* 0x08: 64-bit code */
        .quad 0x00CF92000000FFFF            /* 0x10: data */
gdt64_pointer:
        .word gdt64_pointer - gdt64 - 1
        .long gdt64
.endif

        .section .rodata
ready_text:
        .asciz "VMDUMP-TINY-READY\n"

        .section .bss
        .align 4096
.if LONG_MODE
pml4:   .skip 4096
pdpt:   .skip 4096
pds:    .skip 8 * 4096
.endif
        .skip 16384
stack_top:
