/* Test guest entry: the PVH entry point (32-bit protected mode, paging
 * off, %ebx = hvm_start_info or 0 when the boot sector started us), the
 * switch to long mode with identity-mapped 4 GiB, and the trampoline an
 * application processor runs after INIT-SIPI. */

    .section .note.pvh, "a"
    .balign 4
    .long 4                 /* name size */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start32

    .section .text.entry, "ax"
    .code32
    .globl _start32
_start32:
    cli
    cld
    movl %ebx, %ebp
    lgdt gdt_ptr
    ljmp $0x18, $1f
1:  movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl $stack_top, %esp
    /* .bss may hold garbage when loaded from disk */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    /* pml4[0] -> pdpt, pdpt[0..3] -> pd[0..3], pd: 2 MiB pages */
    movl $pdpt + 3, pml4
    movl $pd + 3, %eax
    xorl %ecx, %ecx
2:  movl %eax, pdpt(,%ecx,8)
    addl $4096, %eax
    incl %ecx
    cmpl $4, %ecx
    jb 2b
    xorl %ecx, %ecx
3:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    cmpl $1536, %ecx        /* the last GiB (MMIO): uncached */
    jb 4f
    orl $0x18, %eax
4:  movl %eax, pd(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 3b
    call enter_long_mode
    ljmp $0x08, $long64

/* The 64-bit entry of a bzImage (protected-mode code + 0x200), from the
 * boot loader's identity mapping, %rsi = boot_params. */
    .code64
    .org 0x200
entry64:
    cli
    cld
    movq %rsi, %rbp
    movq $stack_top, %rsp
    lgdt gdt_ptr
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    pushq $0x08
    leaq 7f(%rip), %rax
    pushq %rax
    lretq
7:  movq $__bss_start, %rdi
    movq $__bss_end, %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb
    /* the same tables as the 32-bit path (the APs use them) */
    movq $pdpt + 3, %rax
    movq %rax, pml4
    movq $pd + 3, %rax
    xorl %ecx, %ecx
8:  movq %rax, pdpt(,%rcx,8)
    addq $4096, %rax
    incl %ecx
    cmpl $4, %ecx
    jb 8b
    xorl %ecx, %ecx
9:  movq %rcx, %rax
    shlq $21, %rax
    orq $0x83, %rax
    cmpl $1536, %ecx
    jb 10f
    orq $0x18, %rax
10: movq %rax, pd(,%rcx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 9b
    movq $pml4, %rax
    movq %rax, %cr3
    movq $stack_top, %rsp
    xorl %edi, %edi
    movl %ebp, %esi
    call guest_main
    jmp 5f

    .code32
/* PAE + LME + PG with our tables (both the BSP and APs come here). */
enter_long_mode:
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ret

    .code64
long64:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    movq $stack_top, %rsp
    movl %ebp, %edi
    xorl %esi, %esi
    call guest_main
5:  cli
    hlt
    jmp 5b

/* AP: count ourselves in, record the APIC id, and sleep. */
ap_long64:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %ss
    movl $1, %eax
    lock xaddl %eax, ap_slot
    movl $0xfee00020, %edx
    movl (%rdx), %ecx
    shrl $24, %ecx
    andl $15, %eax
    movl %ecx, ap_ids(,%rax,4)
    lock incl ap_count
6:  cli
    hlt
    jmp 6b

/* Copied to 0x8000 (SIPI vector 0x08): real mode -> protected mode. */
    .code16
    .globl ap_tramp, ap_tramp_end
ap_tramp:
    cli
    lgdtl %cs:(ap_gdt_ptr - ap_tramp)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $(0x8000 + ap_pm32 - ap_tramp)
    .code32
ap_pm32:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %ss
    movl $ap_stack_top, %esp
    movl $enter_long_mode, %eax     /* absolute: this code was moved */
    call *%eax
    ljmp $0x08, $ap_long64
    .balign 4
ap_gdt_ptr:                        /* 6 bytes read in 32-bit mode, 10 in 64 */
    .word gdt_end - gdt - 1
    .quad gdt
ap_tramp_end:

    .section .rodata
    .balign 8
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
    .quad 0x00cf9a000000ffff    /* 0x18: 32-bit code */
gdt_end:
gdt_ptr:                        /* 6 bytes read in 32-bit mode, 10 in 64 */
    .word gdt_end - gdt - 1
    .quad gdt

    .section .bss
    .balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4 * 4096
    .balign 16
    .skip 16384
stack_top:
    .skip 256
ap_stack_top:
    .globl ap_count, ap_ids
    .balign 4
ap_count: .long 0
ap_slot: .long 0
ap_ids: .skip 64

    .section .note.GNU-stack, "", @progbits
