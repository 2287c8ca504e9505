//! Kernel modules a guest loads before its suite (`--module`), with the
//! parameters each is given, and the name a module goes by.

use std::path::{Path, PathBuf};

/// A `--module` and the parameters it is loaded with.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestModule {
    pub file: PathBuf,
    pub params: Vec<String>,
}

impl GuestModule {
    /// Attach `--module-param` values to the modules they name:
    /// `MODULE.NAME=VALUE`, or plain `NAME=VALUE` when there is one module.
    pub fn assign(files: &[PathBuf], params: &[String]) -> Result<Vec<GuestModule>, String> {
        // A module's name is written unquoted into the guests' scripts
        // (insmod's path, kldload's, the failure marker).
        for f in files {
            crate::model::safe_name(&module_name(f))
                .map_err(|m| format!("--module {}: its name {m}", f.display()))?;
        }
        let mut mods: Vec<GuestModule> = files
            .iter()
            .map(|f| GuestModule {
                file: f.clone(),
                params: vec![],
            })
            .collect();
        for p in params {
            let Some((key, _)) = p.split_once('=') else {
                return Err(format!("--module-param {p}: expected NAME=VALUE"));
            };
            let target = match key.split_once('.') {
                Some((m, name)) => {
                    let i = mods
                        .iter()
                        .position(|g| module_name(&g.file) == m.replace('-', "_"))
                        .ok_or_else(|| format!("--module-param {p}: no --module named {m}"))?;
                    (i, format!("{name}{}", &p[key.len()..]))
                }
                None if mods.len() == 1 => (0, p.clone()),
                None if mods.is_empty() => {
                    return Err(format!("--module-param {p}: no --module given"));
                }
                None => {
                    return Err(format!(
                        "--module-param {p}: several modules: write MODULE.{key}=..."
                    ));
                }
            };
            if target.1.is_empty() || target.1.starts_with('=') {
                return Err(format!("--module-param {p}: empty parameter name"));
            }
            mods[target.0].params.push(target.1);
        }
        Ok(mods)
    }
}

/// A module's name from its file: the file name without `.ko` (and any
/// compression suffix), dashes as underscores. What users call it in
/// `MODULE.NAME=VALUE`, and FreeBSD's kld name.
pub fn module_name(file: &Path) -> String {
    let n = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    n.split(".ko").next().unwrap_or(&n).replace('-', "_")
}
