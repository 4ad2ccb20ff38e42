//! Logging through the host's `log` import, the one capability every plugin has.
//!
//! The host rate-limits these lines and tags them with the plugin and consumer. Compiled for
//! the host machine (unit tests), lines go to stderr and are kept for
//! [`crate::testing::take_logs`] instead, since there is no host to import from.

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    imp::log(level, message)
}

pub fn trace(message: &str) {
    log(Level::Trace, message)
}

pub fn debug(message: &str) {
    log(Level::Debug, message)
}

pub fn info(message: &str) {
    log(Level::Info, message)
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

pub fn error(message: &str) {
    log(Level::Error, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::types::LogLevel;
    use crate::bindings::validator::maestro::plugin::host;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use std::cell::RefCell;

    use super::Level;

    thread_local! {
        static LINES: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn log(level: Level, message: &str) {
        eprintln!("[plugin {level:?}] {message}");
        LINES.with(|lines| lines.borrow_mut().push((level, message.to_owned())));
    }

    pub fn take() -> Vec<(Level, String)> {
        LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
    }
}
