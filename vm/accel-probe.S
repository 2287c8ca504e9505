# The accelerator probe of `ifstress vm` (src/vm/accel.rs): a 64 KiB
# firmware image QEMU maps below 4 GiB (-bios). It walks the modes a guest
# kernel needs (real, protected, long with paging) and says on COM1 how far
# it got: "R", "P", "L", then "IFSTRESS-PROBE". A vCPU that printed the
# last has run guest code in every mode; one that stops earlier (a KVM that
# opens but does not run a vCPU in protected mode) is no accelerator.
#
# src/vm/accel.rs holds the bytes; its test reassembles this file:
#   as --64 -o probe.o accel-probe.S
#   ld -m elf_x86_64 -e 0 -Ttext=0 --oformat binary -o probe.bin probe.o
        .set BASE, 0xFFFF0000       # where the image's first byte is
        .code16
start:
        cli
        mov $0x3f8, %dx             # COM1's data register (QEMU needs no setup)
        mov $'R', %al
        out %al, %dx
        xor %ax, %ax
        mov %ax, %ds
        lgdtl %cs:gdtr              # CS's base is BASE after reset
        mov %cr0, %eax
        or $1, %eax                 # PE
        mov %eax, %cr0
        ljmpl $0x08, $(BASE + pm32)
        .code32
pm32:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $'P', %al
        out %al, %dx
        # Page tables in RAM at 0x1000-0x4fff, zeroed first.
        mov $0x1000, %edi
        xor %eax, %eax
        mov $0x1000, %ecx
        rep stosl
        movl $0x2003, 0x1000          # PML4[0] -> PDPT
        movl $0x3003, 0x2000          # PDPT[0] -> PD of 0-1 GiB
        movl $0x4003, 0x2018          # PDPT[3] -> PD of 3-4 GiB
        movl $0x00000083, 0x3000      # 2 MiB page at 0
        movl $0xFFE00083, 0x4ff8      # 2 MiB page at 0xFFE00000 (this code)
        mov %cr4, %eax
        or $0x20, %eax                # PAE
        mov %eax, %cr4
        mov $0x1000, %eax
        mov %eax, %cr3
        mov $0xC0000080, %ecx         # EFER
        rdmsr
        or $0x100, %eax               # LME
        wrmsr
        mov %cr0, %eax
        or $0x80000000, %eax          # PG
        mov %eax, %cr0
        ljmp $0x18, $(BASE + lm64)
        .code64
lm64:
        mov $0x3f8, %dx               # rdmsr took EDX
        mov $'L', %al
        out %al, %dx
        lea msg(%rip), %rsi
1:      lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:      cli
        hlt
        jmp 2b
msg:    .asciz "\nIFSTRESS-PROBE\n"
        .balign 8
gdt:    .quad 0
        .quad 0x00CF9A000000FFFF      # 0x08 code, 32-bit, flat
        .quad 0x00CF92000000FFFF      # 0x10 data, flat
        .quad 0x00AF9A000000FFFF      # 0x18 code, 64-bit
gdtr:   .word gdtr - gdt - 1
        .long BASE + gdt
        .org 0xFFF0, 0xF4
        .code16
reset:  jmp start                     # the reset vector, 0xFFFFFFF0
        .org 0x10000, 0xF4
