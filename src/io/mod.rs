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
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
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
    /// Flushing the output failed.
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

/// A pcapng writer with one interface (an Ethernet capture point) per name.
pub struct PcapNgOut<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: Vec<String>,
}

impl PcapNgOut<BufWriter<File>> {
    pub fn create(path: &Path) -> Result<Self, CaptureError> {
        let f = File::create(path).map_err(io_error(&path.display().to_string()))?;
        PcapNgOut::new(BufWriter::new(f))
    }
}

impl<W: Write> PcapNgOut<W> {
    pub fn new(w: W) -> Result<Self, CaptureError> {
        Ok(PcapNgOut {
            writer: PcapNgWriter::new(w).map_err(CaptureError::Write)?,
            interfaces: Vec::new(),
        })
    }

    /// The interface id for a capture point, describing it on first use.
    fn interface(&mut self, name: &str) -> Result<u32, CaptureError> {
        if let Some(i) = self.interfaces.iter().position(|n| n == name) {
            return Ok(i as u32);
        }
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
        let id = self.interface(name)?;
        let epb = EnhancedPacketBlock {
            interface_id: id,
            timestamp: ts,
            original_len: frame.len() as u32,
            data: Cow::Borrowed(frame),
            options: vec![
                EnhancedPacketOption::Comment(Cow::Borrowed(comment)),
                EnhancedPacketOption::Flags(if outbound { 2 } else { 1 }),
            ],
        };
        self.writer
            .write_pcapng_block(epb)
            .map_err(CaptureError::Write)?;
        Ok(())
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
}
