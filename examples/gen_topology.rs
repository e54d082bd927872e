//! Writes a generated hub-and-spoke topology file, for trying commands at
//! scale: `cargo run --release --example gen_topology -- 500 > /tmp/hub500.toml`
//! (spokes, NICs per spoke, on-premises prefixes).

fn main() {
    let mut a = std::env::args()
        .skip(1)
        .map(|x| x.parse::<usize>().expect("numbers"));
    let spokes = a.next().unwrap_or(50);
    let nics = a.next().unwrap_or(2);
    let onprem = a.next().unwrap_or(100);
    print!(
        "{}",
        vnetplane::topology::generate::hub_spoke(spokes, nics, onprem)
    );
}
