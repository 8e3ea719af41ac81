//! `uplinkd probe`: one probe path tried by hand, through the same device- and source-bound
//! socket code the daemon uses for a WAN. For checking a veth after install ("does ISP2's path
//! answer?"), and for checking a cross-built binary under qemu. It never touches routes: the
//! path must already route (as it does on the router, or in a lab).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::icmp::{self, IcmpPath, IcmpProber, KindPreference};
use super::netns;
use super::{Prober, Tally};
use crate::health::ProbeResult;
use crate::types::LinkId;

/// What to probe, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Interface to bind to; `None`: the interface that holds `source`.
    pub interface: Option<String>,
    pub source: Ipv4Addr,
    pub target: Ipv4Addr,
    pub count: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub kind: KindPreference,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no interface in this namespace holds {0}; pass --interface")]
    NoInterface(Ipv4Addr),
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error(transparent)]
    Icmp(#[from] icmp::Error),
    #[error("{target}: no reply to any of {sent} probes")]
    NoReply { target: Ipv4Addr, sent: u32 },
}

/// What came back, like ping's summary but with errors and send failures apart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub tally: Tally,
    /// The replies' round-trip times, in order.
    pub rtts: Vec<Duration>,
    /// From the start of [`run`] (sockets not yet open) to the first reply.
    pub first_reply: Option<Duration>,
}

impl Summary {
    fn count(&mut self, result: ProbeResult, since_start: Duration) {
        self.tally.count(&result);
        if let ProbeResult::Reply { rtt } = result {
            self.first_reply.get_or_insert(since_start);
            self.rtts.push(rtt);
        }
    }

    /// The last line of the output: counts, RTT min/avg/max, time to the first reply.
    pub fn line(&self) -> String {
        let t = &self.tally;
        let sent = t.total();
        // Probes without evidence are neither replies nor losses.
        let judged = sent - t.no_evidence;
        let loss = 100.0 * f64::from(judged - t.replies) / f64::from(judged.max(1));
        let mut out = format!(
            "{sent} sent, {} replies, {} ICMP errors, {} send failures, {} unanswered ({loss:.0} % loss)",
            t.replies, t.icmp_errors, t.send_failures, t.no_reply
        );
        if t.no_evidence > 0 {
            let _ = write!(out, "; {} without evidence", t.no_evidence);
        }
        if let (Some(min), Some(max)) = (self.rtts.iter().min(), self.rtts.iter().max()) {
            let avg = self.rtts.iter().sum::<Duration>() / self.rtts.len() as u32;
            let _ = write!(
                out,
                "; rtt min/avg/max {}/{}/{} ms",
                ms(*min),
                ms(avg),
                ms(*max)
            );
        }
        if let Some(first) = self.first_reply {
            let _ = write!(out, "; first reply {} ms after start", ms(first));
        }
        out
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// One line per probe result.
fn result_line(seq: u16, target: Ipv4Addr, result: ProbeResult) -> String {
    match result {
        ProbeResult::Reply { rtt } => format!("seq={seq} {target}: reply, rtt {} ms", ms(rtt)),
        ProbeResult::IcmpError => format!("seq={seq} {target}: ICMP error (unreachable or TTL)"),
        ProbeResult::SendFailed => format!("seq={seq} {target}: send failed"),
        ProbeResult::NoReply => format!("seq={seq} {target}: no reply"),
        ProbeResult::NoEvidence => format!("seq={seq} {target}: no evidence (prober fault)"),
    }
}

/// Opens the bound socket and sends `count` echoes, writing a line per result to `out`.
/// Must run inside a tokio runtime. `Err(NoReply)` when nothing answered.
pub async fn run(request: &Request, mut out: impl FnMut(&str)) -> Result<Summary, Error> {
    let start = crate::clock::mono();
    let device = match &request.interface {
        Some(d) => d.clone(),
        None => netns::interface_addresses()?
            .into_iter()
            .find(|a| a.address == request.source)
            .map(|a| a.device)
            .ok_or(Error::NoInterface(request.source))?,
    };
    let link = LinkId::new("probe");
    let path = IcmpPath {
        link: link.clone(),
        device,
        source: request.source,
    };
    let prober = IcmpProber::new(std::slice::from_ref(&path), request.kind)?;
    out(&format!(
        "probing {} from {} on {} ({:?} ICMP socket)",
        request.target,
        path.source,
        path.device,
        prober.kind()
    ));
    let mut summary = Summary::default();
    let mut ticker = tokio::time::interval(request.interval);
    for seq in 1..=request.count.max(1) {
        ticker.tick().await;
        let result = prober
            .probe(&link, request.target, seq, request.timeout)
            .await;
        summary.count(result, start.elapsed());
        out(&result_line(seq, request.target, result));
    }
    out(&summary.line());
    if summary.rtts.is_empty() {
        return Err(Error::NoReply {
            target: request.target,
            sent: summary.tally.total(),
        });
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_each_outcome_apart() {
        let mut s = Summary::default();
        let t = Duration::from_millis;
        s.count(ProbeResult::NoReply, t(1000));
        s.count(ProbeResult::Reply { rtt: t(20) }, t(1100));
        s.count(ProbeResult::IcmpError, t(1200));
        s.count(ProbeResult::Reply { rtt: t(40) }, t(1300));
        s.count(ProbeResult::SendFailed, t(1400));
        assert_eq!(s.first_reply, Some(t(1100)));
        assert_eq!(
            s.line(),
            "5 sent, 2 replies, 1 ICMP errors, 1 send failures, 1 unanswered (60 % loss); \
             rtt min/avg/max 20.000/30.000/40.000 ms; first reply 1100.000 ms after start"
        );
    }

    #[test]
    fn a_silent_path_has_no_rtt_in_its_summary() {
        let mut s = Summary::default();
        s.count(ProbeResult::NoReply, Duration::from_secs(1));
        assert_eq!(
            s.line(),
            "1 sent, 0 replies, 0 ICMP errors, 0 send failures, 1 unanswered (100 % loss)"
        );
    }
}
