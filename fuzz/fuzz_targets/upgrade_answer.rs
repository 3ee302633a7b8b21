//! `oneport::fuzzing::upgrade_answer` under libFuzzer (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oneport::fuzzing::upgrade_answer(data));
