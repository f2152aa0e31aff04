//! The command line: `berth-init [--] PROGRAM [ARGS...]`, plus `-h`/`--help` and `--version`.

use core::ffi::CStr;

use crate::msg::Msg;

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run the arguments from this index on (program first) under supervision.
    Run(usize),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// The usage text for `--help` and usage errors.
pub const USAGE: &str = "berth-init [--] PROGRAM [ARGS...]";

/// Errors in the command line.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError<'a> {
    /// Nothing to run.
    NoProgram,
    /// An option berth-init does not know, before the program.
    UnknownOption {
        /// The option as given.
        option: &'a CStr,
    },
}

impl ArgsError<'_> {
    /// Appends the message (without the `berth-init: ` prefix).
    pub fn describe(&self, msg: &mut Msg) {
        match self {
            ArgsError::NoProgram => msg.str("usage: no program given ("),
            ArgsError::UnknownOption { option } => {
                msg.str("usage: unknown option ").cstr(option).str(" (")
            }
        }
        .str(USAGE)
        .str(")");
    }
}

/// Parses the arguments after `argv[0]`. Options are only recognised before the program; the
/// first non-option (or whatever follows `--`) is the program, and everything after it is
/// passed through untouched. [`Invocation::Run`] has the program's index in `args`.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a CStr>) -> Result<Invocation, ArgsError<'a>> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(ArgsError::NoProgram);
    };
    match first.to_bytes() {
        b"--" => match args.next() {
            None => Err(ArgsError::NoProgram),
            Some(_) => Ok(Invocation::Run(1)),
        },
        b"-h" | b"--help" => Ok(Invocation::Help),
        b"--version" => Ok(Invocation::Version),
        // A lone "-" is a program name, as for getopt.
        option if option.len() > 1 && option.starts_with(b"-") => {
            Err(ArgsError::UnknownOption { option: first })
        }
        _ => Ok(Invocation::Run(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs<'a>(args: &[&'a CStr]) -> Result<Invocation, ArgsError<'a>> {
        parse(args.iter().copied())
    }

    #[test]
    fn program_with_and_without_double_dash() {
        assert_eq!(parse_strs(&[c"sh", c"-c", c"true"]), Ok(Invocation::Run(0)));
        assert_eq!(
            parse_strs(&[c"--", c"sh", c"--", c"-x"]),
            Ok(Invocation::Run(1))
        );
        assert_eq!(parse_strs(&[c"--", c"-weird"]), Ok(Invocation::Run(1)));
    }

    #[test]
    fn nothing_to_run_is_a_usage_error() {
        assert_eq!(parse_strs(&[]), Err(ArgsError::NoProgram));
        assert_eq!(parse_strs(&[c"--"]), Err(ArgsError::NoProgram));
    }

    #[test]
    fn options_before_the_program() {
        assert_eq!(parse_strs(&[c"-h"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&[c"--help", c"x"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&[c"--version"]), Ok(Invocation::Version));
        assert_eq!(
            parse_strs(&[c"-s", c"sh"]),
            Err(ArgsError::UnknownOption { option: c"-s" })
        );
        assert_eq!(parse_strs(&[c"-"]), Ok(Invocation::Run(0)));
    }

    #[test]
    fn messages() {
        let mut m = Msg::new();
        ArgsError::UnknownOption { option: c"-x" }.describe(&mut m);
        assert_eq!(
            m.as_bytes(),
            b"usage: unknown option -x (berth-init [--] PROGRAM [ARGS...])"
        );
        let mut m = Msg::new();
        ArgsError::NoProgram.describe(&mut m);
        assert!(m.as_bytes().starts_with(b"usage: no program given ("));
    }
}
