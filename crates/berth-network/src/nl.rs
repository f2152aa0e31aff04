//! A minimal synchronous rtnetlink socket: requests with ACKs, batches and dumps.
//!
//! Errors are plain `io::Error`s (the kernel's errno); callers wrap them with context.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Size of the receive buffer; the kernel never sends a datagram larger than this for rtnetlink dumps.
const RECV_BUF: usize = 64 * 1024;

/// One rtnetlink socket, bound in the network namespace of the thread that opened it.
pub(crate) struct Nl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Nl {
    /// Open a NETLINK_ROUTE socket in the calling thread's netns.
    pub(crate) fn open() -> io::Result<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.set_ext_ack(true)?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nl {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Send one request (`flags` are added to REQUEST|ACK) and wait for its ACK.
    pub(crate) fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.batch(vec![(msg, flags)]).map_err(|(_, e)| e)
    }

    /// Send several requests in one datagram, then collect every ACK.
    /// The kernel runs them in order; the first failure is returned with its index.
    pub(crate) fn batch(
        &mut self,
        msgs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> Result<(), (usize, io::Error)> {
        let first = self.seq.wrapping_add(1);
        let count = msgs.len();
        let mut out = Vec::new();
        for (msg, flags) in msgs {
            self.append(&mut out, msg, NLM_F_REQUEST | NLM_F_ACK | flags);
        }
        self.sock.send(&out, 0).map_err(|e| (0, e))?;
        let mut first_err: Option<(usize, io::Error)> = None;
        let mut acked = 0;
        while acked < count {
            let msgs = self.recv().map_err(|e| (acked, e))?;
            for (seq, payload) in msgs {
                if let NetlinkPayload::Error(err) = payload {
                    acked += 1;
                    if err.code.is_some() && first_err.is_none() {
                        let idx = seq.wrapping_sub(first) as usize;
                        first_err = Some((idx, err.to_io()));
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Send a single get request (REQUEST|ACK) and return the replies that precede its ACK.
    pub(crate) fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        self.append(&mut out, msg, NLM_F_REQUEST | NLM_F_ACK);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            for (_, payload) in self.recv()? {
                match payload {
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Error(e) => {
                        return e.code.map_or(Ok(replies), |_| Err(e.to_io()));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Send a dump request and collect every reply until NLMSG_DONE.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        self.append(&mut out, msg, NLM_F_REQUEST | NLM_F_DUMP);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            for (_, payload) in self.recv()? {
                match payload {
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    _ => {}
                }
            }
        }
    }

    fn append(&mut self, out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16) {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let start = out.len();
        out.resize(start + packet.buffer_len(), 0);
        packet.serialize(&mut out[start..]);
    }

    /// Read one datagram and decode the messages it holds as (sequence, payload).
    fn recv(&mut self) -> io::Result<Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)>> {
        self.buf.clear();
        let len = self.sock.recv(&mut self.buf, 0)?;
        let mut offset = 0;
        let mut msgs = Vec::new();
        while offset < len.min(self.buf.len()) {
            let bytes = &self.buf[offset..];
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let msg_len = msg.header.length as usize;
            if msg_len == 0 {
                break;
            }
            offset += (msg_len + 3) & !3;
            msgs.push((msg.header.sequence_number, msg.payload));
        }
        Ok(msgs)
    }
}
