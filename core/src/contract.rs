//! Caller-contract checks: [`contract!`] is `assert!` whose message is kept only where it can be read.

/// Panics when `$cond` is false (a caller broke a documented contract: wrong lengths, a row out of range).
/// With the feature `panic-messages` (on with `std`; the firmware's `messages` turns it on) the panic carries
/// `$msg`, as `assert!(cond, msg)` would; without it a plain `panic!()`, so a build that never prints panic
/// messages (the lean firmware reports a panic's file and line only) stores none of them (0.7 KB of flash).
macro_rules! contract {
    ($cond:expr, $msg:literal $(,)?) => {
        if !$cond {
            #[cfg(feature = "panic-messages")]
            panic!($msg);
            #[cfg(not(feature = "panic-messages"))]
            panic!();
        }
    };
}
