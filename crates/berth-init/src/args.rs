//! The command line: `berth-init [--] PROGRAM [ARGS...]`, plus `-h`/`--help` and `--version`.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run this argument vector (program first) under supervision.
    Run(Vec<CString>),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// The usage text for `--help` and usage errors.
pub const USAGE: &str = "berth-init [--] PROGRAM [ARGS...]";

/// Errors in the command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// Nothing to run.
    #[error("usage: no program given ({USAGE})")]
    NoProgram,
    /// An option berth-init does not know, before the program.
    #[error("usage: unknown option {option} ({USAGE})")]
    UnknownOption {
        /// The option as given.
        option: String,
    },
    /// An argument with a NUL byte cannot be passed to execvp.
    #[error("usage: argument {index} contains a NUL byte")]
    Nul {
        /// Position of the argument after the program name (0 is the program).
        index: usize,
    },
}

/// Parses the arguments after `argv[0]`. Options are only recognised before the program; the
/// first non-option (or whatever follows `--`) is the program, and everything after it is
/// passed through untouched.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, ArgsError> {
    let mut args = args.into_iter().peekable();
    match args.peek().map(|a| a.to_string_lossy().into_owned()) {
        None => return Err(ArgsError::NoProgram),
        Some(first) if first == "--" => {
            args.next();
        }
        Some(first) if first == "-h" || first == "--help" => return Ok(Invocation::Help),
        Some(first) if first == "--version" => return Ok(Invocation::Version),
        Some(first) if first.len() > 1 && first.starts_with('-') => {
            return Err(ArgsError::UnknownOption { option: first })
        }
        Some(_) => {}
    }
    let argv = args
        .enumerate()
        .map(|(index, arg)| CString::new(arg.into_vec()).map_err(|_| ArgsError::Nul { index }))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.is_empty() {
        return Err(ArgsError::NoProgram);
    }
    Ok(Invocation::Run(argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Invocation, ArgsError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Invocation {
        Invocation::Run(args.iter().map(|a| CString::new(*a).unwrap()).collect())
    }

    #[test]
    fn program_with_and_without_double_dash() {
        assert_eq!(
            parse_strs(&["sh", "-c", "true"]),
            Ok(run(&["sh", "-c", "true"]))
        );
        assert_eq!(
            parse_strs(&["--", "sh", "--", "-x"]),
            Ok(run(&["sh", "--", "-x"]))
        );
        assert_eq!(parse_strs(&["--", "-weird"]), Ok(run(&["-weird"])));
    }

    #[test]
    fn nothing_to_run_is_a_usage_error() {
        assert_eq!(parse_strs(&[]), Err(ArgsError::NoProgram));
        assert_eq!(parse_strs(&["--"]), Err(ArgsError::NoProgram));
    }

    #[test]
    fn options_before_the_program() {
        assert_eq!(parse_strs(&["-h"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&["--help", "x"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&["--version"]), Ok(Invocation::Version));
        assert_eq!(
            parse_strs(&["-s", "sh"]),
            Err(ArgsError::UnknownOption {
                option: "-s".into()
            })
        );
        // A lone "-" is a program name, as for getopt.
        assert_eq!(parse_strs(&["-"]), Ok(run(&["-"])));
    }

    #[test]
    fn nul_in_an_argument() {
        let args = [OsString::from("sh"), OsString::from_vec(b"a\0b".to_vec())];
        assert_eq!(parse(args), Err(ArgsError::Nul { index: 1 }));
    }
}
