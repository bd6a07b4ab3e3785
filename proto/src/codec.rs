//! The gRPC codec of every gNMI client and server built from this crate: prost, with small
//! starting buffers.
//!
//! tonic's default codec starts each stream's encode and decode buffers at 8 KiB. A gNMI
//! subscription stays open for the life of the process with one tiny request sent and
//! notifications of a few hundred bytes received, so at 10,000 targets those two buffers
//! alone were ~160 MiB (heaptrack, BENCHMARKS.md). Buffers still grow to fit any message;
//! they only start small.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::{Buf, Bytes};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Requests we send are a SubscriptionList, a Get or a SetRequest of a few paths.
const ENCODE_BUFFER: usize = 1024;
/// A notification is typically one leaf or one container of a few leaves.
const DECODE_BUFFER: usize = 2048;
/// tonic's default: yield to the runtime after this much encoded or decoded data.
const YIELD_THRESHOLD: usize = 32 * 1024;

pub struct GnmiCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for GnmiCodec<T, U> {
    fn default() -> Self {
        GnmiCodec(PhantomData)
    }
}

impl<T, U> Codec for GnmiCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::new(DECODE_BUFFER, YIELD_THRESHOLD))
    }
}

/// Sends `T` like [`GnmiCodec`] and hands each received message over still encoded, for a
/// reader that can tell from the bytes that a message needs no decoding (a heartbeat that
/// repeats the last notification).
pub struct RawCodec<T>(PhantomData<T>);

impl<T> Default for RawCodec<T> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<T> Codec for RawCodec<T>
where
    T: Message + Send + 'static,
{
    type Encode = T;
    type Decode = Bytes;
    type Encoder = ProstEncoder<T>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// One gRPC message's bytes, split off the receive buffer without a copy.
pub struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(DECODE_BUFFER, YIELD_THRESHOLD)
    }
}
