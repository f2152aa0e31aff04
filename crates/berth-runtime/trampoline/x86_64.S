/*
 * berth-runtime's exec trampoline (x86_64, no libc). The container's process execs this from a
 * sealed memfd instead of exec'ing its program straight from the runtime's image, so that no
 * process in the container ever runs with the runtime binary as /proc/self/exe (the
 * CVE-2019-5736 class); see crates/berth-runtime/src/trampoline.rs.
 *
 *   argv = [argv0, PATH, CHANNEL_FD, program argv...]
 *
 * Marks CHANNEL_FD close-on-exec, then execve(PATH, &argv[3], envp). If that fails it sends the
 * packet [TAG_EXEC_FAILED, errno as u32 LE] on CHANNEL_FD (MSG_NOSIGNAL); if nobody can read it
 * there, it writes "berth-runtime: exec PATH failed: errno N" to stderr. Then it exits 1. If CHANNEL_FD cannot be made
 * close-on-exec, it does not exec at all (errno of fcntl is reported the same way). With fewer
 * than three arguments (run as the interpreter of a `#!/proc/self/exe` script) it exits 127.
 */
#define TAG_EXEC_FAILED 13
#define SYS_write 1
#define SYS_sendto 44
#define SYS_execve 59
#define SYS_fcntl 72
#define SYS_exit_group 231
#define F_SETFD 2
#define FD_CLOEXEC 1
#define MSG_NOSIGNAL 0x4000

    .globl _start
    .text
_start:
    mov     (%rsp), %r12            /* argc */
    cmp     $3, %r12                /* run any other way (e.g. as a script's interpreter */
    jb      misused                 /* through /proc/self/exe): do nothing */
    mov     16(%rsp), %r13          /* argv[1]: PATH */
    mov     24(%rsp), %rsi          /* argv[2]: CHANNEL_FD, decimal */
    xor     %r14d, %r14d
parse:
    movzbl  (%rsi), %eax
    test    %al, %al
    jz      parsed
    sub     $'0', %eax
    imul    $10, %r14, %r14
    add     %rax, %r14
    inc     %rsi
    jmp     parse
parsed:
    mov     $SYS_fcntl, %eax
    mov     %r14, %rdi
    mov     $F_SETFD, %esi
    mov     $FD_CLOEXEC, %edx
    syscall
    test    %rax, %rax
    js      failed
    mov     $SYS_execve, %eax
    mov     %r13, %rdi
    lea     32(%rsp), %rsi          /* &argv[3] */
    lea     16(%rsp,%r12,8), %rdx   /* envp: after argv's NULL */
    syscall
failed:
    neg     %eax
    mov     %eax, %r15d             /* errno */
    sub     $32, %rsp
    movb    $TAG_EXEC_FAILED, (%rsp)
    mov     %r15d, 1(%rsp)
    mov     $SYS_sendto, %eax
    mov     %r14, %rdi
    mov     %rsp, %rsi
    mov     $5, %edx
    mov     $MSG_NOSIGNAL, %r10d
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    syscall
    test    %rax, %rax
    jns     exit_failed             /* the runtime got it and reports it */
    /* nobody reads the channel (after `create`): "berth-runtime: exec PATH failed: errno N" */
    mov     $SYS_write, %eax
    mov     $2, %edi
    lea     prefix(%rip), %rsi
    mov     $prefix_len, %edx
    syscall
    xor     %edx, %edx              /* strlen(PATH) */
length:
    cmpb    $0, (%r13,%rdx)
    je      measured
    inc     %rdx
    jmp     length
measured:
    mov     $SYS_write, %eax
    mov     $2, %edi
    mov     %r13, %rsi
    syscall
    mov     $SYS_write, %eax
    mov     $2, %edi
    lea     suffix(%rip), %rsi
    mov     $suffix_len, %edx
    syscall
    lea     31(%rsp), %rsi          /* digits are written backwards from the end */
    movb    $'\n', (%rsi)
    mov     %r15d, %eax
    mov     $10, %ecx
digits:
    xor     %edx, %edx
    div     %ecx
    add     $'0', %dl
    dec     %rsi
    mov     %dl, (%rsi)
    test    %eax, %eax
    jnz     digits
    lea     32(%rsp), %rdx
    sub     %rsi, %rdx              /* length */
    mov     $SYS_write, %eax
    mov     $2, %edi
    syscall
exit_failed:
    mov     $SYS_exit_group, %eax
    mov     $1, %edi
    syscall

misused:
    mov     $SYS_exit_group, %eax
    mov     $127, %edi
    syscall

    .section .rodata
prefix:
    .ascii  "berth-runtime: exec "
    .set    prefix_len, . - prefix
suffix:
    .ascii  " failed: errno "
    .set    suffix_len, . - suffix
