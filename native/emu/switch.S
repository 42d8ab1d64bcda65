// Fiber switch for the CUDA emulator (x86-64 System V): saves the callee-saved registers and the
// stack pointer of the running context in *save_sp, then continues the context at new_sp.
//   void cae_emu_switch(void** save_sp /* rdi */, void* new_sp /* rsi */)
    .text
    .globl cae_emu_switch
    .hidden cae_emu_switch
    .type cae_emu_switch, @function
cae_emu_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size cae_emu_switch, .-cae_emu_switch

// The first code a new fiber runs: calls cae_emu_fiber_main (which never returns).
    .globl cae_emu_fiber_start
    .hidden cae_emu_fiber_start
    .type cae_emu_fiber_start, @function
cae_emu_fiber_start:
    .cfi_startproc
    .cfi_undefined rip
    andq $-16, %rsp
    call cae_emu_fiber_main@PLT
    ud2
    .cfi_endproc
    .size cae_emu_fiber_start, .-cae_emu_fiber_start

    .section .note.GNU-stack,"",@progbits
