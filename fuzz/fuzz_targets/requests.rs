//! Request frames in both encodings and handshake hellos: decoding never
//! panics or overflows the stack, and whatever decodes encodes back to
//! something that decodes to the same request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use milestones_protocol::handshake::decode_handshake;
use milestones_protocol::{codec, Encoding, Hello, RequestFrame};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Bincode, Encoding::Json] {
        let _ = codec::request_id(encoding, data);
        if let Ok(frame) = codec::decode::<RequestFrame>(encoding, data) {
            let again = codec::encode(encoding, &frame).expect("a decoded request encodes");
            let back = codec::decode::<RequestFrame>(encoding, &again).expect("an encoded request decodes");
            // NaN is the one value unequal to itself.
            if format!("{frame:?}") == format!("{back:?}") {
                continue;
            }
            assert_eq!(frame, back, "{encoding:?} round trip");
        }
    }
    let _ = decode_handshake::<Hello>(data);
});
