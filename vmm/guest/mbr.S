/* Boot sector of the test guest's disk image: loads sectors 1..127 (the
 * flat guest image) through BIOS int 13h extensions to 0x10000, enters
 * 32-bit protected mode, copies the image to 1 MiB and jumps to its PVH
 * entry with %ebx = 0 (no start_info: the guest reads its parameters from
 * disk sector 128). */
    .code16
    .section .text
    .globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x7c00, %sp
    ljmp $0, $1f
1:  sti
    movb %dl, drive
    movw $dap, %si
    movb $0x42, %ah
    int $0x13
    jc fail
    cli
    inb $0x92, %al
    orb $2, %al
    andb $0xfe, %al
    outb %al, $0x92
    lgdt gdtr
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $pm32

fail:
    movw $msg, %si
2:  lodsb
    testb %al, %al
    jz 3f
    movw $0x3f8, %dx
    outb %al, %dx
    jmp 2b
3:  movb $0x01, %al          /* debug-exit status 1 */
    outb %al, $0xf4
    hlt
    jmp 3b

    .code32
pm32:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl $0x10000, %esi
    movl $0x100000, %edi
    movl $(127 * 512 / 4), %ecx
    cld
    rep movsl
    xorl %ebx, %ebx
    movl $0x100000, %eax
    jmp *%eax

msg: .asciz "mbr: disk read failed\r\n"
drive: .byte 0
    .balign 4
dap:
    .byte 0x10, 0
    .word 127               /* sectors */
    .word 0, 0x1000         /* offset, segment: 0x10000 */
    .quad 1                 /* first LBA */
    .balign 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
gdtr:
    .word 23
    .long gdt

    .org 510
    .word 0xaa55

    .section .note.GNU-stack, "", @progbits
