//! Reading captures as Wireshark's readers do: classic pcap (microsecond or
//! nanosecond, either byte order) and pcapng (sections, interfaces, every
//! timestamp resolution), record by record, bounded.
//!
//! What Wireshark accepts is accepted: a snap length of 0 or below a
//! packet's length, a captured length above the original length, timestamp
//! fractions out of range (carried into the seconds), unknown pcapng blocks
//! and options (skipped). What it refuses is refused: a file whose header
//! cannot be read is an error naming the file; a record that cannot be read
//! (truncated, larger than [`MAX_RECORD`], a packet on an interface never
//! described) stops the read, with its packet number, and the frames before
//! it are kept.

use std::io::Read;
use std::time::Duration;

use super::{Capture, CaptureError, Frame, Link};

/// The largest record read: a pcap record's captured length, a pcapng
/// block's total length (Wireshark's limits are 256 KiB packets and 16 MiB
/// blocks; a record past this is not a capture's).
pub const MAX_RECORD: usize = 16 << 20;

/// Reads a whole capture from `r` (`name` names it in errors).
pub fn read<R: Read>(r: R, name: &str) -> Result<Capture, CaptureError> {
    let mut c = CaptureReader::new(r, name)?;
    let mut frames = Vec::new();
    let mut data = Vec::new();
    while let Some(m) = c.next_into(&mut data) {
        frames.push(Frame {
            number: m.number,
            timestamp: m.timestamp,
            link: m.link,
            data: std::mem::take(&mut data),
        });
    }
    Ok(Capture {
        frames,
        stopped: c.take_stopped(),
    })
}

/// A frame's place and time, its bytes being where the caller asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// 1-based position in the file.
    pub number: usize,
    pub timestamp: Duration,
    pub link: Link,
}

/// A capture read record by record, in bounded memory: the file header
/// is read by [`CaptureReader::new`] (an error naming the file when it is
/// not a capture), then each [`CaptureReader::next_into`] appends one
/// frame's bytes to the caller's buffer. A record that cannot be read, or
/// an input that fails midway, ends the frames; [`CaptureReader::stopped`]
/// says why, naming the packet.
pub struct CaptureReader<R> {
    r: Reader<R>,
    format: Format,
    /// Frames given so far.
    given: usize,
    stopped: Option<String>,
    done: bool,
    /// A pcapng block's body (reused).
    block: Vec<u8>,
}

enum Format {
    Pcap {
        order: Order,
        nanos: bool,
        link: Link,
    },
    Pcapng {
        order: Order,
        interfaces: Vec<Interface>,
    },
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header of `r` (`name` names it in errors).
    pub fn new(r: R, name: &str) -> Result<Self, CaptureError> {
        let mut r = Reader {
            inner: r,
            name: name.to_string(),
            consumed: 0,
        };
        let mut magic = [0u8; 4];
        let got = r.fill(&mut magic)?;
        if got < 4 {
            return Err(CaptureError::TooShort {
                file: name.to_string(),
                got,
            });
        }
        let format = if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            Format::Pcapng {
                order: section_order(&mut r, magic)?,
                interfaces: Vec::new(),
            }
        } else {
            pcap_header(&mut r, magic)?
        };
        Ok(CaptureReader {
            r,
            format,
            given: 0,
            stopped: None,
            done: false,
            block: Vec::new(),
        })
    }

    /// The file's name, as errors give it.
    pub fn name(&self) -> &str {
        &self.r.name
    }

    /// Bytes read from the input so far.
    pub fn consumed(&self) -> u64 {
        self.r.consumed
    }

    /// Why reading stopped before the input's end, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// [`CaptureReader::stopped`], taken.
    pub fn take_stopped(&mut self) -> Option<String> {
        self.stopped.take()
    }

    /// The next frame: its bytes appended to `data`, its number, time and
    /// link returned; `None` at the end of the input or once a record could
    /// not be read (then [`CaptureReader::stopped`] says why).
    pub fn next_into(&mut self, data: &mut Vec<u8>) -> Option<Meta> {
        if self.done {
            return None;
        }
        let number = self.given + 1;
        let start = data.len();
        let got = match self.format {
            Format::Pcap { .. } => self.pcap_record(number, data),
            Format::Pcapng { .. } => self.pcapng_packet(number, data),
        };
        match got {
            Ok(Some(m)) => {
                self.given = number;
                Some(m)
            }
            Ok(None) => {
                self.done = true;
                data.truncate(start);
                None
            }
            Err(why) => {
                self.done = true;
                data.truncate(start);
                self.stopped = stop(&self.r.name, number, why);
                None
            }
        }
    }

    /// One pcap record; `Ok(None)` at the end of the input.
    fn pcap_record(&mut self, number: usize, data: &mut Vec<u8>) -> Result<Option<Meta>, String> {
        let Format::Pcap { order, nanos, link } = self.format else {
            return Ok(None);
        };
        let mut rec = [0u8; 16];
        match self.r.fill(&mut rec).map_err(|e| cause(&e))? {
            0 => return Ok(None),
            16 => {}
            n => return Err(format!("truncated record header ({n} of 16 bytes)")),
        }
        let secs = u64::from(order.u32(&rec[0..4]));
        let frac = u64::from(order.u32(&rec[4..8]));
        let caplen = order.u32(&rec[8..12]) as usize;
        if caplen > MAX_RECORD {
            return Err(format!(
                "captured length {caplen} exceeds the largest record read ({MAX_RECORD} bytes)"
            ));
        }
        let start = data.len();
        data.resize(start + caplen, 0);
        let got = self.r.fill(&mut data[start..]).map_err(|e| cause(&e))?;
        if got < caplen {
            return Err(format!("truncated record ({got} of {caplen} bytes)"));
        }
        // A fraction of a second out of range is carried into the seconds.
        let timestamp = Duration::from_secs(secs)
            + if nanos {
                Duration::from_nanos(frac)
            } else {
                Duration::from_micros(frac)
            };
        Ok(Some(Meta {
            number,
            timestamp,
            link,
        }))
    }

    /// Blocks up to the next packet; `Ok(None)` at the end of the input.
    fn pcapng_packet(&mut self, number: usize, data: &mut Vec<u8>) -> Result<Option<Meta>, String> {
        loop {
            let Format::Pcapng { order, .. } = self.format else {
                return Ok(None);
            };
            let mut head = [0u8; 8];
            match self.r.fill(&mut head).map_err(|e| cause(&e))? {
                0 => return Ok(None),
                8 => {}
                n => return Err(format!("truncated block header ({n} of 8 bytes)")),
            }
            // A new section may change the byte order: its magic says which.
            let block = if head[0..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                Block::Section(section(&mut self.r, head)?)
            } else {
                pcapng_block(&mut self.r, order, head, &mut self.block)?
            };
            let Format::Pcapng { order, interfaces } = &mut self.format else {
                return Ok(None);
            };
            match block {
                Block::Section(o) => {
                    *order = o;
                    interfaces.clear();
                }
                Block::Interface(i) => interfaces.push(i),
                Block::Other => {}
                Block::Simple(range) => {
                    let Some(i) = interfaces.first() else {
                        return Err("a simple packet block before any interface description".into());
                    };
                    let mut bytes = &self.block[range];
                    if i.snaplen > 0 {
                        bytes = &bytes[..bytes.len().min(i.snaplen as usize)];
                    }
                    data.extend_from_slice(bytes);
                    return Ok(Some(Meta {
                        number,
                        timestamp: Duration::ZERO,
                        link: i.link,
                    }));
                }
                Block::Packet { iface, ts, range } => {
                    let Some(i) = interfaces.get(iface) else {
                        return Err(format!(
                            "interface {iface} was never described (no interface description block)"
                        ));
                    };
                    data.extend_from_slice(&self.block[range]);
                    return Ok(Some(Meta {
                        number,
                        timestamp: timestamp(ts, i),
                        link: i.link,
                    }));
                }
            }
        }
    }
}

/// An input error's cause, as a stopped read reports it.
fn cause(e: &CaptureError) -> String {
    match e {
        CaptureError::Io { cause, .. } => format!("reading failed: {cause}"),
        e => e.to_string(),
    }
}

/// A reader that counts what it consumed and never reads past a record.
struct Reader<R> {
    inner: R,
    name: String,
    consumed: u64,
}

impl<R: Read> Reader<R> {
    /// Fills `buf` as far as the input goes; the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, CaptureError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(cause) => {
                    return Err(CaptureError::Io {
                        file: self.name.clone(),
                        cause,
                    });
                }
            }
        }
        self.consumed += got as u64;
        Ok(got)
    }

    fn header_error(&self, format: &'static str, message: String) -> CaptureError {
        CaptureError::BadHeader {
            file: self.name.clone(),
            format,
            message,
        }
    }
}

/// Byte order of a pcap file or pcapng section.
#[derive(Clone, Copy)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Order::Little => u16::from_le_bytes(a),
            Order::Big => u16::from_be_bytes(a),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Order::Little => u32::from_le_bytes(a),
            Order::Big => u32::from_be_bytes(a),
        }
    }
}

/// A stopped read: `packet` is the 1-based number the unread record would
/// have had.
fn stop(name: &str, packet: usize, why: impl std::fmt::Display) -> Option<String> {
    Some(format!("{name}: packet {packet}: {why}"))
}

/// A pcap file header after its magic number.
fn pcap_header<R: Read>(r: &mut Reader<R>, magic: [u8; 4]) -> Result<Format, CaptureError> {
    let (order, nanos) = match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 => (Order::Little, false),
        0xa1b2_3c4d => (Order::Little, true),
        0xd4c3_b2a1 => (Order::Big, false),
        0x4d3c_b2a1 => (Order::Big, true),
        m => {
            return Err(r.header_error(
                "pcap",
                format!("not a pcap or pcapng file (magic number {m:#010x})"),
            ));
        }
    };
    let mut h = [0u8; 20];
    let got = r.fill(&mut h)?;
    if got < h.len() {
        return Err(r.header_error(
            "pcap",
            format!("the file header is {} bytes, 24 expected", got + 4),
        ));
    }
    let (major, minor) = (order.u16(&h[0..2]), order.u16(&h[2..4]));
    if major != 2 {
        return Err(CaptureError::Version {
            file: r.name.clone(),
            major,
            minor,
        });
    }
    // The link type is the low 16 bits; the rest holds FCS information.
    let link = Link::from_linktype(order.u32(&h[16..20]) & 0xffff);
    Ok(Format::Pcap { order, nanos, link })
}

/// An interface of a pcapng section.
struct Interface {
    link: Link,
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`).
    units: u128,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset: i64,
}

/// What a pcapng block yields.
enum Block {
    /// A packet whose bytes are `range` of the block's body.
    Packet {
        iface: usize,
        ts: u64,
        range: std::ops::Range<usize>,
    },
    /// A simple packet (bytes: `range` of the body): on interface 0, no
    /// timestamp, captured length bounded by that interface's snap length.
    Simple(std::ops::Range<usize>),
    Interface(Interface),
    Section(Order),
    Other,
}

/// A timestamp in an interface's units, as a time since the epoch (a
/// negative one, from `if_tsoffset`, is clamped to the epoch).
fn timestamp(ts: u64, i: &Interface) -> Duration {
    let nanos = u128::from(ts) * 1_000_000_000 / i.units.max(1);
    // (A u64 times 10^9 fits in a u128.)
    let secs = (nanos / 1_000_000_000) as i128 + i128::from(i.offset);
    let sub = (nanos % 1_000_000_000) as u32;
    if secs < 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(secs).unwrap_or(u64::MAX), sub)
}

/// The first section header block: anything unreadable there means the
/// file is not a pcapng file Wireshark would open.
fn section_order<R: Read>(r: &mut Reader<R>, magic: [u8; 4]) -> Result<Order, CaptureError> {
    let mut rest = [0u8; 4];
    if r.fill(&mut rest)? < 4 {
        return Err(r.header_error("pcapng", "truncated section header block".into()));
    }
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&magic);
    head[4..].copy_from_slice(&rest);
    section(r, head).map_err(|why| r.header_error("pcapng", why))
}

/// A section header block after its first 8 bytes (`head`): its byte order.
fn section<R: Read>(r: &mut Reader<R>, head: [u8; 8]) -> Result<Order, String> {
    let mut bom = [0u8; 4];
    if r.fill(&mut bom).map_err(|e| cause(&e))? < 4 {
        return Err("truncated section header block".into());
    }
    let order = match u32::from_le_bytes(bom) {
        0x1a2b_3c4d => Order::Little,
        0x4d3c_2b1a => Order::Big,
        m => {
            return Err(format!(
                "bad byte-order magic {m:#010x} in a section header"
            ));
        }
    };
    let total = order.u32(&head[4..8]) as usize;
    if total < 28 || !total.is_multiple_of(4) || total > MAX_RECORD {
        return Err(format!(
            "section header block of {total} bytes (28 to {MAX_RECORD}, a multiple of 4)"
        ));
    }
    let mut body = vec![0u8; total - 12];
    if r.fill(&mut body).map_err(|e| cause(&e))? < body.len() {
        return Err("truncated section header block".into());
    }
    let major = order.u16(&body[0..2]);
    if major != 1 {
        return Err(format!("unsupported pcapng version {major}"));
    }
    // Version (4) and section length (8) before the options; the block's
    // length is repeated at its end.
    options(order, &body[12..body.len() - 4], |_, _| Ok(()))?;
    check_trailer(order, &body, total)?;
    Ok(order)
}

/// The block length repeated at the end of `body` (the bytes after type
/// and length, through the trailer).
fn check_trailer(order: Order, body: &[u8], total: usize) -> Result<(), String> {
    let trailer = order.u32(&body[body.len() - 4..]) as usize;
    if trailer != total {
        return Err(format!(
            "block length {total} does not match its trailer {trailer}"
        ));
    }
    Ok(())
}

/// Walks a block's options (code, length, value padded to 4 bytes) until
/// `opt_endofopt` or the end; `each` sees every option's code and value.
fn options(
    order: Order,
    mut b: &[u8],
    mut each: impl FnMut(u16, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    while b.len() >= 4 {
        let code = order.u16(&b[0..2]);
        let len = usize::from(order.u16(&b[2..4]));
        if code == 0 {
            return Ok(());
        }
        let padded = len.div_ceil(4) * 4;
        if 4 + padded > b.len() {
            return Err(format!("option {code} of {len} bytes runs past its block"));
        }
        each(code, &b[4..4 + len])?;
        b = &b[4 + padded..];
    }
    Ok(())
}

/// An (enhanced) packet block's body after its interface field: the
/// timestamp (two 32-bit halves), captured and original lengths, the data.
fn packet_block(order: Order, iface: usize, body: &[u8]) -> Result<Block, String> {
    let ts = u64::from(order.u32(&body[4..8])) << 32 | u64::from(order.u32(&body[8..12]));
    let caplen = order.u32(&body[12..16]) as usize;
    if caplen > body.len() - 20 {
        return Err(format!("captured length {caplen} runs past its block"));
    }
    Ok(Block::Packet {
        iface,
        ts,
        range: 20..20 + caplen,
    })
}

/// One block after a section's first: its 8-byte head is read.
fn pcapng_block<R: Read>(
    r: &mut Reader<R>,
    order: Order,
    head: [u8; 8],
    body: &mut Vec<u8>,
) -> Result<Block, String> {
    let kind = order.u32(&head[0..4]);
    let total = order.u32(&head[4..8]) as usize;
    if total < 12 || !total.is_multiple_of(4) {
        return Err(format!(
            "block of {total} bytes (at least 12, a multiple of 4)"
        ));
    }
    if total > MAX_RECORD {
        return Err(format!(
            "block of {total} bytes exceeds the largest record read ({MAX_RECORD} bytes)"
        ));
    }
    body.clear();
    body.resize(total - 8, 0);
    let got = r.fill(body).map_err(|e| cause(&e))?;
    if got < body.len() {
        return Err(format!("truncated block ({} of {total} bytes)", got + 8));
    }
    check_trailer(order, body, total)?;
    let body = &body[..body.len() - 4];
    let short = |need: usize| -> Result<(), String> {
        if body.len() < need {
            Err(format!(
                "block type {kind:#x} of {total} bytes is too short"
            ))
        } else {
            Ok(())
        }
    };
    match kind {
        // Interface description.
        1 => {
            short(8)?;
            let mut i = Interface {
                link: Link::from_linktype(u32::from(order.u16(&body[0..2]))),
                snaplen: order.u32(&body[4..8]),
                units: 1_000_000,
                offset: 0,
            };
            options(order, &body[8..], |code, v| {
                match (code, v.len()) {
                    // if_tsresol: 10^-n, or 2^-n with the high bit set; a
                    // unit finer than a u128 counts holds makes every
                    // 64-bit timestamp less than a nanosecond.
                    (9, 1) => {
                        let (binary, n) = (v[0] & 0x80 != 0, u32::from(v[0] & 0x7f));
                        i.units = if binary {
                            1u128.checked_shl(n)
                        } else {
                            10u128.checked_pow(n)
                        }
                        .unwrap_or(u128::MAX);
                    }
                    // if_tsoffset: seconds.
                    (14, 8) => {
                        let lo = u64::from(order.u32(&v[0..4]));
                        let hi = u64::from(order.u32(&v[4..8]));
                        i.offset = match order {
                            Order::Little => (hi << 32 | lo) as i64,
                            Order::Big => (lo << 32 | hi) as i64,
                        };
                    }
                    _ => {}
                }
                Ok(())
            })?;
            Ok(Block::Interface(i))
        }
        // Enhanced packet: interface (32 bits), timestamp, lengths, data.
        6 => {
            short(20)?;
            packet_block(order, order.u32(&body[0..4]) as usize, body)
        }
        // Simple packet: the original length; the data fill the block.
        3 => {
            short(4)?;
            let orig = order.u32(&body[0..4]) as usize;
            Ok(Block::Simple(4..4 + orig.min(body.len() - 4)))
        }
        // Packet (obsolete): interface (16 bits), drops, then as above.
        2 => {
            short(20)?;
            packet_block(order, usize::from(order.u16(&body[0..2])), body)
        }
        // Name resolution, statistics, secrets, custom and unknown blocks.
        _ => Ok(Block::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian microsecond pcap: header with `snaplen`, then
    /// records of (seconds, fraction, captured bytes, original length).
    fn pcap(snaplen: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, snaplen, 1] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for (s, f, data, orig) in recs {
            for x in [*s, *f, data.len() as u32, *orig] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(data);
        }
        v
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let total = (12 + body.len().div_ceil(4) * 4) as u32;
        let mut v = kind.to_le_bytes().to_vec();
        v.extend_from_slice(&total.to_le_bytes());
        v.extend_from_slice(body);
        v.resize(total as usize - 4, 0);
        v.extend_from_slice(&total.to_le_bytes());
        v
    }

    fn shb() -> Vec<u8> {
        let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut v = block(0x0a0d_0d0a, &b);
        v[0..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        v
    }

    /// An Ethernet interface with options (code, value).
    fn idb(opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, 0, 0, 0, 0];
        for (code, val) in opts {
            b.extend_from_slice(&code.to_le_bytes());
            b.extend_from_slice(&(val.len() as u16).to_le_bytes());
            b.extend_from_slice(val);
            b.resize(b.len().div_ceil(4) * 4, 0);
        }
        block(1, &b)
    }

    fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for x in [
            iface,
            (ts >> 32) as u32,
            ts as u32,
            data.len() as u32,
            data.len() as u32,
        ] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b.extend_from_slice(data);
        block(6, &b)
    }

    fn read_bytes(b: &[u8]) -> Capture {
        read(b, "test").expect("a capture")
    }

    #[test]
    fn snap_lengths_and_lengths_out_of_order_do_not_stop_a_pcap() {
        // Snap length 0, and below the records' length; a captured length
        // above the original length (Wireshark reads all three).
        for snap in [0, 4] {
            let c = read_bytes(&pcap(
                snap,
                &[
                    (1, 0, &[1; 60], 60),
                    (2, 0, &[2; 60], 40),
                    (3, 0, &[3; 8], 8),
                ],
            ));
            assert_eq!(c.frames.len(), 3, "snaplen {snap}: {:?}", c.stopped);
            assert!(c.stopped.is_none());
            assert_eq!(c.frames[1].data, [2; 60]);
        }
    }

    #[test]
    fn a_fraction_out_of_range_is_carried_into_the_seconds() {
        let c = read_bytes(&pcap(0, &[(10, 1_500_000, &[0; 20], 20)]));
        assert_eq!(c.frames[0].timestamp, Duration::from_millis(11_500));
    }

    #[test]
    fn a_truncated_last_record_stops_with_its_number() {
        let mut b = pcap(0, &[(1, 0, &[1; 30], 30), (2, 0, &[2; 30], 30)]);
        b.truncate(b.len() - 5);
        let c = read_bytes(&b);
        assert_eq!(c.frames.len(), 1);
        let why = c.stopped.expect("stopped");
        assert!(
            why.contains("packet 2") && why.contains("truncated record (25 of 30 bytes)"),
            "{why}"
        );
        // A record larger than any capture's is refused the same way.
        let mut b = pcap(0, &[(1, 0, &[1; 30], 30)]);
        b[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        let why = read_bytes(&b).stopped.expect("stopped");
        assert!(
            why.contains("packet 1") && why.contains("largest record"),
            "{why}"
        );
    }

    #[test]
    fn pcapng_timestamps_follow_each_interface_resolution() {
        // Microseconds by default; nanoseconds (if_tsresol 9); 2^-10 s.
        let mut b = shb();
        b.extend(idb(&[]));
        b.extend(idb(&[(9, &[9])]));
        b.extend(idb(&[(9, &[0x80 | 10]), (0x8001, &[1, 2, 3])]));
        b.extend(epb(0, 1_500_000, &[1; 20]));
        b.extend(epb(1, 2_000_000_001, &[2; 20]));
        b.extend(epb(2, 3 * 1024 + 512, &[3; 20]));
        let c = read_bytes(&b);
        assert!(c.stopped.is_none(), "{:?}", c.stopped);
        let ts: Vec<Duration> = c.frames.iter().map(|f| f.timestamp).collect();
        assert_eq!(
            ts,
            [
                Duration::from_millis(1500),
                Duration::new(2, 1),
                Duration::from_millis(3500)
            ]
        );
    }

    #[test]
    fn unknown_blocks_are_skipped_and_an_undescribed_interface_stops() {
        let mut b = shb();
        b.extend(idb(&[]));
        b.extend(block(0x4000_0bad, &[7; 12]));
        b.extend(epb(0, 0, &[1; 20]));
        b.extend(epb(3, 0, &[1; 20]));
        let c = read_bytes(&b);
        assert_eq!(c.frames.len(), 1);
        let why = c.stopped.expect("stopped");
        assert!(
            why.contains("packet 2") && why.contains("interface 3"),
            "{why}"
        );
    }

    #[test]
    fn a_file_that_is_no_capture_is_an_error_naming_it() {
        for b in [
            &b"hello, this is not a capture"[..],
            &[0xd4, 0xc3, 0xb2][..],
        ] {
            let e = read(b, "some.pcap").expect_err("an error").to_string();
            assert!(e.starts_with("some.pcap: "), "{e}");
        }
    }
}
