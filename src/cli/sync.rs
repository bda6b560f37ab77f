//! What `plan` and `run` share before they talk to anyone: the compiled mapping and the
//! target, and the config's switch that pauses both.

use std::sync::Arc;

use super::{load_mapping, print_error};
use crate::config::Config;
use crate::mapping::Mapping;
use crate::sync::report::RunError;
use crate::targets::{self, Target};

/// What both commands need, beside the config, before they talk to anyone.
pub(super) struct Setup {
    pub(super) mapping: Mapping,
    pub(super) target: Arc<dyn Target>,
}

/// Compiles the config's mapping and sets up the target; must run inside a runtime. On
/// failure the problems are printed and the reason returned.
pub(super) fn setup(config: &Config) -> Result<Setup, RunError> {
    let Some(mapping) = load_mapping(config) else {
        return Err(RunError::Mapping);
    };
    match targets::connect(config, &mapping) {
        Ok(target) if !super::references_fit(config, &mapping, target.as_ref()) => {
            Err(RunError::Mapping)
        }
        Ok(target) => Ok(Setup {
            mapping,
            target: Arc::from(target),
        }),
        Err(e) => {
            print_error(&e);
            Err(RunError::Target(e))
        }
    }
}

/// `enable = false` in [source] (the Oomnitza connector's switch) turns plans and runs into
/// a no-op that says so and succeeds, so a scheduled job can be paused from the config alone.
pub(super) fn source_disabled(config: &Config) -> bool {
    if config.source.enabled {
        return false;
    }
    errln!("the source is disabled (`enable = false` in [source]); nothing was read or written");
    tracing::info!("skipped: the source is disabled");
    true
}
