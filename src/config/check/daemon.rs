//! `[daemon]`: what `userload daemon` serves besides running.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Checker, Keys};
use crate::config::model::DaemonConfig;
use crate::diag::shorten;

/// The address a `metrics_address` stands for: `HOST:PORT` with an IP address, `localhost`
/// for the loopback one, or a bare port, which listens on loopback only.
fn metrics_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        let port = port.parse::<u16>().ok()?;
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().ok()
}

impl<'d> Checker<'d> {
    /// `[daemon]`: `metrics_address`.
    pub(super) fn daemon_config(&mut self, keys: &mut Keys<'d>) -> DaemonConfig {
        let metrics_address = self.text(keys, "metrics_address").and_then(|(text, entry)| {
            let address = metrics_address(&text);
            if address.is_none() {
                self.error(
                    entry.value_span.clone(),
                    format!(
                        "`{}` is not an address to listen on",
                        shorten(text.trim(), 40)
                    ),
                    "write a port (9184, loopback only) or IP:PORT (0.0.0.0:9184 for every interface)",
                );
            }
            address
        });
        DaemonConfig { metrics_address }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_is_loopback_and_an_address_is_taken_as_written() {
        assert_eq!(
            metrics_address("9184"),
            Some("127.0.0.1:9184".parse().unwrap())
        );
        assert_eq!(
            metrics_address("localhost:9184"),
            Some("127.0.0.1:9184".parse().unwrap())
        );
        assert_eq!(
            metrics_address("0.0.0.0:9184"),
            Some("0.0.0.0:9184".parse().unwrap())
        );
        assert_eq!(
            metrics_address("[::1]:80"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(metrics_address("metrics.example.com:9184"), None);
        assert_eq!(metrics_address("99999"), None);
    }
}
