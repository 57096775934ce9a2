//! Feeds arbitrary datagrams to a responder [`Listener`] (the state machine an attacker on the
//! internet reaches first): input = records of `flags:u8 len:u16 bytes`, flag bit 0 = NAT-T
//! port, bit 1 = advance the clock 10 s and run the timers. Nothing may panic.
//! tests/responder_corpus.rs replays the corpus (fuzz/corpus/responder/).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/responder_driver.rs"]
mod responder_driver;

fuzz_target!(|data: &[u8]| {
    responder_driver::run(data);
});
