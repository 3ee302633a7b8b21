//! `oneport::fuzzing::https_proxy` under libFuzzer (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oneport::fuzzing::https_proxy(data));
