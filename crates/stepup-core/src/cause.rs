//! `Cause`: the error behind another error, kept whole so `source()` walks the real chain.
//!
//! stepup's errors are `Clone` and `Eq` (they sit in flow states and tests compare them), which a boxed error is
//! not; `Cause` shares the error behind an `Arc` and compares by its message. Only what carries no secret goes
//! in one (a transport error without its URL, a signer's failure, a spawn failure).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// An error kept as the source of another.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error`.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A cause that is only a message (for implementors with nothing better to give).
    pub fn message(message: impl Into<String>) -> Self {
        Self(Arc::new(Message(message.into())))
    }

    /// `error`, under a line that says what was being done: the line is the cause's message, and `error` its
    /// source.
    pub fn context(what: impl Into<String>, error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(Context { what: what.into(), error: Box::new(error) }))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The cause's own source, so the chain goes on past it.
impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// By message: two causes that say the same are the same to a caller.
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

#[derive(Debug)]
struct Context {
    what: String,
    error: Box<dyn Error + Send + Sync + 'static>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_goes_on_past_the_cause() {
        let cause = Cause::new(Outer(std::io::Error::other("inner")));
        assert_eq!(cause.to_string(), "outer");
        assert_eq!(cause.source().unwrap().to_string(), "inner");
        assert_eq!(cause, Cause::message("outer"), "compared by message");
        assert_ne!(cause, Cause::message("other"));
        let wrapped = Cause::context("reading the answer", std::io::Error::other("eof"));
        assert_eq!(wrapped.to_string(), "reading the answer");
        assert_eq!(wrapped.source().unwrap().to_string(), "eof");
    }
}
