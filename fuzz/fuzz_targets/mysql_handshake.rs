//! `oneport::fuzzing::mysql_handshake` under libFuzzer (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oneport::fuzzing::mysql_handshake(data));
