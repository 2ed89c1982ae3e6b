//! Fuzz target: see `lpc_fuzz::syslog_decode` for the invariants it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lpc_fuzz::syslog_decode(data));
