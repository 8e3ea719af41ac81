//! The effective configuration as text for `uplinkd check`: every resolved value, defaults
//! included, in the same TOML layout the file uses, so a reader can compare and copy. Secrets
//! print as `***` (the `Secret` type guarantees it). Pure.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::health::HealthFile;
use super::*;

fn q(s: &str) -> String {
    // Debug quoting escapes quotes, backslashes and control characters: valid TOML basic strings
    // for everything the resolver lets through.
    format!("{s:?}")
}

fn dur(d: Duration) -> String {
    q(&humantime::format_duration(d).to_string())
}

fn ip_list(ips: &[Ipv4Addr]) -> String {
    let items: Vec<String> = ips.iter().map(|i| q(&i.to_string())).collect();
    format!("[{}]", items.join(", "))
}

fn str_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", items.join(", "))
}

pub(super) fn render(c: &Config) -> String {
    let mut o = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        o,
        "# uplinkd effective configuration: every value in force, defaults included."
    );
    let _ = writeln!(o, "# Secrets are shown as ***.");
    let _ = writeln!(o, "state_dir = {}", q(&c.state_dir.display().to_string()));

    let _ = writeln!(o, "\n[router]");
    let version = match c.router.version {
        RouterOsVersion::V7_20 => "7.20",
        RouterOsVersion::V7_21 => "7.21",
    };
    let mode = match c.router.mode {
        Mode::Container => "container",
        Mode::Remote => "remote",
    };
    let apply_base = match c.router.apply_base {
        ApplyBase::Manual => "manual",
        ApplyBase::Auto => "auto",
    };
    let watchdog = match c.router.watchdog {
        Some(d) => humantime::format_duration(d).to_string(),
        None => "off".to_string(),
    };
    let _ = writeln!(
        o,
        "version = {}\nmode = {}\napply_base = {}\nwatchdog = {}",
        q(version),
        q(mode),
        q(apply_base),
        q(&watchdog)
    );

    let r = &c.router.rest;
    let _ = writeln!(o, "\n[rest]");
    let _ = writeln!(
        o,
        "url = {}\nuser = {}\npassword = {}",
        q(r.url.as_str()),
        q(&r.user),
        q(&r.password.to_string())
    );
    match &r.trust {
        Trust::PinnedSha256(pin) => {
            let hex: Vec<String> = pin.iter().map(|b| format!("{b:02X}")).collect();
            let _ = writeln!(
                o,
                "trust = \"pin-sha256\"\npin_sha256 = {}",
                q(&hex.join(":"))
            );
        }
        Trust::PinPending => {
            let _ = writeln!(
                o,
                "trust = \"pin-sha256\"\n# pin_sha256 not set yet: `uplinkd pin --url https://ROUTER --write CONFIG`"
            );
        }
        Trust::CaFile(p) => {
            let _ = writeln!(
                o,
                "trust = \"ca-file\"\nca_file = {}",
                q(&p.display().to_string())
            );
        }
        Trust::WebPki => {
            let _ = writeln!(o, "trust = \"webpki\"");
            if matches!(r.url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
                // RouterOS's own certificates are self-signed and name no IP address: public
                // roots will not accept them. Not an error (a router may carry a real one).
                let _ = writeln!(
                    o,
                    "# note: a router reached by IP address usually has a self-signed certificate, \
                     which \"webpki\" rejects; set pin_sha256 (UPLINKD_REST_PIN_SHA256) or ca_file"
                );
            }
        }
        Trust::PlainHttp => {
            let _ = writeln!(o, "trust = \"plain-http\"");
        }
    }
    let _ = writeln!(o, "timeout = {}", dur(r.timeout));

    for w in &c.wans {
        let _ = writeln!(o, "\n[[wan]]");
        let _ = writeln!(
            o,
            "name = {}\nlabel = {}\ninterface = {}",
            q(w.id.as_str()),
            q(&w.label),
            q(&w.interface)
        );
        match &w.addressing {
            Addressing::Static { address, gateway } => {
                let _ = writeln!(
                    o,
                    "addressing = \"static\"\naddress = {}\ngateway = {}",
                    q(&address.to_string()),
                    q(&gateway.to_string())
                );
            }
            Addressing::Dhcp => {
                let _ = writeln!(o, "addressing = \"dhcp\"");
            }
            Addressing::Pppoe {
                user,
                password,
                service,
            } => {
                let _ = writeln!(
                    o,
                    "addressing = \"pppoe\"\npppoe_user = {}\npppoe_password = {}",
                    q(user),
                    q(&password.to_string())
                );
                if let Some(s) = service {
                    let _ = writeln!(o, "pppoe_service = {}", q(s));
                }
            }
        }
        let _ = writeln!(
            o,
            "monitors = {}\nweight = {}\npriority = {}\ntier = {}",
            ip_list(&w.monitors),
            w.weight,
            w.priority,
            w.tier
        );
        let p = &w.probe;
        let _ = writeln!(
            o,
            "probe_veth = {}\nprobe_router_address = {}\nprobe_source = {}\nprobe_prefix_len = {}",
            q(&p.veth),
            q(&p.router_address.to_string()),
            q(&p.source.to_string()),
            p.prefix_len
        );
    }

    let _ = writeln!(o, "\n[health]");
    let _ = write!(o, "{}", health_lines(&c.health));

    let _ = writeln!(o, "\n[balance]");
    let pcc = match c.balance.pcc {
        PccClassifier::BothAddressesAndPorts => "both-addresses-and-ports",
        PccClassifier::SrcAddress => "src-address",
        PccClassifier::BothAddresses => "both-addresses",
        PccClassifier::Hybrid => "hybrid",
    };
    let promote_on = match c.balance.promote_on {
        Promotion::Down => "down",
        Promotion::Degraded => "degraded",
    };
    let handback = match c.balance.handback {
        Handback::Drain => "drain",
        Handback::Flush => "flush",
    };
    let _ = writeln!(
        o,
        "pcc = {}\npreferred = {}\npromote_on = {}\nhandback = {}",
        q(pcc),
        q(c.balance.preferred.as_str()),
        q(promote_on),
        q(handback)
    );

    if let Some(l) = &c.lan {
        let _ = writeln!(o, "\n[lan]");
        let _ = writeln!(
            o,
            "bridge = {}\nports = {}\naddress = {}",
            q(&l.bridge),
            str_list(&l.ports),
            q(&l.address.to_string()),
        );
        // With DHCP off the pool is unused (and may not have been given).
        if c.sections.dhcp {
            let _ = writeln!(
                o,
                "dhcp_pool = {}",
                q(&format!("{}-{}", l.dhcp_pool.0, l.dhcp_pool.1))
            );
        }
        let _ = writeln!(o, "dns_servers = {}", ip_list(&l.dns_servers));
    }

    let s = &c.sections;
    let _ = writeln!(o, "\n[sections]");
    let _ = writeln!(
        o,
        "lan = {}\ndhcp = {}\ndns = {}\nfirewall = {}\nhardening = {}\nipv6_off = {}\nmss_clamp = {}\nntp = {}",
        s.lan, s.dhcp, s.dns, s.firewall, s.hardening, s.ipv6_off, s.mss_clamp, s.ntp
    );

    let a = &c.alerts;
    let _ = writeln!(o, "\n[alerts]");
    let reminders: Vec<String> = a.reminders.iter().map(|d| dur(*d)).collect();
    let _ = writeln!(
        o,
        "on_failure = {}\nreminders = [{}]\non_recovery = {}\nmemory_percent = {}{}\ncpu_percent = {}{}",
        a.on_failure,
        reminders.join(", "),
        a.on_recovery,
        a.memory_percent.unwrap_or(0),
        if a.memory_percent.is_none() {
            "  # off"
        } else {
            ""
        },
        a.cpu_percent.unwrap_or(0),
        if a.cpu_percent.is_none() {
            "  # off"
        } else {
            ""
        },
    );

    match &c.email {
        Some(e) => {
            let _ = writeln!(o, "\n[email]");
            let tls = match e.tls {
                EmailTls::StartTls => "starttls",
                EmailTls::Implicit => "implicit",
                EmailTls::None => "none",
            };
            let _ = writeln!(
                o,
                "server = {}\nport = {}\ntls = {}",
                q(&e.server),
                e.port,
                q(tls)
            );
            if let Some(u) = &e.user {
                let _ = writeln!(o, "user = {}", q(u));
            }
            if let Some(p) = &e.password {
                let _ = writeln!(o, "password = {}", q(&p.to_string()));
            }
            let _ = writeln!(o, "from = {}\nto = {}", q(&e.from), str_list(&e.to));
            if let Some(ca) = &e.ca_file {
                let _ = writeln!(o, "ca_file = {}", q(&ca.display().to_string()));
            }
        }
        None => {
            let _ = writeln!(o, "\n# [email]: not configured, no e-mail alerts");
        }
    }

    for w in &c.webhooks {
        let _ = writeln!(o, "\n[[webhook]]");
        match &w.kind {
            WebhookKind::Json => {
                let _ = writeln!(o, "kind = \"json\"");
            }
            WebhookKind::Ntfy => {
                let _ = writeln!(o, "kind = \"ntfy\"");
            }
            WebhookKind::Telegram { chat_id } => {
                let _ = writeln!(o, "kind = \"telegram\"\nchat_id = {}", q(chat_id));
            }
        }
        let _ = writeln!(o, "url = {}", q(&w.url));
        if let Some(t) = &w.token {
            let _ = writeln!(o, "token = {}", q(&t.to_string()));
        }
    }

    let _ = writeln!(o, "\n[status]");
    match c.status.listen {
        Some(a) => {
            let _ = writeln!(o, "listen = {}", q(&a.to_string()));
        }
        None => {
            let _ = writeln!(o, "listen = \"off\"");
        }
    }
    let _ = writeln!(
        o,
        "\n[reconcile]\nresync_interval = {}",
        dur(c.reconcile.resync_interval)
    );
    traffic_lines(&mut o, &c.traffic);
    o
}

/// `[lists]`, `[[policy]]` and `[[rule]]`, when there are any.
fn traffic_lines(o: &mut String, t: &crate::traffic::Traffic) {
    use crate::traffic::{PolicyKind, Sticky};
    if !t.lists.is_empty() {
        let _ = writeln!(o, "\n[lists]");
        for (name, nets) in &t.lists {
            let items: Vec<String> = nets.iter().map(ToString::to_string).collect();
            let _ = writeln!(o, "{name} = {}", str_list(&items));
        }
    }
    for p in &t.policies {
        let wans: Vec<String> = p.wans().map(ToString::to_string).collect();
        let _ = writeln!(
            o,
            "\n[[policy]]\nname = {}\nkind = \"{}\"\nwans = {}",
            q(&p.name),
            p.kind.as_str(),
            str_list(&wans)
        );
        if p.kind == PolicyKind::Balanced {
            let w: Vec<String> = p
                .members
                .iter()
                .map(|m| format!("{} = {}", m.wan, m.weight))
                .collect();
            let _ = writeln!(o, "weights = {{ {} }}", w.join(", "));
        }
        let _ = writeln!(o, "last_resort = \"{}\"", p.last_resort.as_str());
    }
    for r in &t.rules {
        let _ = writeln!(o, "\n[[rule]]\nname = {}", q(&r.name));
        let m = &r.matcher;
        if let Some(v) = m.src {
            let _ = writeln!(o, "src_address = {}", q(&v.to_string()));
        }
        if let Some(v) = &m.src_list {
            let _ = writeln!(o, "src_address_list = {}", q(v));
        }
        if let Some(v) = &m.in_interface {
            let _ = writeln!(o, "in_interface = {}", q(v));
        }
        if let Some(v) = m.dst {
            let _ = writeln!(o, "dst_address = {}", q(&v.to_string()));
        }
        if let Some(v) = &m.dst_list {
            let _ = writeln!(o, "dst_address_list = {}", q(v));
        }
        if let Some(p) = m.protocol {
            let _ = writeln!(o, "protocol = \"{}\"", p.as_str());
        }
        if !m.dst_ports.is_empty() {
            let ports: Vec<String> = m.dst_ports.iter().map(ToString::to_string).collect();
            let _ = writeln!(o, "dst_port = {}", q(&ports.join(",")));
        }
        let _ = writeln!(o, "policy = {}", q(&r.policy));
        match r.sticky {
            Sticky::Off => {}
            Sticky::Src { timeout } | Sticky::SrcDst { timeout } => {
                let _ = writeln!(
                    o,
                    "sticky = \"{}\"\nsticky_timeout = {}",
                    r.sticky.as_str(),
                    dur(timeout)
                );
            }
        }
    }
}

fn health_lines(h: &HealthParams) -> String {
    let mut o = String::new();
    let table = toml::Value::try_from(HealthFile::from_params(h)).ok();
    for field in super::env::fields_of::<HealthFile>() {
        match table.as_ref().and_then(|t| t.get(*field)) {
            Some(v) => {
                let _ = writeln!(o, "{field} = {}", inline_value(v));
            }
            // Optional thresholds (brown-out levels) serialize to nothing when unset.
            None => {
                let _ = writeln!(o, "# {field}: off");
            }
        }
    }
    o
}

/// A TOML value on one line (`"200ms"`, `18.0`, `{ fail = 20.0, recover = 10.0 }`).
pub(super) fn inline_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => q(s),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.fract() == 0.0 && f.is_finite() => format!("{f:.1}"),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(inline_value).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline_value(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}
