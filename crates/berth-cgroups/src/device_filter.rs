//! Device rules on cgroup v2: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`, built from
//! `linux.resources.devices` the way runc's devicefilter builds it, and attached to the cgroup.
//!
//! The program reads the request (`struct bpf_cgroup_dev_ctx`: access_type = access << 16 |
//! type, major, minor), then tries the rules last to first: the first that matches decides
//! (return 1 allows, 0 denies), which is the v1 semantics of applying the rules in order. A
//! request no rule matches is allowed, as a new v1 cgroup inherits its parent's "a *:* rwm".

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::Error;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// Encode one `struct bpf_insn`.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst & 0xf) << 8)
        | (u64::from(src & 0xf) << 12)
        | (u64::from(off as u16) << 16)
        | (u64::from(imm as u32) << 32)
}

const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const AND32_K: u8 = 0x54; // w_dst &= imm
const RSH32_K: u8 = 0x74; // w_dst >>= imm
const MOV64_X: u8 = 0xbf; // r_dst = r_src
const MOV64_K: u8 = 0xb7; // r_dst = imm
const JNE_K: u8 = 0x55; // if r_dst != imm goto +off
const JNE_X: u8 = 0x5d; // if r_dst != r_src goto +off
const EXIT: u8 = 0x95;

/// The access bits of an access string ("rwm" or a subset).
fn access_mask(rule: &LinuxDeviceCgroup) -> Result<i32, Error> {
    let text = rule.access().clone().unwrap_or_else(|| "rwm".into());
    let mut mask = 0;
    for c in text.chars() {
        mask |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(Error::unsupported(
                    "linux.resources.devices.access",
                    &format!("invalid access {text:?}"),
                ))
            }
        };
    }
    Ok(mask)
}

/// A conditional jump: (opcode, dst register, src register, immediate); its offset is filled
/// in once the rule's length is known.
type Jump = (u8, u8, u8, i32);

/// The instructions of one rule: jumps to its end when it does not match. The flag says the
/// rule matches every request (no checks), so nothing after it can run.
fn rule_block(rule: &LinuxDeviceCgroup) -> Result<(Vec<u64>, bool), Error> {
    // Each check: (instructions before the jump, the jump's code/dst/src/imm).
    let mut checks: Vec<(Vec<u64>, Jump)> = Vec::new();
    match rule.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => {
            checks.push((vec![], (JNE_K, 2, 0, DEV_CHAR)))
        }
        Some(LinuxDeviceType::B) => checks.push((vec![], (JNE_K, 2, 0, DEV_BLOCK))),
        Some(LinuxDeviceType::P) => {
            return Err(Error::unsupported(
                "linux.resources.devices.type",
                "fifo devices cannot be filtered",
            ))
        }
        Some(LinuxDeviceType::A) | None => {}
    }
    let mask = access_mask(rule)?;
    if mask != ACC_READ | ACC_WRITE | ACC_MKNOD {
        // Matches when the requested access is a subset of the rule's.
        checks.push((
            vec![insn(MOV64_X, 1, 3, 0, 0), insn(AND32_K, 1, 0, 0, mask)],
            (JNE_X, 1, 3, 0),
        ));
    }
    if let Some(major) = rule.major().filter(|m| *m >= 0) {
        checks.push((vec![], (JNE_K, 4, 0, major as i32)));
    }
    if let Some(minor) = rule.minor().filter(|m| *m >= 0) {
        checks.push((vec![], (JNE_K, 5, 0, minor as i32)));
    }
    let catch_all = checks.is_empty();
    let tail = [
        insn(MOV64_K, 0, 0, 0, i32::from(rule.allow())),
        insn(EXIT, 0, 0, 0, 0),
    ];
    let total: usize = checks.iter().map(|(pre, _)| pre.len() + 1).sum::<usize>() + tail.len();
    let mut out = Vec::with_capacity(total);
    for (pre, (code, dst, src, imm)) in checks {
        out.extend(pre);
        let remaining = total - out.len() - 1;
        out.push(insn(code, dst, src, remaining as i16, imm));
    }
    out.extend(tail);
    Ok((out, catch_all))
}

/// The whole program for `rules`.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<u64>, Error> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let (block, catch_all) = rule_block(rule)?;
        prog.extend(block);
        // The verifier rejects unreachable instructions.
        if catch_all {
            return Ok(prog);
        }
    }
    prog.push(insn(MOV64_K, 0, 0, 0, 1));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

/// Load the program and attach it to the cgroup directory `dir`.
pub fn attach(dir: &Path, prog: &[u64]) -> Result<(), Error> {
    let fail = |path: PathBuf, source: std::io::Error| Error::Write {
        path,
        value: "BPF_CGROUP_DEVICE program".into(),
        source,
    };
    let fd = berth_sys::bpf_load_cgroup_device(prog).map_err(|e| fail(dir.to_path_buf(), e))?;
    let cgroup = std::fs::File::open(dir).map_err(|e| fail(dir.to_path_buf(), e))?;
    berth_sys::bpf_attach_cgroup_device(cgroup.as_fd(), fd.as_fd())
        .map_err(|e| fail(dir.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.into()));
        r
    }

    /// A tiny interpreter for the instructions we emit, to check the program's decisions.
    fn run(prog: &[u64], typ: i32, access: i32, major: i32, minor: i32) -> u64 {
        let ctx = [((access << 16) | typ) as u32, major as u32, minor as u32];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (code, dst, src) = (
                (i & 0xff) as u8,
                ((i >> 8) & 0xf) as usize,
                ((i >> 12) & 0xf) as usize,
            );
            let off = ((i >> 16) & 0xffff) as u16 as i16;
            let imm = (i >> 32) as u32 as i32;
            pc += 1;
            match code {
                LDX_W => r[dst] = u64::from(ctx[off as usize / 4]),
                AND32_K => r[dst] = (r[dst] as u32 & imm as u32) as u64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> imm) as u64,
                MOV64_X => r[dst] = r[src],
                MOV64_K => r[dst] = imm as i64 as u64,
                JNE_K if r[dst] != imm as i64 as u64 => pc += off as usize,
                JNE_X if r[dst] != r[src] => pc += off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn deny_all_then_allow_null() {
        let prog = program(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::C, None, None, "m"),
        ])
        .unwrap();
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3),
            1,
            "/dev/null rw"
        );
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 5), 0, "/dev/zero r");
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_MKNOD, 10, 229),
            1,
            "mknod of any char device"
        );
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_MKNOD, 8, 0),
            0,
            "mknod of a block device"
        );
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 0, "block read");
    }

    #[test]
    fn partial_access_and_default_allow() {
        let prog = program(&[rule(false, LinuxDeviceType::C, Some(1), Some(3), "w")]).unwrap();
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 7, 0), 1);
    }

    #[test]
    fn the_kernel_verifier_accepts_the_program() {
        let prog = program(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::C, None, None, "m"),
            rule(true, LinuxDeviceType::B, Some(8), None, "r"),
        ])
        .unwrap();
        match berth_sys::bpf_load_cgroup_device(&prog) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(EPERM) => {
                eprintln!("skipped: not allowed to load BPF programs: {e}")
            }
            Err(e) => panic!("verifier rejected the program: {e}"),
        }
    }

    const EPERM: i32 = 1;

    #[test]
    fn bad_access_is_refused() {
        assert!(program(&[rule(true, LinuxDeviceType::C, None, None, "rx")]).is_err());
    }
}
