//! What the profiling examples share.

use vnetplane::pipeline::Steering;

/// `STEERING=fixed|adaptive` from the environment, for the examples that
/// compare the two (unset: the default).
pub fn steering_from_env() -> Result<Steering, String> {
    match std::env::var("STEERING") {
        Err(_) => Ok(Steering::default()),
        Ok(v) => <Steering as clap::ValueEnum>::from_str(&v, true)
            .map_err(|_| format!("STEERING={v}: `adaptive` or `fixed`")),
    }
}
