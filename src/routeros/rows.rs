//! Typed rows: what uplinkd reads from RouterOS, each as a struct with the attributes it asks for
//! and how they decode. The client decodes them ([`Client::items`](super::Client::items),
//! [`Client::attrs`](super::Client::attrs), [`Client::run`](super::Client::run)), so no consumer
//! indexes RouterOS's string map and a malformed answer is one `Error::Decode` at the edge.
//!
//! Like the rest of `routeros`, these know menus, not WANs or tags.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::model::{Props, RosId, ValueError};

/// An item of a menu (it has an `.id`), read with `.proplist` = [`Item::PROPLIST`].
pub trait Item: Sized {
    /// The attributes to ask for; the client adds `.id`.
    const PROPLIST: &'static [&'static str];
    fn decode(id: RosId, props: &Props) -> Result<Self, ValueError>;
}

/// Attributes without an id: a singleton menu (`/system/resource`) or one row of a command's
/// answer (`/ping`).
pub trait Attrs: Sized {
    fn decode(props: &Props) -> Result<Self, ValueError>;
}

/// Whether an object is switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    Yes,
    No,
}

impl Enabled {
    /// From `disabled`; an absent flag is enabled (RouterOS omits defaults in some menus).
    fn decode(props: &Props) -> Result<Self, ValueError> {
        Ok(if props.disabled()? {
            Self::No
        } else {
            Self::Yes
        })
    }
}

/// Any object's comment and switch, the only attributes reconcile and the bootstrap look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commented {
    pub id: RosId,
    /// `""` when the object has none.
    pub comment: String,
    pub enabled: Enabled,
}

impl Item for Commented {
    const PROPLIST: &'static [&'static str] = &["comment", "disabled"];
    fn decode(id: RosId, props: &Props) -> Result<Self, ValueError> {
        Ok(Self {
            id,
            comment: props.comment().unwrap_or_default().to_owned(),
            enabled: Enabled::decode(props)?,
        })
    }
}

/// A `:global` variable (`/system/script/environment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptVariable {
    pub name: String,
    pub value: String,
}

impl Item for ScriptVariable {
    const PROPLIST: &'static [&'static str] = &["name", "value"];
    fn decode(_id: RosId, props: &Props) -> Result<Self, ValueError> {
        Ok(Self {
            name: required(props, "name")?.to_owned(),
            // A variable declared without a value has none.
            value: props.str("value").unwrap_or_default().to_owned(),
        })
    }
}

/// A file (`/file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub id: RosId,
    pub name: String,
}

impl Item for FileEntry {
    const PROPLIST: &'static [&'static str] = &["name"];
    fn decode(id: RosId, props: &Props) -> Result<Self, ValueError> {
        Ok(Self {
            id,
            name: required(props, "name")?.to_owned(),
        })
    }
}

/// An address of an interface (`/ip/address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub address: Ipv4Net,
    pub enabled: Enabled,
    /// `invalid=true`: RouterOS keeps the address but does not use it (its interface is gone).
    pub valid: bool,
}

impl Item for InterfaceAddress {
    const PROPLIST: &'static [&'static str] = &["address", "disabled", "invalid"];
    fn decode(_id: RosId, props: &Props) -> Result<Self, ValueError> {
        let raw = required(props, "address")?;
        Ok(Self {
            address: raw
                .parse()
                .map_err(|_| ValueError::new("address", raw, "an IPv4 address/prefix"))?,
            enabled: Enabled::decode(props)?,
            valid: !props.bool("invalid")?.unwrap_or(false),
        })
    }
}

/// A routing rule's source match and switch (`/routing/rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    pub id: RosId,
    /// `None` when the rule matches any source.
    pub src_address: Option<Ipv4Net>,
    pub enabled: Enabled,
}

impl Item for RoutingRule {
    const PROPLIST: &'static [&'static str] = &["src-address", "disabled"];
    fn decode(id: RosId, props: &Props) -> Result<Self, ValueError> {
        Ok(Self {
            id,
            src_address: props.str("src-address").map(parse_net).transpose()?,
            enabled: Enabled::decode(props)?,
        })
    }
}

/// `/system/resource`, the part the resource alerts use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemResource {
    /// Bytes; `None` when the router does not say.
    pub total_memory: Option<u64>,
    pub free_memory: Option<u64>,
    /// Percent, when the router reports it.
    pub cpu_load: Option<u8>,
}

impl Attrs for SystemResource {
    fn decode(props: &Props) -> Result<Self, ValueError> {
        Ok(Self {
            total_memory: props.u64("total-memory")?,
            free_memory: props.u64("free-memory")?,
            cpu_load: props.u64("cpu-load")?.map(|v| v.min(100) as u8),
        })
    }
}

/// `/system/identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
}

impl Attrs for Identity {
    fn decode(props: &Props) -> Result<Self, ValueError> {
        match props.str("name") {
            Some(name) if !name.is_empty() => Ok(Self {
                name: name.to_owned(),
            }),
            other => Err(ValueError::new(
                "name",
                other.unwrap_or_default(),
                "a router name",
            )),
        }
    }
}

/// One row of `/ping`'s answer: an echo (with `seq`), or a summary row some versions add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRow {
    pub seq: Option<u64>,
    /// `timeout`, `net unreachable`, `TTL exceeded`...; `None` on a reply.
    pub status: Option<String>,
    /// Who answered, when the row says.
    pub host: Option<Ipv4Addr>,
    pub time: Option<Duration>,
}

impl Attrs for PingRow {
    fn decode(props: &Props) -> Result<Self, ValueError> {
        Ok(Self {
            seq: props.u64("seq")?,
            status: props.str("status").map(str::to_owned),
            host: props
                .str("host")
                .map(|h| {
                    h.parse()
                        .map_err(|_| ValueError::new("host", h, "an IPv4 address"))
                })
                .transpose()?,
            time: props.duration("time")?,
        })
    }
}

fn required<'a>(props: &'a Props, key: &str) -> Result<&'a str, ValueError> {
    props
        .str(key)
        .ok_or_else(|| ValueError::new(key, "", "a value (the attribute is missing)"))
}

/// `198.18.0.2/32` or `198.18.0.2` (RouterOS prints a host either way).
fn parse_net(s: &str) -> Result<Ipv4Net, ValueError> {
    s.parse::<Ipv4Net>()
        .or_else(|_| s.parse::<Ipv4Addr>().map(Ipv4Net::from))
        .map_err(|_| ValueError::new("src-address", s, "an IPv4 address or prefix"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().copied().collect()
    }

    fn id() -> RosId {
        RosId::parse("*1").unwrap()
    }

    #[test]
    fn commented_defaults_to_enabled_and_empty_comment() {
        let row = Commented::decode(id(), &props(&[])).unwrap();
        assert_eq!(row.comment, "");
        assert_eq!(row.enabled, Enabled::Yes);
        let row = Commented::decode(id(), &props(&[("disabled", "true"), ("comment", "c")]));
        assert_eq!(row.unwrap().enabled, Enabled::No);
        assert!(Commented::decode(id(), &props(&[("disabled", "maybe")])).is_err());
    }

    #[test]
    fn routing_rule_reads_a_host_with_or_without_prefix() {
        let with = RoutingRule::decode(id(), &props(&[("src-address", "198.18.0.2/32")])).unwrap();
        let without = RoutingRule::decode(id(), &props(&[("src-address", "198.18.0.2")])).unwrap();
        assert_eq!(with.src_address, without.src_address);
        assert_eq!(
            RoutingRule::decode(id(), &props(&[])).unwrap().src_address,
            None
        );
        let bad = RoutingRule::decode(id(), &props(&[("src-address", "fe80::1")])).unwrap_err();
        assert_eq!(bad.key, "src-address");
    }

    #[test]
    fn interface_address_needs_an_address_and_reads_invalid() {
        let row = InterfaceAddress::decode(
            id(),
            &props(&[("address", "198.18.11.2/30"), ("invalid", "true")]),
        )
        .unwrap();
        assert_eq!(row.address.addr(), Ipv4Addr::new(198, 18, 11, 2));
        assert!(!row.valid);
        assert!(InterfaceAddress::decode(id(), &props(&[])).is_err());
        assert!(InterfaceAddress::decode(id(), &props(&[("address", "bogus")])).is_err());
    }

    #[test]
    fn system_resource_caps_cpu_and_rejects_non_numbers() {
        let r = SystemResource::decode(&props(&[
            ("total-memory", "1048576"),
            ("free-memory", "524288"),
            ("cpu-load", "250"),
        ]))
        .unwrap();
        assert_eq!(r.cpu_load, Some(100));
        assert_eq!(r.total_memory, Some(1_048_576));
        let partial = SystemResource::decode(&props(&[("free-memory", "1")])).unwrap();
        assert_eq!(partial.total_memory, None);
        assert!(SystemResource::decode(&props(&[("free-memory", "lots")])).is_err());
    }

    #[test]
    fn identity_must_have_a_name() {
        assert_eq!(
            Identity::decode(&props(&[("name", "gw")])).unwrap().name,
            "gw"
        );
        assert!(Identity::decode(&props(&[("name", "")])).is_err());
        assert!(Identity::decode(&props(&[])).is_err());
    }

    #[test]
    fn ping_row_decodes_each_field_or_fails() {
        let row = PingRow::decode(&props(&[
            ("seq", "0"),
            ("host", "198.18.0.9"),
            ("time", "12ms"),
        ]))
        .unwrap();
        assert_eq!(row.time, Some(Duration::from_millis(12)));
        assert_eq!(row.host, Some(Ipv4Addr::new(198, 18, 0, 9)));
        assert!(PingRow::decode(&props(&[("time", "soon")])).is_err());
        assert!(PingRow::decode(&props(&[("host", "router")])).is_err());
    }
}
