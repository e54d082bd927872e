//! AF_PACKET sockets for the fabric's ports: a receive ring (PACKET_MMAP,
//! TPACKET_V2) per reader, and plain send sockets.
//!
//! Why not pnet's datalink channel: it reads a frame with `poll` and
//! `recvfrom`, sends with `poll` and `sendto`, and binds every socket (a
//! sender's too) for all protocols, so each frame sent out of a port is
//! cloned to every socket on that port and wakes its readers. With it the
//! fabric forwards 0.20 Mpps of 64-byte frames per worker, against 0.5
//! wanted; with these, 0.78 (`vnetplane bench live`,
//! docs/performance.md). Here:
//!
//! - a reader maps a ring the kernel fills; a frame costs no system call
//!   while frames keep coming (`poll` only when the ring is empty), and
//!   the reader ignores frames going out of its port
//!   (`PACKET_IGNORE_OUTGOING`);
//! - a sender is bound to its port for no protocol, so nothing is ever
//!   queued to it, and sends each frame with one `send`, past the qdisc
//!   (`PACKET_QDISC_BYPASS`: veth has no queue to manage).
//!
//! This is the library's only `unsafe` code: the socket calls libc makes
//! available and the ring's shared memory.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Frames per receive ring, and their slot size (a header, then the frame:
/// Ethernet frames up to 1,500 bytes of payload fit whole).
const FRAMES: usize = 1024;
const FRAME_SIZE: usize = 2048;

/// `enum tpacket_versions`: the ring format with a header per frame.
const TPACKET_V2: libc::c_int = 1;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A packet socket for no protocol yet (it receives nothing until bound).
fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; a valid descriptor it
    // returns is owned by the `OwnedFd` from here on.
    let fd =
        check(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets an integer socket option at level SOL_PACKET.
fn set_int(fd: &OwnedFd, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: the pointer and length describe `val`, alive for the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Binds a packet socket to interface `ifindex` for `protocol` (network
/// order; 0: none, the socket only sends).
fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: the pointer and length describe `sll`, alive for the call.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A reader's receive ring on one interface.
pub struct RxRing {
    fd: OwnedFd,
    map: *mut u8,
    next: usize,
}

// SAFETY: the ring's mapping belongs to this value alone (no copy of the
// pointer escapes), so moving it to another thread moves its only user.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Opens a ring on interface `ifindex` for every protocol, ignoring
    /// frames going out; in fanout group `fanout` (hash of the flow) if
    /// given.
    pub fn open(ifindex: u32, fanout: Option<u16>) -> io::Result<RxRing> {
        let fd = packet_socket()?;
        set_int(&fd, libc::PACKET_VERSION, TPACKET_V2)?;
        let req = libc::tpacket_req {
            tp_block_size: (FRAME_SIZE * 16) as u32,
            tp_block_nr: (FRAMES / 16) as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: FRAMES as u32,
        };
        // SAFETY: the pointer and length describe `req`, alive for the call.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                (&raw const req).cast(),
                std::mem::size_of::<libc::tpacket_req>() as libc::socklen_t,
            )
        })?;
        // SAFETY: maps the ring the kernel just allocated for `fd` (its
        // size is frames × frame size); checked for MAP_FAILED below and
        // unmapped once, on drop.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FRAMES * FRAME_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = RxRing {
            fd,
            map: map.cast(),
            next: 0,
        };
        bind(&ring.fd, ifindex, (libc::ETH_P_ALL as u16).to_be())?;
        set_int(&ring.fd, libc::PACKET_IGNORE_OUTGOING, 1)?;
        if let Some(group) = fanout {
            let arg = u32::from(group) | (libc::PACKET_FANOUT_HASH << 16);
            set_int(&ring.fd, libc::PACKET_FANOUT, arg as libc::c_int)?;
        }
        Ok(ring)
    }

    /// The status word of slot `i`.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: slot `i` (< FRAMES) lies inside the mapping, which lives
        // as long as `self`; its first word is the 4-byte-aligned status
        // the kernel and this reader hand the slot back and forth with,
        // which is what atomics are for.
        unsafe { &*self.map.add(i * FRAME_SIZE).cast::<AtomicU32>() }
    }

    /// Hands the next frame to `f`, waiting up to `timeout_ms` for one;
    /// whether there was one. A frame cut short by the slot (longer than
    /// it holds) is handed cut: its IP header says so.
    pub fn next(&mut self, timeout_ms: i32, f: impl FnOnce(&[u8])) -> io::Result<bool> {
        let i = self.next;
        if self.status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            // SAFETY: one pollfd, alive for the call.
            match check(unsafe { libc::poll(&raw mut p, 1, timeout_ms) }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
                Err(e) => return Err(e),
            }
            if self.status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                return Ok(false);
            }
        }
        // SAFETY: the slot is the reader's (TP_STATUS_USER, read with
        // acquire ordering, so the kernel's writes are visible); its
        // header is a tpacket2_hdr at the slot's start, and `tp_mac` and
        // `tp_snaplen` are bounded below to the slot before the frame is
        // read.
        unsafe {
            let slot = self.map.add(i * FRAME_SIZE);
            let h = &*slot.cast::<libc::tpacket2_hdr>();
            let start = usize::from(h.tp_mac).min(FRAME_SIZE);
            let len = (h.tp_snaplen as usize).min(FRAME_SIZE - start);
            f(std::slice::from_raw_parts(slot.add(start), len));
        }
        self.status(i)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.next = (i + 1) % FRAMES;
        Ok(true)
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, unmapped once; nothing
        // refers to it after this value.
        unsafe {
            libc::munmap(self.map.cast(), FRAMES * FRAME_SIZE);
        }
    }
}

/// A sender on one interface: frames out, nothing in.
pub struct Tx {
    fd: OwnedFd,
}

impl Tx {
    pub fn open(ifindex: u32) -> io::Result<Tx> {
        let fd = packet_socket()?;
        bind(&fd, ifindex, 0)?;
        // Best effort: without it the frame goes through the (empty) qdisc.
        let _ = set_int(&fd, libc::PACKET_QDISC_BYPASS, 1);
        Ok(Tx { fd })
    }

    /// Sends one Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `frame`, alive for the
        // call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
