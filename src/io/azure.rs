//! Azure's REST shapes of what the model computes: a NIC's effective route
//! table as `az network nic show-effective-route-table -o json` and the
//! REST `effectiveRouteTable` operation return it.

use serde::Serialize;

use crate::control::effective::{Route, Table};

/// One effective route (`EffectiveRoute` in the REST API).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveRoute {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: &'static str,
    pub state: &'static str,
    pub address_prefix: Vec<String>,
    pub next_hop_type: &'static str,
    pub next_hop_ip_address: Vec<String>,
}

/// One route with all its next hops (a decision's matched route).
impl From<&Route> for EffectiveRoute {
    fn from(r: &Route) -> Self {
        EffectiveRoute {
            name: r.name.as_deref().map(str::to_string),
            source: r.source.as_str(),
            state: r.state.as_str(),
            address_prefix: vec![r.prefix.to_string()],
            next_hop_type: r.next_hop_type.as_str(),
            next_hop_ip_address: r.next_hop_ips.iter().map(ToString::to_string).collect(),
        }
    }
}

impl EffectiveRoute {
    /// The rows Azure prints for a route (one per gateway instance, see
    /// [`Route::printed_next_hops`]).
    pub fn rows(r: &Route) -> impl Iterator<Item = EffectiveRoute> + '_ {
        r.printed_next_hops()
            .into_iter()
            .map(move |ips| EffectiveRoute {
                name: r.name.as_deref().map(str::to_string),
                source: r.source.as_str(),
                state: r.state.as_str(),
                address_prefix: vec![r.prefix.to_string()],
                next_hop_type: r.next_hop_type.as_str(),
                next_hop_ip_address: ips.iter().map(ToString::to_string).collect(),
            })
    }
}

/// A NIC's effective route table: `{"value": [EffectiveRoute, ...]}`.
#[derive(Clone, Debug, Serialize)]
pub struct EffectiveRouteList {
    pub value: Vec<EffectiveRoute>,
}

/// The REST shape of a table's routes, in the table's order.
pub fn effective_routes(table: &Table) -> EffectiveRouteList {
    EffectiveRouteList {
        value: table.routes.iter().flat_map(EffectiveRoute::rows).collect(),
    }
}
