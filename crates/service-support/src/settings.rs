use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File};
use serde::de::DeserializeOwned;

/// A configuration that cannot be used. Its message names the offending key, so `main` can
/// print it as the one line the operator needs.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(#[from] config::ConfigError);

/// Loads `T` from three layers, later ones winning: the defaults of `T` (every settings struct
/// is `#[serde(default)]`), the TOML file at `file` when given (it must then exist), and the
/// environment variables `<PREFIX>__<KEY>__<SUBKEY>`.
///
/// `list_keys` names the keys whose environment value is a comma-separated list.
///
/// # Errors
/// A file that cannot be read or parsed, a value of the wrong type, or an unknown key (settings
/// structs deny unknown fields, so a typo fails at start instead of being ignored).
pub fn load_settings<T: DeserializeOwned>(
    prefix: &str,
    file: Option<&Path>,
    list_keys: &[&str],
) -> Result<T, SettingsError> {
    load(prefix, file, list_keys, None)
}

/// [`load_settings`] with `variables` standing in for the process environment, so tests can
/// check parsing without touching (and racing on) the real one.
///
/// # Errors
/// As [`load_settings`].
pub fn load_settings_from_map<T: DeserializeOwned>(
    prefix: &str,
    file: Option<&Path>,
    list_keys: &[&str],
    variables: HashMap<String, String>,
) -> Result<T, SettingsError> {
    load(prefix, file, list_keys, Some(variables))
}

fn load<T: DeserializeOwned>(
    prefix: &str,
    file: Option<&Path>,
    list_keys: &[&str],
    variables: Option<HashMap<String, String>>,
) -> Result<T, SettingsError> {
    let mut environment = Environment::with_prefix(prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(variables);
    // Without named keys, a list separator would turn every value into a list.
    if !list_keys.is_empty() {
        environment = environment.list_separator(",");
        for key in list_keys {
            environment = environment.with_list_parse_key(key);
        }
    }
    let mut builder = Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).required(true));
    }
    Ok(builder.add_source(environment).build()?.try_deserialize()?)
}

/// Checks `(key, value, min, max)` entries: the bounds a settings struct cannot express in its
/// types.
///
/// # Errors
/// One line naming the first key out of its range.
pub fn check_ranges(ranges: &[(&str, u64, u64, u64)]) -> Result<(), String> {
    for (key, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            return Err(format!("{key} = {value} is out of range {min}..={max}"));
        }
    }
    Ok(())
}
