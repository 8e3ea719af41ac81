//! A scripted [`Prober`] double for tests and the demo: each WAN (or one target of a WAN)
//! behaves as told (answers after an RTT, stays silent, returns an ICMP error) until told
//! otherwise. It never touches the network; time passes only through `tokio::time::sleep`, so it
//! runs exactly under a paused clock. It does not decide *when* behaviour changes: the caller does.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use uplinkd::health::ProbeResult;
use uplinkd::probe::Prober;
use uplinkd::types::LinkId;

/// How probes through a path behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Every probe is answered after this round-trip time (or lost if it exceeds the wait).
    Reply { rtt: Duration },
    /// Nothing comes back (a dead upstream).
    Silent,
    /// An ICMP error comes back at once (unreachable).
    IcmpError,
    /// The send fails at once (interface down).
    SendFailed,
}

/// The scripted prober. Cheap to share (`Arc`); behaviour changes apply to the next probe.
#[derive(Debug)]
pub struct ScriptedProber {
    default: Behaviour,
    /// Per (WAN, target) overrides; `None` target means every target of the WAN.
    rules: Mutex<HashMap<(LinkId, Option<Ipv4Addr>), Behaviour>>,
    /// `usize`, not `u64`: armv5te (EN7562CT routers) has no 64-bit atomics.
    sent: AtomicUsize,
}

impl ScriptedProber {
    /// Every path behaves as `default` until changed.
    pub fn new(default: Behaviour) -> Self {
        Self {
            default,
            rules: Mutex::new(HashMap::new()),
            sent: AtomicUsize::new(0),
        }
    }

    /// Sets the behaviour of every target of `link` (clearing per-target overrides).
    pub fn set(&self, link: &LinkId, behaviour: Behaviour) {
        let mut rules = self.lock();
        rules.retain(|(l, _), _| l != link);
        rules.insert((link.clone(), None), behaviour);
    }

    /// Sets the behaviour of one target of `link` (e.g. one of two monitors dead).
    pub fn set_target(&self, link: &LinkId, target: Ipv4Addr, behaviour: Behaviour) {
        self.lock().insert((link.clone(), Some(target)), behaviour);
    }

    /// The behaviour a probe to `target` through `link` gets now.
    pub fn behaviour(&self, link: &LinkId, target: Ipv4Addr) -> Behaviour {
        let rules = self.lock();
        rules
            .get(&(link.clone(), Some(target)))
            .or_else(|| rules.get(&(link.clone(), None)))
            .copied()
            .unwrap_or(self.default)
    }

    /// Probes performed so far.
    pub fn probes_sent(&self) -> u64 {
        u64::try_from(self.sent.load(Ordering::Relaxed)).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(LinkId, Option<Ipv4Addr>), Behaviour>> {
        // A panic while holding this lock can only come from a bug in this file's short critical
        // sections; the map is still consistent, so recover it rather than propagate.
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Prober for ScriptedProber {
    async fn probe(
        &self,
        link: &LinkId,
        target: Ipv4Addr,
        _seq: u16,
        max_wait: Duration,
    ) -> ProbeResult {
        self.sent.fetch_add(1, Ordering::Relaxed);
        match self.behaviour(link, target) {
            Behaviour::Reply { rtt } if rtt <= max_wait => {
                tokio::time::sleep(rtt).await;
                ProbeResult::Reply { rtt }
            }
            Behaviour::Reply { .. } | Behaviour::Silent => {
                tokio::time::sleep(max_wait).await;
                ProbeResult::NoReply
            }
            Behaviour::IcmpError => ProbeResult::IcmpError,
            Behaviour::SendFailed => ProbeResult::SendFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_the_script() {
        let p = ScriptedProber::new(Behaviour::Reply {
            rtt: Duration::from_millis(20),
        });
        let isp1 = LinkId::new("ISP1");
        let t1 = Ipv4Addr::new(198, 18, 0, 1);
        let t2 = Ipv4Addr::new(198, 18, 0, 2);
        let wait = Duration::from_secs(1);
        assert_eq!(
            p.probe(&isp1, t1, 0, wait).await,
            ProbeResult::Reply {
                rtt: Duration::from_millis(20)
            }
        );
        p.set_target(&isp1, t2, Behaviour::Silent);
        let start = tokio::time::Instant::now();
        assert_eq!(p.probe(&isp1, t2, 1, wait).await, ProbeResult::NoReply);
        assert_eq!(start.elapsed(), wait);
        assert!(matches!(
            p.probe(&isp1, t1, 2, wait).await,
            ProbeResult::Reply { .. }
        ));
        p.set(&isp1, Behaviour::IcmpError);
        assert_eq!(p.probe(&isp1, t2, 3, wait).await, ProbeResult::IcmpError);
        p.set(
            &isp1,
            Behaviour::Reply {
                rtt: Duration::from_secs(2),
            },
        );
        assert_eq!(p.probe(&isp1, t1, 4, wait).await, ProbeResult::NoReply);
        assert_eq!(p.probes_sent(), 5);
    }
}
