//! Everything orderctl prints on stdout goes through [`out!`] and [`outln!`], which
//! return a `Result` instead of panicking like `print!` and `println!` do when a write
//! fails.
//!
//! A reader that stops early (`orderctl list | head -1`) closes the pipe, and the
//! next write fails with `BrokenPipe`: Rust ignores `SIGPIPE`, so the process is not
//! killed as a C program would be. The error travels up with `?` like any other, and
//! `main` asks [`reader_left`] once: if so, the output is no longer wanted and the
//! command ends quietly with exit status 0. Any other failed write (a full disk, a
//! closed descriptor) is a [`StdoutError`] and ends as one line on stderr, exit 1.

use std::fmt;
use std::io::{self, Write as _};

/// A write to stdout that failed; the I/O error is its source.
#[derive(Debug)]
pub struct StdoutError(io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot write to stdout")
    }
}

impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Writes `args` to stdout. Use [`out!`] rather than calling this.
pub fn write(args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    io::stdout().lock().write_fmt(args).map_err(StdoutError)
}

/// Writes `args` and a newline to stdout, under one lock so that the line stays
/// whole. Use [`outln!`] rather than calling this.
pub fn line(args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .map_err(StdoutError)
}

/// Flushes what stdout still buffers (a last line without its newline). `main` calls
/// it once at the end, because the flush when the process exits drops its errors.
pub fn flush() -> Result<(), StdoutError> {
    io::stdout().lock().flush().map_err(StdoutError)
}

/// Whether `error` is a write to stdout that failed because the reader went away.
/// Only a [`StdoutError`] counts: a broken pipe to the database is a real failure.
pub fn reader_left(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<StdoutError>())
        .any(|StdoutError(io)| io.kind() == io::ErrorKind::BrokenPipe)
}

/// `print!` that returns `Result<(), StdoutError>` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` that returns `Result<(), StdoutError>` instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::{StdoutError, reader_left};
    use std::io;

    #[test]
    fn only_a_broken_pipe_on_stdout_means_the_reader_left() {
        let closed = StdoutError(io::ErrorKind::BrokenPipe.into());
        assert!(reader_left(&anyhow::Error::new(closed).context("listing")));
        let full = StdoutError(io::Error::other("disk full"));
        let full = anyhow::Error::new(full);
        assert!(!reader_left(&full));
        assert_eq!(crate::one_line(&full), "cannot write to stdout: disk full");
        let database = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(!reader_left(&anyhow::Error::new(database)));
    }
}
