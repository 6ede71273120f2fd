#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| idgate::fuzz::TARGETS
    .iter()
    .find(|(name, _)| *name == "query")
    .expect("a target of idgate::fuzz::TARGETS")
    .1(data));
