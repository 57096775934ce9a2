//! Errors that name the file, the line and column, the field path and the reason, rendered like
//! a compiler's: `config/aws.toml:23:9: tunnel[1].lifetimes.child: 4000 s is above AWS's limit
//! of 3600 s`.
//!
//! No message built in this crate ever contains a secret value: secret references are
//! deserialized by a custom visitor that never echoes what it was given, TOML errors are
//! rendered from their message and span only (never with the source line, which could hold an
//! inline secret), and secret-content checks (AWS PSK rules) describe the rule, not the value.

use std::fmt;
use std::ops::Range;

/// A position in a configuration file (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        // Move back to a char boundary so slicing cannot panic.
        let mut offset = offset;
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or origin name given to [`crate::Config::from_str`]).
    pub origin: String,
    pub location: Location,
    /// Field path such as `tunnel[1].lifetimes.child`; empty for whole-file problems.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.origin, self.location.line, self.location.column
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// All the problems found in one file, in file order. Its `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.errors.iter()
    }
    pub fn len(&self) -> usize {
        self.errors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects errors while a file is checked.
pub(crate) struct Diagnostics<'a> {
    pub origin: &'a str,
    pub text: &'a str,
    pub errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(origin: &'a str, text: &'a str) -> Self {
        Diagnostics {
            origin,
            text,
            errors: Vec::new(),
        }
    }

    pub fn loc(&self, span: &Range<usize>) -> Location {
        Location::of_offset(self.text, span.start)
    }

    pub fn error(
        &mut self,
        span: &Range<usize>,
        path: impl Into<String>,
        reason: impl Into<String>,
    ) {
        let location = self.loc(span);
        self.errors.push(ConfigError {
            origin: self.origin.to_string(),
            location,
            path: path.into(),
            reason: reason.into(),
        });
    }

    pub fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        // File order; the sort is stable so errors at one place keep their check order.
        self.errors.sort_by_key(|e| e.location);
        self.errors.dedup();
        Err(ConfigErrors {
            errors: self.errors,
        })
    }
}
