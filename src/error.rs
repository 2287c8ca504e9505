//! Errors every layer may raise and only the command line maps to exit
//! codes: the ground floor, importing nothing of the crate.

/// A mistake in how ifstress was called, or input it cannot use: the
/// command line exits 2 with this one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
