//! BGP sessions derived from the topology: NVA `bgp` entries, site
//! connections, Route Server ↔ gateway under branch-to-branch (R30), the
//! Microsoft edge of ExpressRoute circuits; their state under the
//! conditions (speakers and sessions down, route limits).

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionState {
    Up,
    Down(String),
}

/// A BGP session between two speakers.
#[derive(Clone, Debug)]
pub struct Session {
    pub a: Node,
    pub b: Node,
    /// Index of `a`'s (an NVA's or site's) session configuration, if any.
    pub cfg_a: Option<usize>,
    pub cfg_b: Option<usize>,
    pub ibgp: bool,
    /// ExpressRoute connection weight (R39), on gateway↔MSEE sessions.
    pub weight: u32,
    /// The Route Server instance (0 or 1, Azure's `RouteServiceRole_IN_0`
    /// / `_IN_1`) of an NVA ↔ Route Server session: an NVA has one session
    /// with each instance it peers with (R21, R26).
    pub instance: Option<u8>,
    pub state: SessionState,
}

impl Session {
    pub fn other(&self, me: Node) -> Node {
        if self.a == me { self.b } else { self.a }
    }

    /// The name of the far end seen from `me`: a Route Server instance is
    /// `NAME/IN_0` or `NAME/IN_1`.
    pub fn peer_label(&self, t: &Topology, me: Node) -> String {
        let peer = self.other(me);
        match (peer, self.instance) {
            (Node::RouteServer(_) | Node::Gateway(_), Some(k)) => {
                format!("{}/IN_{k}", peer.name(t))
            }
            _ => peer.name(t),
        }
    }

    /// The address the far end of the session is reached at, seen from
    /// `me`, when the platform sets it: a Route Server instance's IP.
    pub fn platform_peer_ip(&self, t: &Topology, me: Node) -> Option<IpAddr> {
        match (self.other(me), self.instance) {
            (Node::RouteServer(r), Some(k)) => {
                t.route_servers[r.idx()].ips.get(usize::from(k)).copied()
            }
            _ => None,
        }
    }
    pub(super) fn cfg<'t>(&self, t: &'t Topology, me: Node) -> Option<&'t BgpSession> {
        let idx = if self.a == me { self.cfg_a } else { self.cfg_b }?;
        match me {
            Node::Nva(n) => t.nvas[n.idx()].bgp.get(idx),
            Node::Site(s) => t.sites[s.idx()].bgp.get(idx),
            _ => None,
        }
    }
}

/// The VNets whose ranges a gateway or Route Server in `vnet` speaks for: its
/// own and those of Connected peers that use it remotely (R9, R26, R35).
pub fn served_vnets(t: &Topology, vnet: VnetId) -> Vec<VnetId> {
    let mut v = vec![vnet];
    for (i, _) in t.vnets.iter().enumerate() {
        let other = VnetId(i as u32);
        if other != vnet
            && t.remote_gateway_vnet(other)
                .is_some_and(|(_, hub)| hub == vnet)
        {
            v.push(other);
        }
    }
    v
}

pub(super) fn served_ranges(t: &Topology, vnet: VnetId, v4_only: bool) -> Vec<IpNet> {
    served_vnets(t, vnet)
        .into_iter()
        .flat_map(|v| t.vnet(v).address_space.iter().copied())
        .filter(|p| !v4_only || p.network().is_ipv4())
        .collect()
}

/// The address a speaker uses as next hop toward a peer (a Route Server:
/// the instance the session is with).
pub(super) fn self_address(
    t: &Topology,
    me: Node,
    cfg: Option<&BgpSession>,
    instance: Option<u8>,
    family_v4: bool,
) -> IpAddr {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match me {
        Node::RouteServer(r) => {
            let ips = &t.route_servers[r.idx()].ips;
            instance
                .and_then(|k| ips.get(usize::from(k)))
                .or(ips.first())
                .copied()
                .unwrap_or(any)
        }
        Node::Nva(n) => {
            let nva = &t.nvas[n.idx()];
            if let Some(over) = cfg.and_then(|c| c.over)
                && let Some(tun) = nva.tunnels.get(over)
            {
                return tun.local;
            }
            if let Some(src) = cfg.and_then(|c| c.source)
                && src.is_ipv4() == family_v4
            {
                return src;
            }
            let ips: Vec<IpAddr> = nva
                .nics
                .iter()
                .flat_map(|&nic| t.nic(nic).ips.iter().copied())
                .collect();
            ips.iter()
                .copied()
                .find(|ip| ip.is_ipv4() == family_v4)
                .or(ips.first().copied())
                .unwrap_or(any)
        }
        Node::Gateway(g) => match instance {
            Some(k) => t.gateway(g).ips.get(usize::from(k)).copied(),
            None => gateway_next_hops(t.gateway(g)).first().copied(),
        }
        .unwrap_or(any),
        Node::Site(s) => {
            let site = &t.sites[s.idx()];
            if let Some(over) = cfg.and_then(|c| c.over)
                && let Some(tun) = site.tunnels.get(over)
            {
                return tun.local;
            }
            site.cpe.or(site.hosts.first().copied()).unwrap_or(any)
        }
        Node::Msee(s) => t.sites[s.idx()].cpe.unwrap_or(any),
    }
}

/// Builds every session the topology declares, with its state.
pub fn sessions(t: &Topology, cond: &Conditions) -> (Vec<Session>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut push = |a: Node,
                    b: Node,
                    cfg_a: Option<usize>,
                    cfg_b: Option<usize>,
                    weight: u32,
                    down: Option<String>| {
        let ibgp = a.asn(t) == b.asn(t);
        let state = if let Some(why) = down {
            SessionState::Down(why)
        } else if cond.down_speakers.contains(&a) {
            SessionState::Down(format!("speaker {} is down", a.name(t)))
        } else if cond.down_speakers.contains(&b) {
            SessionState::Down(format!("speaker {} is down", b.name(t)))
        } else if cond.session_down(a, b) {
            SessionState::Down("session down (event)".to_string())
        } else {
            SessionState::Up
        };
        out.push(Session {
            a,
            b,
            cfg_a,
            cfg_b,
            ibgp,
            weight,
            instance: None,
            state,
        });
        out.len() - 1
    };
    // (session, instance) of sessions with one instance of a Route Server
    // or an active-active gateway.
    let mut instances: Vec<(usize, u8)> = Vec::new();
    for (ni, nva) in t.nvas.iter().enumerate() {
        let me = Node::Nva(NvaId(ni as u32));
        for (ci, cfg) in nva.bgp.iter().enumerate() {
            match cfg.peer {
                Speaker::RouteServer(r) => {
                    // One session per instance peered with (all when
                    // `peer_ips` is empty).
                    let rs = &t.route_servers[r.idx()];
                    for (k, ip) in rs.ips.iter().enumerate() {
                        if cfg.peer_ips.is_empty() || cfg.peer_ips.contains(ip) {
                            let i = push(me, Node::RouteServer(r), Some(ci), None, 0, None);
                            instances.push((i, k as u8));
                        }
                    }
                }
                Speaker::Nva(other) => {
                    let back = t.nvas[other.idx()]
                        .bgp
                        .iter()
                        .position(|c| c.peer == Speaker::Nva(NvaId(ni as u32)));
                    match back {
                        Some(bi) if (ni as u32) < other.0 => {
                            push(me, Node::Nva(other), Some(ci), Some(bi), 0, None);
                        }
                        Some(_) => {} // created from the other side
                        None => {
                            let w = format!(
                                "nva {} peers with nva {}, which does not peer back: session not established",
                                nva.name,
                                t.nvas[other.idx()].name
                            );
                            warnings.push(w.clone());
                            push(
                                me,
                                Node::Nva(other),
                                Some(ci),
                                None,
                                0,
                                Some("declared on one side only".into()),
                            );
                        }
                    }
                }
                Speaker::Site(s) => {
                    let back = t.sites[s.idx()]
                        .bgp
                        .iter()
                        .position(|c| c.peer == Speaker::Nva(NvaId(ni as u32)));
                    if back.is_none() {
                        warnings.push(format!("nva {} peers with site {}, which does not peer back: session not established", nva.name, t.sites[s.idx()].name));
                    }
                    let down = back
                        .is_none()
                        .then(|| "declared on one side only".to_string());
                    push(me, Node::Site(s), Some(ci), back, 0, down);
                }
                // BGP over an IPsec connection between the NVA and a VPN
                // gateway (the NVA as the connection's local network
                // gateway): the gateway treats it as it treats a site.
                Speaker::Gateway(g) if t.gateway(g).kind == GatewayKind::Vpn => {
                    for k in gateway_instances(t, g) {
                        let i = push(me, Node::Gateway(g), Some(ci), None, 0, None);
                        if let Some(k) = k {
                            instances.push((i, k));
                        }
                    }
                }
                Speaker::Gateway(g) => {
                    warnings.push(format!("nva {}: an ExpressRoute gateway peers with circuits and the Route Server, not with NVAs: session with {} not established", nva.name, t.gateway(g).name));
                    push(
                        me,
                        Node::Gateway(g),
                        Some(ci),
                        None,
                        0,
                        Some("ExpressRoute gateways do not peer with NVAs".into()),
                    );
                }
            }
        }
    }
    for (si, site) in t.sites.iter().enumerate() {
        let me = Node::Site(SiteId(si as u32));
        for cfg in &site.bgp {
            match cfg.peer {
                Speaker::Nva(n) => {
                    if !t.nvas[n.idx()]
                        .bgp
                        .iter()
                        .any(|c| c.peer == Speaker::Site(SiteId(si as u32)))
                    {
                        warnings.push(format!("site {} peers with nva {}, which does not peer back: session not established", site.name, t.nvas[n.idx()].name));
                    }
                }
                Speaker::RouteServer(_) | Speaker::Gateway(_) | Speaker::Site(_) => {
                    warnings.push(format!("site {}: a [[site.bgp]] session with {} is not modelled; sites reach gateways through [[site.connection]]", site.name, speaker_name(t, cfg.peer)));
                }
            }
        }
        let mut msee_linked = false;
        for c in &site.connections {
            let g = t.gateway(c.gateway);
            match g.kind {
                GatewayKind::Vpn if c.bgp => {
                    // One tunnel, and BGP session, per instance of an
                    // active-active gateway.
                    for k in gateway_instances(t, c.gateway) {
                        let i = push(me, Node::Gateway(c.gateway), None, None, c.weight, None);
                        if let Some(k) = k {
                            instances.push((i, k));
                        }
                    }
                }
                GatewayKind::Vpn => {}
                GatewayKind::ExpressRoute => {
                    let msee = Node::Msee(SiteId(si as u32));
                    if !msee_linked {
                        push(me, msee, None, None, 0, None);
                        msee_linked = true;
                    }
                    push(msee, Node::Gateway(c.gateway), None, None, c.weight, None);
                }
            }
        }
    }
    // VNet-to-VNet connections with BGP (eBGP: the ASNs differ).
    for c in t.vnet_connections.iter().filter(|c| c.bgp) {
        let [a, b] = c.gateways;
        push(Node::Gateway(a), Node::Gateway(b), None, None, 0, None);
    }
    for (ri, rs) in t.route_servers.iter().enumerate() {
        if !rs.branch_to_branch {
            continue;
        }
        for gid in t.gateways_in(rs.vnet) {
            let g = t.gateway(gid);
            let down = (g.kind == GatewayKind::Vpn && !g.active_active).then(|| {
                warnings.push(format!("route_server {}: branch-to-branch needs an active-active VPN gateway; {} is not (R30)", rs.name, g.name));
                "VPN gateway is not active-active (R30)".to_string()
            });
            push(
                Node::Gateway(gid),
                Node::RouteServer(RouteServerId(ri as u32)),
                None,
                None,
                0,
                down,
            );
        }
    }
    // R21: an NVA should peer with both instances.
    for nva in &t.nvas {
        for cfg in &nva.bgp {
            if let Speaker::RouteServer(r) = cfg.peer {
                let rs = &t.route_servers[r.idx()];
                if !cfg.peer_ips.is_empty() && rs.ips.iter().any(|ip| !cfg.peer_ips.contains(ip)) {
                    warnings.push(format!("nva {} peers with only one instance of route_server {}; each NVA must peer with both (R21)", nva.name, rs.name));
                }
            }
        }
    }
    for (i, k) in instances {
        let s = &mut out[i];
        s.instance = Some(k);
        let platform = match (s.a, s.b) {
            (x @ (Node::RouteServer(_) | Node::Gateway(_)), _)
            | (_, x @ (Node::RouteServer(_) | Node::Gateway(_))) => x,
            _ => continue,
        };
        if s.state == SessionState::Up && cond.down_instances.contains(&(platform, k)) {
            s.state = SessionState::Down(format!("instance {k} of {} is down", platform.name(t)));
        }
    }
    // A session over a tunnel that is down is down.
    for s in &mut out {
        if s.state != SessionState::Up {
            continue;
        }
        for (me, cfg) in [(s.a, s.cfg_a), (s.b, s.cfg_b)] {
            let over = cfg.and_then(|i| match me {
                Node::Nva(n) => t.nvas[n.idx()].bgp.get(i).and_then(|c| c.over),
                Node::Site(x) => t.sites[x.idx()].bgp.get(i).and_then(|c| c.over),
                _ => None,
            });
            if let Some(k) = over
                && cond.down_tunnels.contains(&(me, k))
            {
                s.state = SessionState::Down(format!(
                    "tunnel {} of {} is down",
                    tunnel_name(t, me, k),
                    me.name(t)
                ));
                break;
            }
        }
    }
    (out, warnings)
}

/// The instances a peer has a tunnel and session with: both of an
/// active-active VPN gateway (`Some(0)`, `Some(1)`), else one (`None`).
fn gateway_instances(t: &Topology, g: GatewayId) -> Vec<Option<u8>> {
    let gw = t.gateway(g);
    if gw.active_active && gw.ips.len() >= 2 {
        vec![Some(0), Some(1)]
    } else {
        vec![None]
    }
}

/// The tunnels of an NVA or a site.
pub fn tunnels_of(t: &Topology, n: Node) -> &[Tunnel] {
    match n {
        Node::Nva(x) => &t.nvas[x.idx()].tunnels,
        Node::Site(x) => &t.sites[x.idx()].tunnels,
        _ => &[],
    }
}

pub(super) fn tunnel_name(t: &Topology, n: Node, k: usize) -> &str {
    tunnels_of(t, n).get(k).map_or("?", |x| x.name.as_str())
}

pub(super) fn speaker_name(t: &Topology, s: Speaker) -> String {
    match s {
        Speaker::RouteServer(r) => t.route_servers[r.idx()].name.clone(),
        Speaker::Nva(n) => t.nvas[n.idx()].name.clone(),
        Speaker::Gateway(g) => t.gateway(g).name.clone(),
        Speaker::Site(s) => t.sites[s.idx()].name.clone(),
    }
}
