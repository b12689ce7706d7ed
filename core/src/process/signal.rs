//! Signals given by name ("TERM", "SIGKILL") or number ("9").

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal as runc does: case-insensitive name with or without the
/// SIG prefix, or a number.
pub fn parse(text: &str) -> Result<Signal> {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Signal(text.to_string()));
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::Signal(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").expect("9"), Signal::SIGKILL);
        assert_eq!(parse("term").expect("term"), Signal::SIGTERM);
        assert_eq!(parse("SIGUSR1").expect("usr1"), Signal::SIGUSR1);
        assert_eq!(parse("10").expect("10"), Signal::SIGUSR1);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
    }
}
