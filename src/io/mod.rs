//! Captures in and out: pcap (microsecond or nanosecond, either byte order)
//! and pcapng (any number of interfaces and sections) read as Wireshark
//! reads them ([`read`]); pcapng written through `pcap-file` with one
//! interface per capture point and a comment per packet.
//!
//! Reading never panics: a broken header is an error naming the file; a
//! broken record stops the read and is reported with its packet number, and
//! the frames before it are kept.

pub mod azure;
pub mod read;

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

/// Link-layer types vnetplane reads (tcpdump.org LINKTYPE_ values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Raw IPv4 or IPv6 (LINKTYPE_RAW, IPV4, IPV6).
    Raw,
    /// Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    Other(u32),
}

impl Link {
    /// The link of a capture's LINKTYPE_ value.
    pub fn from_linktype(v: u32) -> Link {
        Link::from_datalink(DataLink::from(v))
    }

    fn from_datalink(d: DataLink) -> Link {
        match d {
            DataLink::ETHERNET => Link::Ethernet,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Link::Raw,
            DataLink::LINUX_SLL => Link::LinuxSll,
            DataLink::LINUX_SLL2 => Link::LinuxSll2,
            other => Link::Other(u32::from(other)),
        }
    }
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// 1-based position in the file.
    pub number: usize,
    pub timestamp: Duration,
    pub link: Link,
    pub data: Vec<u8>,
}

impl Frame {
    /// The frame, borrowed.
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef {
            number: self.number,
            timestamp: self.timestamp,
            link: self.link,
            data: &self.data,
        }
    }
}

/// A captured frame whose bytes live elsewhere (a chunk of a streamed
/// capture, a [`Frame`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// 1-based position in the file.
    pub number: usize,
    pub timestamp: Duration,
    pub link: Link,
    pub data: &'a [u8],
}

/// What a read produced: the frames, and the error that stopped it early.
#[derive(Debug)]
pub struct Capture {
    pub frames: Vec<Frame>,
    pub stopped: Option<String>,
}

/// Why a capture could not be read or written. Reading errors name the
/// file; a record that stops a read midway is not an error but
/// [`Capture::stopped`].
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The cause is in the message, once (not also as a `source`, which
    /// a `{:#}` print would repeat).
    #[error("{file}: {cause}")]
    Io { file: String, cause: std::io::Error },
    #[error("{file}: not a capture: {got} bytes, too short for a pcap or pcapng header")]
    TooShort { file: String, got: usize },
    #[error("{file}: bad {format} header: {message}")]
    BadHeader {
        file: String,
        format: &'static str,
        message: String,
    },
    #[error("{file}: unsupported pcap version {major}.{minor} (only 2.x exists)")]
    Version {
        file: String,
        major: u16,
        minor: u16,
    },
    /// Writing a block failed (the caller knows the file's name; the
    /// cause is the source, printed once after this).
    #[error("writing pcapng")]
    Write(#[source] pcap_file::PcapError),
    /// Writing or flushing the output failed.
    #[error("writing pcapng")]
    Flush(#[source] std::io::Error),
}

fn io_error(file: &str) -> impl FnOnce(std::io::Error) -> CaptureError + '_ {
    move |cause| CaptureError::Io {
        file: file.to_string(),
        cause,
    }
}

/// Reads a pcap or pcapng file (told apart by their magic numbers); see
/// [`read`] for what is accepted.
pub fn read_capture(path: &Path) -> Result<Capture, CaptureError> {
    let name = path.display().to_string();
    let f = File::open(path).map_err(io_error(&name))?;
    read::read(BufReader::new(f), &name)
}

/// A pcapng writer with one interface (an Ethernet capture point) per name
/// or per capture point number. The section is little-endian; packets are
/// enhanced packet blocks, encoded by [`encode_epb`] (where the pipeline's
/// workers encode them, in parallel) and written whole.
pub struct PcapNgOut<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: Vec<String>,
    /// Interface of each capture point number (`u32::MAX`: none yet).
    points: Vec<u32>,
    scratch: Vec<u8>,
}

impl PcapNgOut<BufWriter<File>> {
    pub fn create(path: &Path) -> Result<Self, CaptureError> {
        let f = File::create(path).map_err(io_error(&path.display().to_string()))?;
        PcapNgOut::new(BufWriter::new(f))
    }
}

/// The largest option value pcapng holds (its length is 16 bits).
const MAX_OPTION: usize = u16::MAX as usize;

/// Appends an enhanced packet block for [`PcapNgOut`]'s little-endian
/// section: interface 0 (the writer sets the real one), a nanosecond
/// timestamp, the frame, its comment (cut at 65,535 bytes, on a character
/// boundary) and its direction (flags 1 inbound, 2 outbound).
pub fn encode_epb(out: &mut Vec<u8>, ts: Duration, frame: &[u8], comment: &str, outbound: bool) {
    let mut cut = comment.len().min(MAX_OPTION);
    while !comment.is_char_boundary(cut) {
        cut -= 1;
    }
    let comment = &comment[..cut];
    let pad = |n: usize| n.div_ceil(4) * 4;
    let (fl, cl) = (pad(frame.len()), pad(comment.len()));
    let total = 28 + fl + 4 + cl + 8 + 4 + 4;
    let start = out.len();
    // One zero-filled extension (the padding stays zero), then the fields
    // in place: no growth check per field.
    out.resize(start + total, 0);
    let b = &mut out[start..];
    let ns = u64::try_from(ts.as_nanos()).unwrap_or(u64::MAX);
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let head = [
        6u32,
        total as u32,
        0,
        (ns >> 32) as u32,
        ns as u32,
        len,
        len,
    ];
    for (k, x) in head.iter().enumerate() {
        b[4 * k..4 * k + 4].copy_from_slice(&x.to_le_bytes());
    }
    b[28..28 + frame.len()].copy_from_slice(frame);
    let o = 28 + fl;
    b[o..o + 2].copy_from_slice(&1u16.to_le_bytes());
    b[o + 2..o + 4].copy_from_slice(&(comment.len() as u16).to_le_bytes());
    b[o + 4..o + 4 + comment.len()].copy_from_slice(comment.as_bytes());
    let o = o + 4 + cl;
    b[o..o + 2].copy_from_slice(&2u16.to_le_bytes());
    b[o + 2..o + 4].copy_from_slice(&4u16.to_le_bytes());
    b[o + 4..o + 8].copy_from_slice(&(if outbound { 2u32 } else { 1 }).to_le_bytes());
    // opt_endofopt: four zero bytes, left as filled.
    b[total - 4..].copy_from_slice(&(total as u32).to_le_bytes());
}

/// Sets the interface of a block [`encode_epb`] encoded.
pub fn set_epb_interface(block: &mut [u8], id: u32) {
    if let Some(b) = block.get_mut(8..12) {
        b.copy_from_slice(&id.to_le_bytes());
    }
}

impl<W: Write> PcapNgOut<W> {
    pub fn new(w: W) -> Result<Self, CaptureError> {
        Ok(PcapNgOut {
            writer: PcapNgWriter::with_endianness(w, pcap_file::Endianness::Little)
                .map_err(CaptureError::Write)?,
            interfaces: Vec::new(),
            points: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Describes a new interface; its id.
    fn describe(&mut self, name: &str) -> Result<u32, CaptureError> {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(name.to_string())),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        self.writer
            .write_pcapng_block(idb)
            .map_err(CaptureError::Write)?;
        self.interfaces.push(name.to_string());
        Ok((self.interfaces.len() - 1) as u32)
    }

    /// Writes one Ethernet frame on interface `name`, with a comment and the
    /// direction (1 = inbound, 2 = outbound) in the EPB flags.
    pub fn write(
        &mut self,
        name: &str,
        ts: Duration,
        frame: &[u8],
        comment: &str,
        outbound: bool,
    ) -> Result<(), CaptureError> {
        let id = match self.interfaces.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => self.describe(name)?,
        };
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        encode_epb(&mut block, ts, frame, comment, outbound);
        let r = self.raw(id, &block);
        self.scratch = block;
        r
    }

    /// Whether capture point `point` has its interface described.
    pub fn has_interface(&self, point: u32) -> bool {
        self.points
            .get(point as usize)
            .is_some_and(|&id| id != u32::MAX)
    }

    /// The interface of capture point `point` (described on first use,
    /// named by `name`).
    pub fn interface_of<'n>(
        &mut self,
        point: u32,
        name: impl FnOnce() -> &'n str,
    ) -> Result<u32, CaptureError> {
        let k = point as usize;
        if k >= self.points.len() {
            self.points.resize(k + 1, u32::MAX);
        }
        Ok(match self.points[k] {
            u32::MAX => {
                let id = self.describe(name())?;
                self.points[k] = id;
                id
            }
            id => id,
        })
    }

    /// Writes blocks [`encode_epb`] encoded whose interfaces are set
    /// ([`set_epb_interface`], with ids from [`PcapNgOut::interface_of`]).
    pub fn write_encoded(&mut self, blocks: &[u8]) -> Result<(), CaptureError> {
        self.writer
            .get_mut()
            .write_all(blocks)
            .map_err(CaptureError::Flush)
    }

    /// A block with its interface id set.
    fn raw(&mut self, id: u32, block: &[u8]) -> Result<(), CaptureError> {
        let w = self.writer.get_mut();
        w.write_all(&block[..8])
            .and_then(|()| w.write_all(&id.to_le_bytes()))
            .and_then(|()| w.write_all(&block[12..]))
            .map_err(CaptureError::Flush)
    }

    pub fn finish(self) -> Result<W, CaptureError> {
        let mut w = self.writer.into_inner();
        w.flush().map_err(CaptureError::Flush)?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};

    #[test]
    fn pcapng_round_trip() {
        let mut out = PcapNgOut::new(Vec::new()).unwrap();
        out.write(
            "nic a",
            Duration::from_micros(5),
            &[1, 2, 3, 4],
            "hop 1",
            true,
        )
        .unwrap();
        out.write("nic b", Duration::from_micros(6), &[5, 6], "hop 2", false)
            .unwrap();
        out.write("nic a", Duration::from_micros(7), &[7], "hop 3", true)
            .unwrap();
        let bytes = out.finish().unwrap();
        let dir = std::env::temp_dir().join(format!("vnetplane-io-{}.pcapng", std::process::id()));
        std::fs::write(&dir, &bytes).unwrap();
        let c = read_capture(&dir).unwrap();
        assert!(c.stopped.is_none());
        assert_eq!(c.frames.len(), 3);
        assert_eq!(c.frames[1].data, vec![5, 6]);
        assert_eq!(c.frames[2].timestamp, Duration::from_micros(7));
        let _ = std::fs::remove_file(dir);
    }

    /// The blocks written by hand are the blocks `pcap-file` writes, byte
    /// for byte, and Wireshark's reader (tshark, in the integration tests)
    /// reads them.
    #[test]
    fn an_encoded_block_is_pcap_files_block() {
        for (frame, comment) in [(&[1u8, 2, 3, 4, 5][..], "hop 1 → ü"), (&[9; 8][..], "")] {
            let mut ours = Vec::new();
            encode_epb(
                &mut ours,
                Duration::new(1_700_000_000, 123_456_789),
                frame,
                comment,
                true,
            );
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::new(1_700_000_000, 123_456_789),
                original_len: frame.len() as u32,
                data: Cow::Borrowed(frame),
                options: vec![
                    EnhancedPacketOption::Comment(Cow::Borrowed(comment)),
                    EnhancedPacketOption::Flags(2),
                ],
            };
            let mut w =
                PcapNgWriter::with_endianness(Vec::new(), pcap_file::Endianness::Little).unwrap();
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![],
            })
            .unwrap();
            let head = w.get_ref().len();
            w.write_pcapng_block(epb).unwrap();
            let theirs = w.into_inner()[head..].to_vec();
            assert_eq!(ours, theirs, "comment {comment:?}");
        }
        // A comment past the option's limit is cut, on a character boundary.
        let long = "é".repeat(40_000);
        let mut b = Vec::new();
        encode_epb(&mut b, Duration::ZERO, &[0; 4], &long, false);
        let len = u16::from_le_bytes([b[34], b[35]]) as usize;
        assert_eq!(len, 65_534);
        assert_eq!(b.len() % 4, 0);
    }
}
