//! `opus_vad`: any packet read for its encoder's voice-activity flag
//! (`media::opus_vad::voice_activity`), as the mixer does with packets of senders that give no
//! RFC 6464 level. It must never panic, and says nothing for what carries no SILK layer.
#![no_main]

use audioroom::media::opus_vad::voice_activity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    let verdict = voice_activity(packet);
    assert_eq!(
        verdict,
        voice_activity(packet),
        "the same packet, another verdict"
    );
    match packet.first() {
        None => assert_eq!(verdict, None, "an empty packet"),
        Some(toc) if toc >> 3 >= 16 => assert_eq!(verdict, None, "CELT only: no SILK layer"),
        Some(toc) if toc & 3 == 3 => assert_eq!(verdict, None, "code 3 framing is not read"),
        Some(_) if packet.len() == 1 => assert_eq!(verdict, None, "a TOC byte alone"),
        Some(_) => {}
    }
});
